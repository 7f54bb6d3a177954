//! The shared bounded bencode scanner (`bencode::value_end`) on arbitrary
//! bytes (first byte: depth limit 1-16; the rest is the input).
//!
//! Checks: no panic; an accepted span lies within the input, is at most
//! `max_len` bytes, and is stable under trailing bytes and under a larger
//! limit; when serde_bencode decodes the span, its re-encoding scans whole;
//! strict prefixes of an accepted span (empty, half, all but one byte)
//! are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minibit_core::bencode::{Limits, value_end};
use serde_bencode::value::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_depth: usize::from(depth % 16) + 1,
        max_len: 4096,
    };
    let Ok(end) = value_end(input, 0, limits) else {
        return;
    };
    assert!(end <= input.len() && end <= limits.max_len);
    let mut longer = input[..end].to_vec();
    longer.extend_from_slice(b"i1e");
    assert_eq!(value_end(&longer, 0, limits), Ok(end));
    let roomy = Limits {
        max_depth: 64,
        max_len: usize::MAX,
    };
    assert_eq!(value_end(input, 0, roomy), Ok(end));
    for cut in [0, end / 2, end - 1] {
        assert!(value_end(&input[..cut], 0, limits).is_err());
    }
    if let Ok(value) = serde_bencode::from_bytes::<Value>(&input[..end]) {
        let again = serde_bencode::to_bytes(&value).unwrap();
        assert_eq!(value_end(&again, 0, roomy), Ok(again.len()));
    }
});
