//! The BEP 10 extended handshake (extended message id 0).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use serde::Serialize;
use serde_bencode::value::Value;

use super::bencode::{Dict, decode_dict};
use super::{ExtensionError, Message};

/// The payload of a BEP 10 extended handshake: a bencoded dictionary whose
/// every key is optional. Keys minibit does not use are ignored on decode,
/// and so is a known key with an unusable value (wrong type or out of
/// range), since real clients (libtorrent, Transmission, aria2) vary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name to the extended message id the sender wants to
    /// receive it under; id 0 means disabled (BEP 10: the map is additive
    /// across repeated handshakes).
    pub m: BTreeMap<String, u8>,
    /// `p`: the sender's TCP listen port.
    pub p: Option<u16>,
    /// `v`: client name and version (UTF-8; invalid bytes are replaced).
    pub v: Option<String>,
    /// `reqq`: how many outstanding requests the sender queues without dropping.
    pub reqq: Option<u32>,
    /// `yourip`: the receiver's address as the sender sees it (4 or 16 bytes on the wire).
    pub yourip: Option<IpAddr>,
    /// `metadata_size` (BEP 9): size of the info dictionary, bytes.
    pub metadata_size: Option<u32>,
}

/// The serialised form; serde_bencode sorts the keys as bencode requires.
#[derive(Serialize)]
struct WireForm<'a> {
    m: &'a BTreeMap<String, u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reqq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    yourip: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata_size: Option<u32>,
}

