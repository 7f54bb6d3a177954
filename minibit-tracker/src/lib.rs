//! minibit-tracker: an HTTP BitTorrent tracker (BEP 3 announce with compact
//! BEP 23 / BEP 7 peers, BEP 48 scrape) with a searchable catalogue of the
//! torrents it serves, and an embedded seeder.
//!
//! | module | job |
//! |---|---|
//! | [`state`] | [`TrackerState`]: what every route and the UDP tracker share |
//! | [`http`] | the axum routes over the shared [`TrackerState`] |
//! | [`api`] | the JSON API under `/api/` (publish, remove, catalogue events), token and origin checks |
//! | [`publish`] | publish a file or a `.torrent`, remove an entry, restore the catalogue at start |
//! | [`service`] | token, data folder, database, catalogue events, seeding sessions |
//! | [`store`] | the catalogue in SQLite (`--state`) |
//! | [`token`] | the API token (`STATE/token`, mode 0600), from [`minibit_peer::token`] |
//! | [`upload`] | a published file streamed to disk under a checked name |
//! | [`fingerprint`] | sizes and mtimes of a torrent's data (no re-hash at restart) |
//! | [`counters`], [`metrics`] | `/metrics` in the Prometheus text format |
//! | [`remote`] | `minibit-tracker publish`: the client of `POST /api/publish` |
//! | [`activity`] | what the log says about swarms (new swarm, peer events, summary) |
//! | [`index`] | the HTML page at `/` |
//! | [`hangup`] | SIGHUP does not stop the tracker |
//! | [`catalogue`] | the torrents listed at `/torrents` and served as `.torrent` files |
//! | [`registry`] | the swarm bookkeeping shared by both ([`Registry`]), IO-free |
//! | [`announce_rate`] | announces per minute of a swarm (the page's column), IO-free |
//! | [`udp`] | the BEP 15 UDP tracker on the same registry, with keyed connection ids |
//! | [`seed`] | hash a file, build and catalogue its torrent, seed it with `minibit-peer` |
//!
//! The protocol codecs live in [`minibit_core::tracker`]; this crate keeps
//! the swarm bookkeeping ([`registry`]) and puts it behind axum and UDP:
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use minibit_tracker::{RegistryConfig, TrackerState, serve};
//!
//! let state = Arc::new(TrackerState::new(RegistryConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6969").await?;
//! serve(listener, state, std::future::pending()).await
//! # }
//! ```

pub mod activity;
pub mod announce_rate;
pub mod api;
pub mod catalogue;
pub mod counters;
pub mod fingerprint;
pub mod hangup;
pub mod http;
pub mod index;
pub mod metrics;
pub mod publish;
pub mod registry;
pub mod remote;
mod roster;
pub mod seed;
pub mod service;
pub mod state;
pub mod store;
pub mod udp;
pub mod upload;

/// The API token, shared with `minibit-peer daemon` (it lives in [`minibit_peer::token`]).
pub use minibit_peer::token;

pub use catalogue::{Catalogue, CatalogueEntry, CatalogueError};
pub use http::{router, serve};
pub use registry::{Registry, RegistryConfig};
pub use service::ServiceConfig;
pub use state::TrackerState;
pub use udp::serve_udp;
