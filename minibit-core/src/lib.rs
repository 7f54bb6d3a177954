//! # minibit-core
//!
//! The sans-IO heart of minibit, a BitTorrent v1 (BEP 3) swarm library: no
//! sockets, files, clocks, threads or OS randomness. Time enters as an
//! argument, randomness from a seeded RNG, bytes as `bytes::Bytes`. The one
//! exception is [`metainfo::build`], which reads files to hash them when a
//! `.torrent` is made.
//!
//! | module | holds |
//! |---|---|
//! | [`id`] | identifiers: [`id::PeerKey`], [`id::TorrentId`], [`id::ConnectionId`] |
//! | [`metainfo`] | `.torrent` parse and build, [`metainfo::InfoHash`], path sanitising |
//! | [`magnet`] | magnet links (BEP 9): [`magnet::Magnet`] parse and make |
//! | [`metadata`] | [`metadata::MetadataFetch`]: the info dictionary assembled from `ut_metadata` pieces (BEP 9) |
//! | [`piece`] | [`piece::Layout`]: piece/block geometry and the mapping onto files |
//! | [`priority`] | selective download: [`priority::Priority`] per file, [`priority::PiecePriorities`] |
//! | [`bencode`] | the bounded bencode scanner every parser of untrusted bencode runs first |
//! | [`bitfield`] | [`bitfield::Bitfield`]: which pieces a peer has, and its wire form |
//! | [`dht_schedule`] | when a torrent looks itself up and announces itself on the Mainline DHT (BEP 5) |
//! | [`lsd`] | local service discovery (BEP 14): the `BT-SEARCH` announce, its parser, the announce schedule |
//! | [`wire`] | the peer wire protocol: handshake, messages, incremental decoder |
//! | [`picker`] | rarest-first piece selection |
//! | [`choker`] | tit-for-tat choking |
//! | [`rate`] | transfer rate estimators |
//! | [`session`] | the [`session::Session`]: many torrents, one connection table, global limits |
//! | [`torrent`] | the [`torrent::Torrent`] state machine for one info-hash |
//! | [`tracker`] | announce/scrape codecs, HTTP (BEP 3/23/48) and UDP (BEP 15) |
#![warn(missing_docs)]

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod dht_schedule;
pub mod id;
pub mod lsd;
pub mod magnet;
pub mod metadata;
pub mod metainfo;
pub mod picker;
pub mod piece;
pub mod priority;
pub mod rate;
pub mod session;
pub mod superseed;
pub mod torrent;
pub mod tracker;
pub mod wire;

/// The origin of virtual time in unit tests (`Instant` has no constructor
/// but the clock; only differences from it matter).
#[cfg(test)]
mod test_clock {
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn origin() -> std::time::Instant {
        std::time::Instant::now()
    }
}
