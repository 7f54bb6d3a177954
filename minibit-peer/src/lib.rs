//! minibit-peer: the tokio driver for [`minibit_core::torrent::Torrent`].
//!
//! SKELETON: filled in by the end-to-end driver work.
