//! `minibit-tracker FILE...`: track, catalogue and seed.

fn main() {}
