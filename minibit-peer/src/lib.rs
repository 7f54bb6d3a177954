//! minibit-peer: the tokio driver for [`minibit_core::torrent::Torrent`].
//!
//! A [`Client`] hosts many torrents behind one listen port (see
//! [`client`]); a [`Session`] is a client with one torrent. Each torrent
//! downloads into a folder, verifying every piece (SHA-1) before it
//! counts, then seeds; pieces already on disk are verified and kept
//! (resume). A seeder is a torrent whose folder already holds the files.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use minibit_core::metainfo::Metainfo;
//! use minibit_peer::{Session, SessionConfig};
//!
//! let metainfo = Metainfo::from_bytes(&std::fs::read("album.torrent")?)?;
//! let session = Session::start(SessionConfig::new(metainfo, "downloads")).await?;
//! println!("listening on {}", session.local_addr());
//! if session.wait_complete().await {
//!     println!("every piece verified: {:?}", session.paths());
//! }
//! session.shutdown().await?; // announces `stopped`, closes connections
//! # Ok(())
//! # }
//! ```
//!
//! | module | job |
//! |---|---|
//! | `storage` | the torrent's files: preallocated, positional reads and writes |
//! | [`partial`] | `NAME.part` until a file's pieces are all verified |
//! | [`file_select`] | `--only GLOB`: file priorities from globs |
//! | `file_lock` | one torrent at a time per output file (advisory lock) |
//! | `hasher` | SHA-1 of pieces |
//! | `inflight` | blocks of pieces being downloaded, verified before they reach the disk; the shared memory budget |
//! | `read_cache` | recently read extents, to serve blocks |
//! | `codec` | tokio-util codecs over the core's wire encoding |
//! | `connection` | one task per peer connection: handshakes, then frames both ways |
//! | [`client`] | the client: one listener, many torrents; its task owns the core `Session` |
//! | [`session`] | the one-torrent API on a client |
//! | `resume` | which pieces are already on disk (verified) |
//! | [`resume_data`] | fast resume: the resume data file and what a restart trusts |
//! | `resume_writer` | saves the resume data (atomically, every few seconds, at shutdown) |
//! | [`skipped`] | part files of skipped files (selective download) |
//! | [`http`] | bounded HTTP GETs |
//! | [`daemon`] | `minibit-peer daemon`: a client as a service, its torrents in SQLite, the HTTP API and page |
//! | [`http_api`] | what both programs' HTTP APIs share: JSON errors, token and origin checks |
//! | [`dht`] | the client's Mainline DHT node (BEP 5, the `mainline` crate) |
//! | [`lsd`] | local service discovery (BEP 14): multicast announces, peers heard on the LAN |
//! | [`tracker_client`] | announces: HTTP and UDP (BEP 15) trackers, tier by tier (BEP 12) |
//! | [`token`] | the API token of a daemon or tracker (`STATE/token`, mode 0600) |
//! | `tracker_status` | tells the user when no tracker answered |
//! | [`catalogue`] | a minibit tracker's catalogue: search, fetch a `.torrent` by name |
//! | [`sse`] | decoder of server-sent event streams (a tracker's catalogue events) |
//! | [`source`] | where the `.torrent` comes from (file, URL, catalogue) |
//! | [`cli_common`] | the command-line conventions both programs share (verbosity, `--bind`) |
//! | [`error_report`] | one plain `error:` line per failure, the chain with `-v` |

pub mod catalogue;
pub mod cli_common;
pub mod client;
pub(crate) mod codec;
pub(crate) mod connection;
pub mod daemon;
pub mod dht;
pub(crate) mod error_chain;
pub mod error_report;
mod file_lock;
pub mod file_select;
pub(crate) mod hasher;
pub mod http;
pub mod http_api;
pub(crate) mod inflight;
pub mod lsd;
pub mod partial;
pub(crate) mod read_cache;
pub(crate) mod resume;
pub mod resume_data;
mod resume_writer;
pub mod session;
pub mod skipped;
pub mod source;
pub mod sse;
pub(crate) mod storage;
pub mod token;
pub mod tracker_client;
mod tracker_status;

pub use client::{
    AddMagnet, AddOptions, AddTorrent, Client, ClientConfig, ClientError, DhtStatus,
    DhtTorrentStatus, PeerInfo, PeerSink, Progress, TorrentDetail, TorrentHandle, TorrentStatus,
    TrackerAnswer, TrackerInfo, content_path,
};
pub use minibit_core::id::TorrentId;
pub use session::{Session, SessionConfig, SessionHandle, TorrentSource};
