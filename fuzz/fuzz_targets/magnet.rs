//! `magnet::Magnet::parse` on arbitrary strings.
//!
//! Checks: no panic; a parsed link has at most `MAX_MAGNET_SOURCES`
//! trackers and peers, no peer with port 0; its `Display` form parses back
//! to the same magnet and is itself canonical (printing it again gives the
//! same text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::magnet::{MAX_MAGNET_SOURCES, Magnet, MagnetPeer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(magnet) = Magnet::parse(text) else {
        return;
    };
    assert!(magnet.trackers.len() + magnet.peers.len() <= MAX_MAGNET_SOURCES);
    for peer in &magnet.peers {
        let port = match peer {
            MagnetPeer::Addr(addr) => addr.port(),
            MagnetPeer::Host { port, .. } => *port,
        };
        assert_ne!(port, 0);
    }
    let canonical = magnet.to_string();
    let again = Magnet::parse(&canonical).expect("the canonical link parses");
    assert_eq!(again, magnet);
    assert_eq!(again.to_string(), canonical);
});
