//! The peer's decoding of tracker announce and scrape responses on
//! arbitrary bytes.
//!
//! Checks: no panic; at most `MAX_RESPONSE_PEERS` peers, none with port 0;
//! a decoded response re-encodes (dictionary and compact form) and decodes
//! back to the same response (the compact form drops peer ids and lists
//! IPv4 peers before IPv6 ones).
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::tracker::announce::MAX_RESPONSE_PEERS;
use minibit_core::tracker::{AnnounceResponse, ScrapeResponse, TrackerPeer};

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = AnnounceResponse::decode(data) {
        assert!(response.peers.len() <= MAX_RESPONSE_PEERS);
        assert!(response.addrs().all(|a| a.port() != 0));
        assert_eq!(
            AnnounceResponse::decode(&response.encode(false)).as_ref(),
            Ok(&response)
        );
        let (v4, v6): (Vec<TrackerPeer>, Vec<TrackerPeer>) = response
            .peers
            .iter()
            .map(|p| TrackerPeer {
                peer_id: None,
                ..*p
            })
            .partition(|p| p.addr.is_ipv4());
        let compact = AnnounceResponse {
            peers: v4.into_iter().chain(v6).collect(),
            ..response.clone()
        };
        assert_eq!(
            AnnounceResponse::decode(&response.encode(true)),
            Ok(compact)
        );
    }
    if let Ok(response) = ScrapeResponse::decode(data) {
        assert_eq!(ScrapeResponse::decode(&response.encode()), Ok(response));
    }
});
