//! The BEP 11 peer exchange (`ut_pex`) payload.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use serde::Serialize;
use serde_bencode::value::Value;

use super::ExtensionError;
use super::bencode::{Dict, decode_dict};

/// Per-contact flags of a `ut_pex` `added.f` / `added6.f` byte (BEP 11).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// 0x01: prefers encryption.
    pub const ENCRYPTION: u8 = 0x01;
    /// 0x02: seed / upload only.
    pub const SEED: u8 = 0x02;
    /// 0x04: supports uTP.
    pub const UTP: u8 = 0x04;
    /// 0x08: supports `ut_holepunch`.
    pub const HOLEPUNCH: u8 = 0x08;
    /// 0x10: we connected out to it, so it is reachable.
    pub const REACHABLE: u8 = 0x10;

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

/// One `ut_pex` message (BEP 11): contacts connected and disconnected since
/// the previous one, IPv4 and IPv6 kept apart as on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pex {
    /// `added` (6 bytes each) with `added.f` (one byte each; all clear when absent).
    pub added: Vec<(SocketAddrV4, PexFlags)>,
    /// `added6` (18 bytes each) with `added6.f`.
    pub added6: Vec<(SocketAddrV6, PexFlags)>,
    /// `dropped` (6 bytes each).
    pub dropped: Vec<SocketAddrV4>,
    /// `dropped6` (18 bytes each).
    pub dropped6: Vec<SocketAddrV6>,
}

/// The serialised form; serde_bencode sorts the keys.
#[derive(Serialize)]
struct WireForm {
    #[serde(with = "serde_bytes")]
    added: Vec<u8>,
    #[serde(rename = "added.f", with = "serde_bytes")]
    added_f: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    added6: Option<Vec<u8>>,
    #[serde(
        rename = "added6.f",
        skip_serializing_if = "Option::is_none",
        with = "serde_bytes"
    )]
    added6_f: Option<Vec<u8>>,
    #[serde(with = "serde_bytes")]
    dropped: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    dropped6: Option<Vec<u8>>,
}

impl Pex {
    /// Parses a `ut_pex` payload (the bytes after the extended message id).
    /// Absent fields are empty; unknown keys are ignored.
    ///
    /// # Errors
    /// [`ExtensionError`] when the payload is not a bencoded dictionary, a
    /// known field is not a byte string ([`ExtensionError::PexFieldType`]),
    /// or a field's length is not a whole number of contacts or a flags
    /// field does not have one byte per added contact
    /// ([`ExtensionError::PexFieldLength`]).
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let dict = decode_dict(payload)?;
        let added = contacts(&dict, "added", V4_LEN, v4)?;
        let added6 = contacts(&dict, "added6", V6_LEN, v6)?;
        Ok(Self {
            added: with_flags(&dict, "added.f", added)?,
            added6: with_flags(&dict, "added6.f", added6)?,
            dropped: contacts(&dict, "dropped", V4_LEN, v4)?,
            dropped6: contacts(&dict, "dropped6", V6_LEN, v6)?,
        })
    }

    /// The bencoded payload: `added`, `added.f` and `dropped` always present
    /// (possibly empty), the IPv6 fields only when non-empty.
    pub fn encode(&self) -> Bytes {
        let non_empty = |v: Vec<u8>| (!v.is_empty()).then_some(v);
        let wire = WireForm {
            added: self.added.iter().flat_map(|(a, _)| v4_bytes(a)).collect(),
            added_f: self.added.iter().map(|(_, f)| f.0).collect(),
            added6: non_empty(self.added6.iter().flat_map(|(a, _)| v6_bytes(a)).collect()),
            added6_f: non_empty(self.added6.iter().map(|(_, f)| f.0).collect()),
            dropped: self.dropped.iter().flat_map(v4_bytes).collect(),
            dropped6: non_empty(self.dropped6.iter().flat_map(v6_bytes).collect()),
        };
        let encoded = serde_bencode::to_bytes(&wire).expect("byte strings always bencode");
        Bytes::from(encoded)
    }
}

/// The byte-string field `key`, empty when absent.
fn field<'a>(dict: &'a Dict, key: &'static str) -> Result<&'a [u8], ExtensionError> {
    match dict.get(key.as_bytes()) {
        None => Ok(&[]),
        Some(Value::Bytes(b)) => Ok(b),
        Some(_) => Err(ExtensionError::PexFieldType { field: key }),
    }
}

/// The compact contacts of field `key`, `size` bytes each, parsed by `parse`.
fn contacts<A>(
    dict: &Dict,
    key: &'static str,
    size: usize,
    parse: fn(&[u8]) -> A,
) -> Result<Vec<A>, ExtensionError> {
    let raw = field(dict, key)?;
    if raw.len() % size != 0 {
        return Err(ExtensionError::PexFieldLength {
            field: key,
            len: raw.len(),
            expected: if size == V4_LEN {
                "a multiple of 6"
            } else {
                "a multiple of 18"
            },
        });
    }
    Ok(raw.chunks_exact(size).map(parse).collect())
}

