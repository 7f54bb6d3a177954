//! Decoding peer-supplied bencode dictionaries (BEP 10 / BEP 11 payloads)
//! with serde_bencode, behind a nesting-depth check: serde_bencode's
//! recursive decoder would otherwise overflow the stack on a payload of a
//! million `l`s.

use std::collections::HashMap;

use serde_bencode::value::Value;

use super::ExtensionError;

/// A decoded bencode dictionary: raw byte-string keys to values.
pub(super) type Dict = HashMap<Vec<u8>, Value>;

/// Decodes the bencoded dictionary at the start of `payload` (bytes after
/// it are ignored).
///
/// # Errors
/// [`ExtensionError::TooDeep`], [`ExtensionError::Bencode`] for malformed
/// bencode, [`ExtensionError::NotADict`] when the value is not a dictionary.
pub(super) fn decode_dict(payload: &[u8]) -> Result<Dict, ExtensionError> {
    check_depth(payload)?;
    match serde_bencode::from_bytes::<Value>(payload) {
        Ok(Value::Dict(dict)) => Ok(dict),
        Ok(_) => Err(ExtensionError::NotADict),
        Err(e) => Err(ExtensionError::Bencode(e.to_string())),
    }
}

/// Deepest list/dictionary nesting accepted in an extension payload.
const MAX_DEPTH: usize = 32;

/// Scans the first bencoded value in `bytes` and fails when lists and
/// dictionaries nest deeper than [`MAX_DEPTH`]. Malformed input passes (the
/// real decoder reports it); the scan is linear and never panics.
fn check_depth(bytes: &[u8]) -> Result<(), ExtensionError> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(&token) = bytes.get(i) {
        match token {
            b'd' | b'l' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ExtensionError::TooDeep { max: MAX_DEPTH });
                }
                i += 1;
            }
            b'e' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'i' => match bytes[i..].iter().position(|&b| b == b'e') {
                Some(end) => i += end + 1,
                None => return Ok(()),
            },
            b'0'..=b'9' => {
                let Some(colon) = bytes[i..].iter().position(|&b| b == b':') else {
                    return Ok(());
                };
                let digits = &bytes[i..i + colon];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Ok(());
                }
                let len = digits.iter().fold(0usize, |n, &d| {
                    n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
                });
                i = i.saturating_add(colon + 1).saturating_add(len);
            }
            _ => return Ok(()),
        }
        if depth == 0 {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_payloads() {
        assert_eq!(check_depth(b"d1:md6:ut_pexi1ee1:v3:abce"), Ok(()));
        assert_eq!(check_depth(b"i42e"), Ok(()));
        assert_eq!(check_depth(b"4:llll"), Ok(()));
        assert_eq!(check_depth(b""), Ok(()));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = vec![b'l'; 1 << 20];
        assert_eq!(
            check_depth(&deep),
            Err(ExtensionError::TooDeep { max: MAX_DEPTH })
        );
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert_eq!(check_depth(&ok), Ok(()));
        let hidden = [&b"d1:x"[..], &[b'l'; 40][..]].concat();
        assert!(check_depth(&hidden).is_err());
        assert_eq!(
            decode_dict(&deep),
            Err(ExtensionError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn decode_dict_errors() {
        assert_eq!(decode_dict(b"li1ee"), Err(ExtensionError::NotADict));
        assert!(matches!(
            decode_dict(b"d1:a"),
            Err(ExtensionError::Bencode(_))
        ));
        assert!(matches!(decode_dict(b""), Err(ExtensionError::Bencode(_))));
        let dict = decode_dict(b"d1:ai1e1:b2:xye trailing").unwrap();
        assert_eq!(dict.get(&b"a"[..]), Some(&Value::Int(1)));
        assert_eq!(dict.get(&b"b"[..]), Some(&Value::Bytes(b"xy".to_vec())));
    }

    #[test]
    fn string_contents_are_skipped() {
        let payload = [&b"l40:"[..], &[b'l'; 40][..], &b"e"[..]].concat();
        assert_eq!(check_depth(&payload), Ok(()));
    }
}
