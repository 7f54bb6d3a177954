//! minibit-peer: the tokio driver for [`minibit_core::torrent::Torrent`].
//!
//! | module | job |
//! |---|---|
//! | [`storage`] | the torrent's files: preallocated, positional reads and writes |
//! | [`hasher`] | SHA-1 of pieces |
//! | [`inflight`] | blocks of pieces being downloaded, verified before they reach the disk |
//! | [`resume`] | which pieces are already on disk (verified) |

pub mod hasher;
pub mod inflight;
pub mod resume;
pub mod storage;
