//! Shared helpers for minibit's benchmarks and simulator binaries.

pub mod bins;
pub mod loopback;
pub mod wan;
