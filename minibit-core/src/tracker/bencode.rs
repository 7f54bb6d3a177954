//! Bencoding of tracker responses (BEP 3) with the limits a client needs
//! against a hostile tracker: a size cap, a nesting cap, typed errors.

use std::collections::HashMap;

use serde_bencode::value::Value;

use crate::bencode::{Limits, ScanError, value_end};

/// Largest tracker response body accepted by the decoders, bytes (1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Deepest list/dictionary nesting accepted (tracker responses need 3).
const MAX_DEPTH: usize = 16;

/// A tracker response that could not be used (client side).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerResponseError {
    /// The tracker refused the request; the text is its `failure reason`, to show the user.
    #[error("tracker failure: {0}")]
    Failure(String),
    /// The body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("tracker response too large: {0} bytes")]
    TooLarge(usize),
    /// The body is not valid bencode, is nested too deeply, or is not a dictionary.
    #[error("tracker response is not a bencoded dictionary: {0}")]
    Malformed(String),
    /// A required key is absent.
    #[error("tracker response lacks `{0}`")]
    MissingKey(&'static str),
    /// A key holds the wrong type or an out-of-range value.
    #[error("tracker response has an invalid `{0}`")]
    BadValue(&'static str),
}

/// A decoded top-level response dictionary.
pub(crate) type Dict = HashMap<Vec<u8>, Value>;

/// Decodes a response body into its top-level dictionary, turning a
/// `failure reason` into [`TrackerResponseError::Failure`].
pub(crate) fn decode_dict(body: &[u8]) -> Result<Dict, TrackerResponseError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(TrackerResponseError::TooLarge(body.len()));
    }
    let limits = Limits {
        max_depth: MAX_DEPTH,
        max_len: MAX_RESPONSE_BYTES,
    };
    let end = value_end(body, 0, limits).map_err(|e| match e {
        ScanError::TooDeep { .. } => TrackerResponseError::Malformed("nested too deeply".into()),
        other => TrackerResponseError::Malformed(other.to_string()),
    })?;
    // Bytes after the dictionary (a trailing newline, say) are ignored.
    let value: Value = serde_bencode::from_bytes(&body[..end])
        .map_err(|e| TrackerResponseError::Malformed(e.to_string()))?;
    let Value::Dict(dict) = value else {
        return Err(TrackerResponseError::Malformed("not a dictionary".into()));
    };
    if let Some(reason) = dict.get(&b"failure reason"[..]) {
        let Value::Bytes(text) = reason else {
            return Err(TrackerResponseError::BadValue("failure reason"));
        };
        return Err(TrackerResponseError::Failure(
            String::from_utf8_lossy(text).into_owned(),
        ));
    }
    Ok(dict)
}

/// An optional integer value of `dict[key]` that fits `T`.
pub(crate) fn int<T: TryFrom<i64>>(
    dict: &Dict,
    key: &'static str,
) -> Result<Option<T>, TrackerResponseError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Int(n)) => T::try_from(*n)
            .map(Some)
            .map_err(|_| TrackerResponseError::BadValue(key)),
        Some(_) => Err(TrackerResponseError::BadValue(key)),
    }
}

/// An optional byte-string value of `dict[key]`.
pub(crate) fn bytes<'a>(
    dict: &'a Dict,
    key: &'static str,
) -> Result<Option<&'a [u8]>, TrackerResponseError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(TrackerResponseError::BadValue(key)),
    }
}

/// A dictionary value from `(key, value)` entries.
pub(crate) fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// The bencoded bytes of `value` (dictionary keys sorted, as BEP 3 requires).
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    serde_bencode::to_bytes(value).expect("bencoding an in-memory value cannot fail")
}

/// The body of a refused request: `d14:failure reason<len>:<reason>e` (BEP 3).
pub fn encode_failure(reason: &str) -> Vec<u8> {
    encode(&dict([("failure reason", Value::Bytes(reason.into()))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_round_trips() {
        let body = encode_failure("no such torrent");
        assert_eq!(body, b"d14:failure reason15:no such torrente");
        assert_eq!(
            decode_dict(&body),
            Err(TrackerResponseError::Failure("no such torrent".into()))
        );
    }

    #[test]
    fn keys_are_sorted() {
        let v = dict([("b", Value::Int(1)), ("a", Value::Int(2))]);
        assert_eq!(encode(&v), b"d1:ai2e1:bi1ee");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut body = vec![b'l'; 200_000];
        body.extend(vec![b'e'; 200_000]);
        assert!(matches!(
            decode_dict(&body),
            Err(TrackerResponseError::Malformed(_))
        ));
        assert_eq!(
            decode_dict(&body),
            Err(TrackerResponseError::Malformed("nested too deeply".into()))
        );
        // Strings that merely contain `l` do not count as nesting.
        let body = format!("d1:a20:{}1:bi1ee", "l".repeat(20));
        assert!(decode_dict(body.as_bytes()).is_ok());
    }

    #[test]
    fn oversize_and_non_dict_are_typed() {
        assert_eq!(
            decode_dict(&vec![b'0'; MAX_RESPONSE_BYTES + 1]),
            Err(TrackerResponseError::TooLarge(MAX_RESPONSE_BYTES + 1))
        );
        assert!(matches!(
            decode_dict(b"i3e"),
            Err(TrackerResponseError::Malformed(_))
        ));
        assert!(matches!(
            decode_dict(b"d5:peers"),
            Err(TrackerResponseError::Malformed(_))
        ));
    }
}
