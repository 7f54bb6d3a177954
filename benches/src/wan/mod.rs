//! Pieces of the emulated-WAN benchmark (`src/bin/wan.rs`; its network
//! namespaces with shaped links are `test_support::netns`): the swarm of each client in them, the
//! fluid bound a swarm cannot beat, and the plot of finish times.

pub mod bound;
pub mod plot;
pub mod swarm;
