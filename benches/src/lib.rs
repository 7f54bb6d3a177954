//! Shared helpers for minibit's benchmarks and simulator binaries.

pub mod loopback;
pub mod wan;
