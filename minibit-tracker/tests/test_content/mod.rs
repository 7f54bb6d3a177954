//! Test content made on the spot, shared by the tracker's test suites.

/// Deterministic pseudo-random content (xorshift), `len` bytes: the same
/// `seed` gives the same bytes, different seeds different ones.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
