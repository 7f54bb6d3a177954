//! The tracker protocols (HTTP and UDP), both sides, sans IO. The
//! tracker's own bookkeeping of swarms lives in `minibit-tracker`.
//!
//! - [`announce`]: `GET /announce` requests ([`AnnounceRequest`], BEP 3) and
//!   their responses ([`AnnounceResponse`], dictionary form BEP 3, compact
//!   form BEP 23, IPv6 `peers6` BEP 7);
//! - [`scrape`]: `GET /scrape` (BEP 48);
//! - [`udp`]: the UDP tracker protocol (BEP 15), both directions;
//! - [`tiers`]: which tracker of a torrent to announce to next (BEP 12).
//!
//! Client-side decoders are bounded (response size, nesting, peer count)
//! and return typed errors on any input; the tracker-side query parsers
//! return a [`QueryError`] whose text is the `failure reason` to send back
//! ([`encode_failure`]).

pub mod announce;
mod bencode;
mod query;
pub mod scrape;
pub mod tiers;
pub mod udp;

pub use announce::{AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerPeer};
pub use bencode::{MAX_RESPONSE_BYTES, TrackerResponseError, encode_failure};
pub use query::{MAX_KEY_LEN, MAX_SCRAPE_HASHES, QueryError};
pub use scrape::{ScrapeRequest, ScrapeResponse, ScrapeStats};
pub use tiers::Tiers;
