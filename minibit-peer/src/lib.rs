//! minibit-peer: the tokio driver for [`minibit_core::torrent::Torrent`].
//!
//! | module | job |
//! |---|---|
//! | [`storage`] | the torrent's files: preallocated, positional reads and writes |
//! | [`hasher`] | SHA-1 of pieces |
//! | [`inflight`] | blocks of pieces being downloaded, verified before they reach the disk |
//! | [`resume`] | which pieces are already on disk (verified) |
//! | [`http`] | bounded HTTP GETs |
//! | [`tracker_client`] | HTTP announces |
//! | [`catalogue`] | a minibit tracker's catalogue: search, fetch a `.torrent` by name |
//! | [`source`] | where the `.torrent` comes from (file, URL, catalogue) |

pub mod catalogue;
pub mod hasher;
pub mod http;
pub mod inflight;
pub mod resume;
pub mod source;
pub mod storage;
pub mod tracker_client;
