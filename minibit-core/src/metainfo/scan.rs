//! Where the `info` dictionary sits in a `.torrent` (BEP 3 "bencoding").
//!
//! The shared bounded scanner ([`crate::bencode`]) checks, without
//! recursion, that the input is one well-formed bencoded dictionary nesting
//! at most [`MAX_DEPTH`] levels; this module then returns the byte span of
//! the top-level `info` value. It runs before
//! serde_bencode (which recurses without a limit), and the span is what the
//! info-hash is computed over: the exact bytes of the file. The span of the
//! whole `info` entry (key and value) lets the outer dictionary be decoded
//! without decoding `info` a second time.

use std::ops::Range;

use super::error::MetainfoError;
use super::{MAX_DEPTH, MAX_TORRENT_SIZE};
use crate::bencode::{Limits, ScanError, string_end, value_end};

/// The scan limits of a `.torrent` file.
const LIMITS: Limits = Limits {
    max_depth: MAX_DEPTH,
    max_len: MAX_TORRENT_SIZE,
};

fn from_scan(error: ScanError, input: &[u8]) -> MetainfoError {
    match error {
        ScanError::TooDeep { .. } => MetainfoError::TooDeep,
        ScanError::TooLong { .. } => MetainfoError::TooLarge { size: input.len() },
        ScanError::Malformed { offset, reason } => MetainfoError::Malformed { offset, reason },
    }
}

/// Where the top-level `info` entry sits in a `.torrent` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoSpan {
    /// Offset of the `info` key (its length prefix).
    pub key_start: usize,
    /// The bytes of the `info` value (the info-hash input).
    pub value: Range<usize>,
}

impl InfoSpan {
    /// `input` without the `info` entry: the outer dictionary's other keys.
    pub fn outer_without_info(&self, input: &[u8]) -> Vec<u8> {
        [&input[..self.key_start], &input[self.value.end..]].concat()
    }
}

/// Checks `input` is one well-formed bencoded dictionary nesting at most
/// [`MAX_DEPTH`] levels (with the shared scanner, [`crate::bencode`]) and
/// returns where its `info` entry is.
///
/// # Errors
/// [`MetainfoError::NotADictionary`], [`MetainfoError::Malformed`],
/// [`MetainfoError::TooDeep`], [`MetainfoError::TrailingData`],
/// [`MetainfoError::MissingInfo`].
pub fn info_span(input: &[u8]) -> Result<InfoSpan, MetainfoError> {
    if input.first() != Some(&b'd') {
        return Err(MetainfoError::NotADictionary);
    }
    let end = value_end(input, 0, LIMITS).map_err(|e| from_scan(e, input))?;
    if end != input.len() {
        return Err(MetainfoError::TrailingData(input.len() - end));
    }
    // The whole dictionary is well formed: walk its top-level entries.
    let mut pos = 1;
    let mut info = None;
    while input[pos] != b'e' {
        let key_end = string_end(input, pos).map_err(|e| from_scan(e, input))?;
        let value_stop = value_end(input, key_end, LIMITS).map_err(|e| from_scan(e, input))?;
        let colon = pos + input[pos..].iter().position(|&b| b == b':').unwrap_or(0);
        if &input[colon + 1..key_end] == b"info" {
            if info.is_some() {
                // Clients could disagree on which one names the torrent.
                return Err(MetainfoError::Malformed {
                    offset: pos,
                    reason: "second `info` key",
                });
            }
            info = Some(InfoSpan {
                key_start: pos,
                value: key_end..value_stop,
            });
        }
        pos = value_stop;
    }
    info.ok_or(MetainfoError::MissingInfo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(input: &[u8]) -> Result<&[u8], MetainfoError> {
        info_span(input).map(|s| &input[s.value])
    }

    #[test]
    fn the_outer_dictionary_without_info_keeps_every_other_key() {
        let input = b"d1:ai1e4:infod1:xi2ee1:zi3ee";
        let span = info_span(input).unwrap();
        assert_eq!(span.outer_without_info(input), b"d1:ai1e1:zi3ee");
        let input = b"d04:info3:abce";
        assert_eq!(info_span(input).unwrap().outer_without_info(input), b"de");
    }

    #[test]
    fn finds_top_level_info_only() {
        assert_eq!(
            span(b"d1:ad4:infoi1ee4:infod1:xi2eee"),
            Ok(&b"d1:xi2ee"[..])
        );
        assert_eq!(span(b"d4:info3:abce"), Ok(&b"3:abc"[..]));
        assert_eq!(span(b"d4:infoi-7ee"), Ok(&b"i-7e"[..]));
        assert_eq!(span(b"d4:infol0:ee"), Ok(&b"l0:e"[..]));
        assert_eq!(span(b"d1:ad4:infoi1eee"), Err(MetainfoError::MissingInfo));
        assert_eq!(span(b"de"), Err(MetainfoError::MissingInfo));
        assert!(matches!(
            span(b"d4:infode4:infodee"),
            Err(MetainfoError::Malformed { offset: 9, .. })
        ));
    }

    #[test]
    fn refuses_malformed_input() {
        assert_eq!(span(b""), Err(MetainfoError::NotADictionary));
        assert_eq!(span(b"l4:infoe"), Err(MetainfoError::NotADictionary));
        assert_eq!(span(b"d4:infodeexyz"), Err(MetainfoError::TrailingData(3)));
        for bad in [
            &b"d"[..],
            b"d4:info",
            b"d4:infode",
            b"di1ei2ee",
            b"d4:infoe",
            b"d4:infoi1x2ee",
            b"d4:infoiee",
            b"d4:infoi-e",
            b"d4:infoi1",
            b"d4:info5:abce",
            b"d4:info99999999999999999999999:e",
            b"d4:info-1:e",
            b"d4:infoxe",
            b"d4info",
        ] {
            assert!(
                matches!(span(bad), Err(MetainfoError::Malformed { .. })),
                "{:?} gave {:?}",
                String::from_utf8_lossy(bad),
                span(bad)
            );
        }
    }

    #[test]
    fn depth_is_limited_before_any_recursion() {
        let nest = |levels: usize| {
            let mut v = b"d4:info".to_vec();
            v.extend(std::iter::repeat_n(b'l', levels - 1));
            v.extend(std::iter::repeat_n(b'e', levels));
            v
        };
        assert!(info_span(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(info_span(&nest(MAX_DEPTH + 1)), Err(MetainfoError::TooDeep));
        // A million levels would overflow the stack of a recursive decoder.
        assert_eq!(info_span(&nest(1_000_000)), Err(MetainfoError::TooDeep));
    }
}
