//! Pieces of the loopback end-to-end benchmark (`src/bin/loopback.rs`):
//! watched child processes, content generation and checks, and the swarms
//! of each client.

pub mod content;
pub mod proc;
pub mod swarm;
