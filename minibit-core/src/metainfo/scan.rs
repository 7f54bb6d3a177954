//! A structural bencode scanner (BEP 3 "bencoding").
//!
//! It walks the whole input once without recursion, checks that it is one
//! well-formed bencoded dictionary nesting at most [`MAX_DEPTH`] levels, and
//! returns the byte span of the top-level `info` value. It runs before
//! serde_bencode (which recurses without a limit), and the span is what the
//! info-hash is computed over: the exact bytes of the file. The span of the
//! whole `info` entry (key and value) lets the outer dictionary be decoded
//! without decoding `info` a second time.

use std::ops::Range;

use super::MAX_DEPTH;
use super::error::MetainfoError;

struct Frame {
    /// Offset of the `l` or `d` that opened this container.
    start: usize,
    dict: bool,
    /// In a dictionary: the next item is a key (else a value).
    want_key: bool,
    /// This container is the value of the top-level `info` key.
    is_info: bool,
}

fn malformed(offset: usize, reason: &'static str) -> MetainfoError {
    MetainfoError::Malformed { offset, reason }
}

/// Returns the end of the byte string starting at `pos` and its contents.
fn string_at(input: &[u8], pos: usize) -> Result<(usize, &[u8]), MetainfoError> {
    let colon = input[pos..]
        .iter()
        .position(|&b| b == b':')
        .map(|i| pos + i)
        .ok_or_else(|| malformed(pos, "string length without `:`"))?;
    let digits = &input[pos..colon];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed(pos, "bad string length"));
    }
    let length = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or_else(|| malformed(pos, "string length too large"))?;
    let end = (colon + 1)
        .checked_add(length)
        .filter(|&end| end <= input.len())
        .ok_or_else(|| malformed(pos, "string runs past the end of the input"))?;
    Ok((end, &input[colon + 1..end]))
}

/// Returns the end of the integer starting with `i` at `pos`.
fn int_at(input: &[u8], pos: usize) -> Result<usize, MetainfoError> {
    let e = input[pos..]
        .iter()
        .position(|&b| b == b'e')
        .map(|i| pos + i)
        .ok_or_else(|| malformed(pos, "integer without `e`"))?;
    let body = &input[pos + 1..e];
    let digits = body.strip_prefix(b"-").unwrap_or(body);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed(pos, "bad integer"));
    }
    Ok(e + 1)
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
/// [`MAX_DEPTH`] levels and returns where its `info` entry is.
///
/// # Errors
/// [`MetainfoError::NotADictionary`], [`MetainfoError::Malformed`],
/// [`MetainfoError::TooDeep`], [`MetainfoError::TrailingData`],
/// [`MetainfoError::MissingInfo`].
pub fn info_span(input: &[u8]) -> Result<InfoSpan, MetainfoError> {
    if input.first() != Some(&b'd') {
        return Err(MetainfoError::NotADictionary);
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0;
    let mut info = None;
    let mut next_is_info = false;
    let mut seen_info = false;
    let mut key_start = 0;
    loop {
        let byte = *input
            .get(pos)
            .ok_or_else(|| malformed(pos, "unexpected end of input"))?;
        let depth = stack.len();
        if let Some(top) = stack.last_mut() {
            if byte == b'e' {
                if top.dict && !top.want_key {
                    return Err(malformed(pos, "dictionary key without a value"));
                }
                let done = stack.pop().expect("stack is not empty");
                pos += 1;
                if done.is_info {
                    info = Some(done.start..pos);
                }
                if stack.is_empty() {
                    break;
                }
                value_done(&mut stack);
                continue;
            }
            if top.dict && top.want_key {
                if !byte.is_ascii_digit() {
                    return Err(malformed(pos, "dictionary key is not a string"));
                }
                let (end, key) = string_at(input, pos)?;
                next_is_info = depth == 1 && key == b"info";
                if next_is_info {
                    if std::mem::replace(&mut seen_info, true) {
                        // Clients could disagree on which one names the torrent.
                        return Err(malformed(pos, "second `info` key"));
                    }
                    key_start = pos;
                }
                top.want_key = false;
                pos = end;
                continue;
            }
        }
        let start = pos;
        let is_info = std::mem::take(&mut next_is_info);
        match byte {
            b'l' | b'd' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(MetainfoError::TooDeep);
                }
                let dict = byte == b'd';
                stack.push(Frame {
                    start,
                    dict,
                    want_key: dict,
                    is_info,
                });
                pos += 1;
                continue;
            }
            b'i' => pos = int_at(input, pos)?,
            b'0'..=b'9' => pos = string_at(input, pos)?.0,
            _ => return Err(malformed(pos, "not the start of a bencode value")),
        }
        if is_info {
            info = Some(start..pos);
        }
        value_done(&mut stack);
    }
    if pos != input.len() {
        return Err(MetainfoError::TrailingData(input.len() - pos));
    }
    let value = info.ok_or(MetainfoError::MissingInfo)?;
    Ok(InfoSpan { key_start, value })
}

/// A value just ended inside the top container: a dictionary wants a key next.
fn value_done(stack: &mut [Frame]) {
    if let Some(top) = stack.last_mut() {
        top.want_key = top.dict;
    }
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
