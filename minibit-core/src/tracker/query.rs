//! The raw HTTP query string of tracker requests (BEP 3 "trackers"):
//! `key=value` pairs joined by `&`, binary values (info-hash, peer id)
//! percent-encoded byte by byte.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

/// Longest parameter value quoted back in an error message, bytes.
const QUOTE_LIMIT: usize = 40;

/// Everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`)
/// is percent-encoded, which is what real clients and trackers expect.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A malformed announce or scrape query. The `Display` text is what the
/// tracker sends back as `failure reason` (BEP 3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A required parameter is absent.
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    /// A binary parameter (`info_hash`, `peer_id`) is not exactly 20 bytes once percent-decoded.
    #[error("parameter `{param}` must be 20 bytes, got {len}")]
    NotTwentyBytes {
        /// The parameter name.
        param: &'static str,
        /// Its decoded length, bytes.
        len: usize,
    },
    /// A numeric parameter is not a base-ten unsigned integer in range.
    #[error("parameter `{param}` is not a valid number: \"{value}\"")]
    NotANumber {
        /// The parameter name.
        param: &'static str,
        /// The offending value (lossy UTF-8, truncated).
        value: String,
    },
    /// `port` is 0.
    #[error("parameter `port` must be between 1 and 65535")]
    PortZero,
    /// `event` is not `started`, `completed`, `stopped` or empty.
    #[error("unknown event \"{0}\"")]
    UnknownEvent(String),
    /// `compact` is not `0` or `1` (BEP 23).
    #[error("parameter `compact` must be 0 or 1, got \"{0}\"")]
    BadCompact(String),
    /// `ip` is not an IPv4 or IPv6 address (DNS names are not accepted).
    #[error("parameter `ip` is not an IP address: \"{0}\"")]
    BadIp(String),
    /// `key` (BEP 7) is longer than [`MAX_KEY_LEN`] bytes.
    #[error("parameter `key` must be at most {MAX_KEY_LEN} bytes")]
    BadKey,
    /// A scrape asked for more than [`MAX_SCRAPE_HASHES`] info-hashes (BEP 48).
    #[error("at most {MAX_SCRAPE_HASHES} info_hash parameters per scrape")]
    TooManyHashes,
}

/// Longest accepted announce `key` parameter (BEP 7), bytes.
pub const MAX_KEY_LEN: usize = 64;

/// Most info-hashes accepted in one scrape request (BEP 48).
pub const MAX_SCRAPE_HASHES: usize = 100;

/// The `(name, value)` pairs of a raw query string, both percent-decoded to
/// bytes. Empty segments (`a=1&&b=2`) are skipped; a segment without `=`
/// has an empty value. `+` is kept as is (clients percent-encode spaces).
pub(crate) fn pairs(raw: &str) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    raw.split('&').filter(|s| !s.is_empty()).map(|segment| {
        let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
        (
            Cow::from(percent_decode(name.as_bytes())),
            Cow::from(percent_decode(value.as_bytes())),
        )
    })
}

/// Percent-encodes `bytes` for a query value.
pub(crate) fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, QUERY_VALUE).to_string()
}

/// A parameter value as quoted in an error: lossy UTF-8, at most
/// [`QUOTE_LIMIT`] bytes.
pub(crate) fn quote(value: &[u8]) -> String {
    String::from_utf8_lossy(&value[..value.len().min(QUOTE_LIMIT)]).into_owned()
}

/// A 20-byte binary parameter (`info_hash`, `peer_id`).
pub(crate) fn twenty_bytes(param: &'static str, value: &[u8]) -> Result<[u8; 20], QueryError> {
    value.try_into().map_err(|_| QueryError::NotTwentyBytes {
        param,
        len: value.len(),
    })
}

/// A base-ten unsigned integer parameter.
pub(crate) fn number<T: std::str::FromStr>(
    param: &'static str,
    value: &[u8],
) -> Result<T, QueryError> {
    std::str::from_utf8(value)
        .ok()
        // `FromStr` for integers accepts a leading `+`; BEP 3 numbers are plain digits.
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| QueryError::NotANumber {
            param,
            value: quote(value),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_names_and_values_bytewise() {
        let got: Vec<_> = pairs("a=%FF%00x&&flag&b%5F=1+2")
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), vec![0xFF, 0x00, b'x']),
                (b"flag".to_vec(), vec![]),
                (b"b_".to_vec(), b"1+2".to_vec()),
            ]
        );
    }

    #[test]
    fn encode_keeps_only_unreserved() {
        assert_eq!(encode(b"aZ9-._~ /+\xff"), "aZ9-._~%20%2F%2B%FF");
    }

    #[test]
    fn number_rejects_signs_and_overflow() {
        assert_eq!(number::<u16>("port", b"6881"), Ok(6881));
        for bad in [&b"+1"[..], b"-1", b"", b"1e3", b"65536", b" 1"] {
            assert!(number::<u16>("port", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quote_truncates() {
        assert_eq!(quote(&[b'x'; 100]).len(), QUOTE_LIMIT);
    }
}