impl ExtendedHandshake {
    /// The extended message id the sender assigned to extension `name`;
    /// `None` when absent or disabled (id 0).
    pub fn id_for(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    /// Parses an extended handshake payload (the bytes after the extended id 0).
    ///
    /// # Errors
    /// [`ExtensionError`] when the payload is not a bencoded dictionary (or
    /// nests too deep); individual keys never cause an error.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let dict = decode_dict(payload)?;
        let m = match dict.get(&b"m"[..]) {
            Some(Value::Dict(m)) => m
                .iter()
                .filter_map(|(name, id)| {
                    let name = String::from_utf8(name.clone()).ok()?;
                    Some((name, int::<u8>(id)?))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let yourip = match bytes(&dict, "yourip") {
            Some(b) => match <[u8; 4]>::try_from(b) {
                Ok(v4) => Some(IpAddr::V4(Ipv4Addr::from(v4))),
                Err(_) => <[u8; 16]>::try_from(b)
                    .ok()
                    .map(|v6| IpAddr::V6(Ipv6Addr::from(v6))),
            },
            None => None,
        };
        Ok(Self {
            m,
            p: dict.get(&b"p"[..]).and_then(int),
            v: bytes(&dict, "v").map(|v| String::from_utf8_lossy(v).into_owned()),
            reqq: dict.get(&b"reqq"[..]).and_then(int),
            yourip,
            metadata_size: dict.get(&b"metadata_size"[..]).and_then(int),
        })
    }

    /// The bencoded payload (keys sorted; `m` always present, other keys
    /// only when set).
    pub fn encode(&self) -> Bytes {
        let wire = WireForm {
            m: &self.m,
            p: self.p,
            v: self.v.as_deref(),
            reqq: self.reqq,
            yourip: self.yourip.map(|ip| match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            }),
            metadata_size: self.metadata_size,
        };
        let encoded = serde_bencode::to_bytes(&wire)
            .expect("integers, strings and byte strings always bencode");
        Bytes::from(encoded)
    }

    /// The whole `extended` message (BEP 10 id 20, extended id 0).
    pub fn to_message(&self) -> Message {
        Message::Extended {
            id: 0,
            payload: self.encode(),
        }
    }
}

/// An integer value that fits `T`.
fn int<T: TryFrom<i64>>(value: &Value) -> Option<T> {
    match value {
        Value::Int(i) => T::try_from(*i).ok(),
        _ => None,
    }
}

/// A byte-string value under `key`.
fn bytes<'a>(dict: &'a Dict, key: &str) -> Option<&'a [u8]> {
    match dict.get(key.as_bytes()) {
        Some(Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmission_style() {
        let payload =
            b"d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi51413e4:reqqi512e1:v17:Transmission 3.00e";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(hs.id_for("ut_metadata"), Some(2));
        assert_eq!(hs.id_for("ut_pex"), Some(1));
        assert_eq!(hs.id_for("lt_donthave"), None);
        assert_eq!(hs.p, Some(51413));
        assert_eq!(hs.reqq, Some(512));
        assert_eq!(hs.v.as_deref(), Some("Transmission 3.00"));
        assert_eq!(hs.yourip, None);
        assert_eq!(&hs.encode()[..], &payload[..]);
    }

    #[test]
    fn libtorrent_style_with_extra_keys() {
        // libtorrent: `e`, `complete_ago`, `upload_only`, ipv6/ipv4, a
        // disabled extension (id 0), `yourip` as 4 raw bytes.
        let mut payload = Vec::new();
        payload.extend_from_slice(b"d12:complete_agoi-1e1:ei0e4:ipv616:");
        payload.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        payload.extend_from_slice(
            b"1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e\
              11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e1:pi6881e4:reqqi500e\
              11:upload_onlyi0e1:v16:libtorrent 2.0.9",
        );
        payload.extend_from_slice(b"6:yourip4:");
        payload.extend_from_slice(&[192, 168, 1, 20]);
        payload.push(b'e');
        let hs = ExtendedHandshake::decode(&payload).unwrap();
        assert_eq!(hs.m.len(), 6);
        assert_eq!(hs.id_for("ut_holepunch"), Some(4));
        assert_eq!(hs.metadata_size, Some(31235));
        assert_eq!(hs.p, Some(6881));
        assert_eq!(hs.reqq, Some(500));
        assert_eq!(hs.v.as_deref(), Some("libtorrent 2.0.9"));
        assert_eq!(hs.yourip, Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20))));
        assert_eq!(ExtendedHandshake::decode(&hs.encode()), Ok(hs));
    }

    #[test]
    fn aria2_style_and_odd_values_are_tolerated() {
        // aria2 sends `v` as "aria2/1.37.0"; here `p` is out of range, `reqq`
        // is a string, an `m` id is negative, a name is not UTF-8 and
        // `yourip` has a bad length: each is ignored, not fatal.
        let payload = b"d1:md11:ut_metadatai1e6:ut_pexi-3e2:\xff\xfei5ee\
            13:metadata_sizei-7e1:pi70000e4:reqq3:2506:yourip3:abc1:v12:aria2/1.37.0e";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(hs.m, BTreeMap::from([("ut_metadata".to_owned(), 1)]));
        assert_eq!(hs.p, None);
        assert_eq!(hs.reqq, None);
        assert_eq!(hs.yourip, None);
        assert_eq!(hs.metadata_size, None);
        assert_eq!(hs.v.as_deref(), Some("aria2/1.37.0"));
    }

    #[test]
    fn ipv6_yourip_and_lossy_v() {
        let mut payload = b"d1:v2:\xc2\xff6:yourip16:".to_vec();
        payload.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        payload.push(b'e');
        let hs = ExtendedHandshake::decode(&payload).unwrap();
        assert_eq!(hs.yourip, Some("fe80::9".parse().unwrap()));
        assert_eq!(hs.v.as_deref(), Some("\u{fffd}\u{fffd}"));
        assert!(hs.m.is_empty());
    }

    #[test]
    fn not_a_dict_is_an_error() {
        assert_eq!(
            ExtendedHandshake::decode(b"i5e"),
            Err(ExtensionError::NotADict)
        );
        assert!(ExtendedHandshake::decode(b"d1:m").is_err());
    }

    #[test]
    fn to_message_uses_extended_id_zero() {
        let hs = ExtendedHandshake {
            m: BTreeMap::from([("ut_pex".to_owned(), 1)]),
            p: Some(6881),
            ..ExtendedHandshake::default()
        };
        assert_eq!(
            hs.to_message(),
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"d1:md6:ut_pexi1ee1:pi6881ee")
            }
        );
    }
}
