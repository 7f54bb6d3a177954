//! minibit-tracker: an HTTP BitTorrent tracker (BEP 3 announce with compact
//! BEP 23 / BEP 7 peers, BEP 48 scrape) with a searchable catalogue of the
//! torrents it serves, and an embedded seeder.
//!
//! | module | job |
//! |---|---|
//! | [`http`] | the axum routes over the shared [`TrackerState`] |
//! | [`catalogue`] | the torrents listed at `/torrents` and served as `.torrent` files |
//! | [`registry`] | the swarm bookkeeping shared by both ([`Registry`]), IO-free |
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

pub mod catalogue;
pub mod http;
pub mod registry;
pub mod seed;
pub mod udp;

pub use catalogue::{Catalogue, CatalogueEntry, CatalogueError};
pub use http::{TrackerState, router, serve};
pub use registry::{Registry, RegistryConfig};
pub use udp::serve_udp;
