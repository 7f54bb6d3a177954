//! `lsd::LsdAnnounce::parse` (BEP 14) on arbitrary datagrams.
//!
//! Checks: no panic; nothing over `MAX_DATAGRAM_LEN` is accepted; an
//! accepted announce has a port, 1+ distinct info-hashes and a printable
//! cookie of at most `MAX_COOKIE_LEN` bytes; its encoding parses back to
//! the same announce (and, within `MAX_INFOHASHES_PER_ANNOUNCE` hashes,
//! fits in `MAX_ANNOUNCE_LEN` bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::lsd::{
    LsdAnnounce, MAX_ANNOUNCE_LEN, MAX_COOKIE_LEN, MAX_DATAGRAM_LEN, MAX_INFOHASHES_PER_ANNOUNCE,
};

fuzz_target!(|data: &[u8]| {
    let Ok(announce) = LsdAnnounce::parse(data) else {
        return;
    };
    assert!(data.len() <= MAX_DATAGRAM_LEN);
    assert_ne!(announce.port, 0);
    assert!(!announce.info_hashes.is_empty());
    for (i, hash) in announce.info_hashes.iter().enumerate() {
        assert!(!announce.info_hashes[..i].contains(hash));
    }
    if let Some(cookie) = &announce.cookie {
        assert!(!cookie.is_empty() && cookie.len() <= MAX_COOKIE_LEN);
        assert!(cookie.bytes().all(|b| b.is_ascii_graphic()));
    }
    let bytes = announce.encode();
    if announce.info_hashes.len() <= MAX_INFOHASHES_PER_ANNOUNCE {
        assert!(bytes.len() <= MAX_ANNOUNCE_LEN);
    }
    assert_eq!(LsdAnnounce::parse(&bytes).expect("own encoding parses"), announce);
});
