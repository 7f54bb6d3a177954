//! The tracker's parsing of announce and scrape query strings (the raw,
//! percent-encoded part of the URL after `?`) on arbitrary UTF-8.
//!
//! Checks: no panic; what parses obeys the documented bounds, and
//! `to_query` writes it back in a form that parses to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::tracker::{AnnounceRequest, MAX_KEY_LEN, MAX_SCRAPE_HASHES, ScrapeRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = AnnounceRequest::parse_query(query) {
        assert_ne!(request.port, 0);
        assert!(request.key.as_ref().is_none_or(|k| k.len() <= MAX_KEY_LEN));
        assert_eq!(
            AnnounceRequest::parse_query(&request.to_query()),
            Ok(request)
        );
    }
    if let Ok(request) = ScrapeRequest::parse_query(query) {
        assert!((1..=MAX_SCRAPE_HASHES).contains(&request.info_hashes.len()));
        assert_eq!(ScrapeRequest::parse_query(&request.to_query()), Ok(request));
    }
});