/// Pairs `addrs` with the flags field `key` (all clear when absent).
fn with_flags<A>(
    dict: &Dict,
    key: &'static str,
    addrs: Vec<A>,
) -> Result<Vec<(A, PexFlags)>, ExtensionError> {
    let flags = field(dict, key)?;
    if flags.is_empty() {
        return Ok(addrs
            .into_iter()
            .map(|a| (a, PexFlags::default()))
            .collect());
    }
    if flags.len() != addrs.len() {
        return Err(ExtensionError::PexFieldLength {
            field: key,
            len: flags.len(),
            expected: "one byte per added contact",
        });
    }
    Ok(addrs
        .into_iter()
        .zip(flags.iter().map(|&f| PexFlags(f)))
        .collect())
}

/// Compact IPv4 contact length: address then port, big-endian.
const V4_LEN: usize = 6;
/// Compact IPv6 contact length.
const V6_LEN: usize = 18;

/// Parses one [`V4_LEN`]-byte contact.
fn v4(raw: &[u8]) -> SocketAddrV4 {
    let ip = Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]);
    SocketAddrV4::new(ip, u16::from_be_bytes([raw[4], raw[5]]))
}

/// Parses one [`V6_LEN`]-byte contact.
fn v6(raw: &[u8]) -> SocketAddrV6 {
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&raw[..16]);
    SocketAddrV6::new(
        Ipv6Addr::from(ip),
        u16::from_be_bytes([raw[16], raw[17]]),
        0,
        0,
    )
}

fn v4_bytes(addr: &SocketAddrV4) -> impl Iterator<Item = u8> {
    addr.ip()
        .octets()
        .into_iter()
        .chain(addr.port().to_be_bytes())
}

fn v6_bytes(addr: &SocketAddrV6) -> impl Iterator<Item = u8> {
    addr.ip()
        .octets()
        .into_iter()
        .chain(addr.port().to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_libtorrent_style_message() {
        let mut payload = b"d5:added12:".to_vec();
        payload.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 0, 2, 0xc8, 0xd5]);
        payload.extend_from_slice(b"7:added.f2:\x12\x01");
        payload.extend_from_slice(b"7:dropped6:");
        payload.extend_from_slice(&[10, 0, 0, 3, 0, 80]);
        payload.push(b'e');
        let pex = Pex::decode(&payload).unwrap();
        assert_eq!(
            pex.added,
            vec![
                ("10.0.0.1:6881".parse().unwrap(), PexFlags(0x12)),
                ("192.168.0.2:51413".parse().unwrap(), PexFlags(0x01)),
            ]
        );
        assert!(pex.added[0].1.has(PexFlags::SEED | PexFlags::REACHABLE));
        assert!(!pex.added[0].1.has(PexFlags::UTP));
        assert_eq!(pex.dropped, vec!["10.0.0.3:80".parse().unwrap()]);
        assert!(pex.added6.is_empty() && pex.dropped6.is_empty());
        assert_eq!(&pex.encode()[..], &payload[..]);
    }

    #[test]
    fn missing_flags_are_clear_and_ipv6_parses() {
        let mut payload = b"d6:added618:".to_vec();
        payload.extend_from_slice(&[
            0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 99,
        ]);
        payload.push(b'e');
        let pex = Pex::decode(&payload).unwrap();
        assert_eq!(
            pex.added6,
            vec![("[2001:db8::7]:99".parse().unwrap(), PexFlags::default())]
        );
        assert_eq!(Pex::decode(&pex.encode()), Ok(pex));
    }

    #[test]
    fn strict_lengths() {
        assert_eq!(
            Pex::decode(b"d5:added5:abcdee"),
            Err(ExtensionError::PexFieldLength {
                field: "added",
                len: 5,
                expected: "a multiple of 6"
            })
        );
        assert!(matches!(
            Pex::decode(b"d8:dropped617:aaaaaaaaaaaaaaaaae"),
            Err(ExtensionError::PexFieldLength {
                field: "dropped6",
                len: 17,
                ..
            })
        ));
        assert!(matches!(
            Pex::decode(b"d5:added6:abcdef7:added.f2:\x01\x02e"),
            Err(ExtensionError::PexFieldLength {
                field: "added.f",
                len: 2,
                ..
            })
        ));
        assert_eq!(
            Pex::decode(b"d7:droppedi5ee"),
            Err(ExtensionError::PexFieldType { field: "dropped" })
        );
        assert_eq!(Pex::decode(b"le"), Err(ExtensionError::NotADict));
    }
}
