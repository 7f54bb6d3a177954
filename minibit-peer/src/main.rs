//! `minibit-peer`: join a swarm, download, verify every piece, then seed.

fn main() {}
