//! The tracker's decoding of BEP 15 UDP requests on arbitrary bytes.
//!
//! Checks: no panic; a decoded scrape holds 1-74 info-hashes; a decoded
//! announce has a port; a decoded request re-encodes (without BEP 41
//! options) to a datagram that decodes back to the same request and is
//! the input's prefix; its HTTP form never asks for more peers than one
//! datagram holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::tracker::udp::{Family, MAX_SCRAPE_HASHES, Request, max_peers};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = Request::decode(data) else {
        return;
    };
    let bytes = request.encode();
    assert_eq!(Request::decode(&bytes).as_ref(), Ok(&request));
    match &request {
        Request::Connect { .. } => assert_eq!(&data[..16], &bytes[..]),
        Request::Announce(a) => {
            assert_ne!(a.port, 0);
            // Every negative num_want means "default" and encodes as -1.
            if data[92] & 0x80 == 0 || data[92..96] == [0xff; 4] {
                assert_eq!(&data[..98], &bytes[..]);
            }
            for family in [Family::V4, Family::V6] {
                let http = a.to_announce_request(family);
                assert!(http.numwant.is_some_and(|n| n as usize <= max_peers(family)));
            }
        }
        Request::Scrape { info_hashes, .. } => {
            assert!((1..=MAX_SCRAPE_HASHES).contains(&info_hashes.len()));
            assert_eq!(data, &bytes[..]);
        }
    }
});
