//! The BEP 6 allowed-fast set: pieces a choked peer may still request,
//! derived from its IPv4 address and the info-hash so that every client
//! computes the same set for the same peer.

use std::net::Ipv4Addr;

use sha1::{Digest, Sha1};

use crate::metainfo::InfoHash;

/// The first `k` pieces of the allowed-fast set of a peer at `ip` in a
/// torrent of `pieces` pieces (BEP 6 "Allowed Fast Set Generation"): hash
/// the top 24 bits of the address with the info-hash, then re-hash,
/// reading five big-endian `u32`s modulo `pieces` from each digest. `k` is
/// capped at `pieces` (the set cannot hold more distinct pieces).
pub(super) fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHash,
    pieces: u32,
    k: usize,
) -> Vec<u32> {
    let k = k.min(pieces as usize);
    let mut set: Vec<u32> = Vec::with_capacity(k);
    let mut x: Vec<u8> = (u32::from(ip) & 0xFFFF_FF00).to_be_bytes().to_vec();
    x.extend_from_slice(&info_hash.0);
    while set.len() < k {
        x = Sha1::digest(&x).to_vec();
        for chunk in x.chunks_exact(4) {
            if set.len() == k {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = y % pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_bep_6_example() {
        let info_hash = InfoHash([0xAA; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        assert_eq!(
            allowed_fast_set(ip, &info_hash, 1313, 7),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &info_hash, 1313, 9),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // Same /24, same set.
        let neighbour = Ipv4Addr::new(80, 4, 4, 1);
        assert_eq!(
            allowed_fast_set(neighbour, &info_hash, 1313, 9),
            allowed_fast_set(ip, &info_hash, 1313, 9)
        );
    }

    #[test]
    fn small_torrents_cap_the_set() {
        let set = allowed_fast_set(Ipv4Addr::LOCALHOST, &InfoHash([1; 20]), 3, 10);
        let mut sorted = set.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2]);
    }
}
