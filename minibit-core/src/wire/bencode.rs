//! Decoding peer-supplied bencode dictionaries (BEP 10 / BEP 11 / BEP 9
//! payloads) with serde_bencode, behind the bounded scanner
//! ([`crate::bencode`]): serde_bencode's recursive decoder would otherwise
//! overflow the stack on a payload of a million `l`s.

use std::collections::HashMap;

use serde_bencode::value::Value;

use super::ExtensionError;
use crate::bencode::{Limits, ScanError};

/// A decoded bencode dictionary: raw byte-string keys to values.
pub(super) type Dict = HashMap<Vec<u8>, Value>;

/// Decodes the bencoded dictionary at the start of `payload` (bytes after
/// it are ignored) and returns it with its length in bytes.
///
/// # Errors
/// [`ExtensionError::TooDeep`], [`ExtensionError::Bencode`] for malformed
/// bencode, [`ExtensionError::NotADict`] when the value is not a dictionary.
pub(super) fn decode_dict_prefix(payload: &[u8]) -> Result<(Dict, usize), ExtensionError> {
    let end = crate::bencode::value_end(payload, 0, LIMITS).map_err(|e| match e {
        ScanError::TooDeep { max } => ExtensionError::TooDeep { max },
        other => ExtensionError::Bencode(other.to_string()),
    })?;
    match serde_bencode::from_bytes::<Value>(&payload[..end]) {
        Ok(Value::Dict(dict)) => Ok((dict, end)),
        Ok(_) => Err(ExtensionError::NotADict),
        Err(e) => Err(ExtensionError::Bencode(e.to_string())),
    }
}

/// [`decode_dict_prefix`] without the length.
///
/// # Errors
/// As [`decode_dict_prefix`].
pub(super) fn decode_dict(payload: &[u8]) -> Result<Dict, ExtensionError> {
    decode_dict_prefix(payload).map(|(dict, _)| dict)
}

/// Deepest list/dictionary nesting accepted in an extension payload.
const MAX_DEPTH: usize = 32;

/// The scan limits of an extension payload: [`MAX_DEPTH`]; the length is
/// already bounded by the frame cap of the [`super::Decoder`].
const LIMITS: Limits = Limits {
    max_depth: MAX_DEPTH,
    max_len: usize::MAX,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_payloads() {
        let payload = b"d1:md6:ut_pexi1ee1:v3:abce";
        assert_eq!(decode_dict_prefix(payload).unwrap().1, payload.len());
        assert_eq!(decode_dict(b"i42e"), Err(ExtensionError::NotADict));
        assert_eq!(decode_dict(b"4:llll"), Err(ExtensionError::NotADict));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = vec![b'l'; 1 << 20];
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert_eq!(decode_dict(&ok), Err(ExtensionError::NotADict));
        let hidden = [&b"d1:x"[..], &[b'l'; 40][..]].concat();
        assert_eq!(
            decode_dict(&hidden),
            Err(ExtensionError::TooDeep { max: MAX_DEPTH })
        );
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
        let payload = [&b"d1:x40:"[..], &[b'l'; 40][..], &b"e"[..]].concat();
        assert!(decode_dict(&payload).is_ok());
    }
}
