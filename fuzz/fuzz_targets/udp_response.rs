//! The client's decoding of BEP 15 UDP responses on arbitrary bytes, over
//! an IPv4 and an IPv6 socket (first input byte: odd = IPv6).
//!
//! Checks: no panic; an announce answer lists peers of the socket's family
//! only, at most `max_peers` of them; a scrape answer at most 74 entries;
//! an error message at most `MAX_ERROR_MESSAGE` bytes; a decoded response
//! re-encodes to at most 1472 bytes and decodes back to itself (and to the
//! input itself, except error messages that were not UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::tracker::udp::{
    Family, MAX_ERROR_MESSAGE, MAX_SCRAPE_HASHES, Response, max_peers,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let family = if selector & 1 == 1 {
        Family::V6
    } else {
        Family::V4
    };
    let Ok(response) = Response::decode(packet, family) else {
        return;
    };
    let bytes = response.encode();
    assert!(bytes.len() <= 1472);
    assert_eq!(Response::decode(&bytes, family).as_ref(), Ok(&response));
    match &response {
        Response::Connect { .. } => assert_eq!(&packet[..16], &bytes[..]),
        Response::Announce { peers, .. } => {
            assert_eq!(peers.family(), family);
            assert!(peers.len() <= max_peers(family));
            assert_eq!(packet, &bytes[..]);
        }
        Response::Scrape { stats, .. } => {
            assert!(stats.len() <= MAX_SCRAPE_HASHES);
            assert_eq!(packet, &bytes[..]);
        }
        Response::Error { message, .. } => {
            assert!(message.len() <= MAX_ERROR_MESSAGE);
            if std::str::from_utf8(&packet[8..]).is_ok() {
                assert_eq!(packet, &bytes[..]);
            }
        }
    }
});
