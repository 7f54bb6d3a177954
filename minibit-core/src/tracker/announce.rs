//! Announce requests and responses (BEP 3 "trackers", compact peers BEP 23,
//! IPv6 peers BEP 7).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde_bencode::value::Value;

use super::bencode::{self, TrackerResponseError};
use super::query::{self, MAX_KEY_LEN, QueryError};
use crate::metainfo::InfoHash;
use crate::wire::PeerId;

/// The announce event (BEP 3 `event`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// A regular re-announce (no `event`, or `empty`).
    None,
    /// The first announce.
    Started,
    /// Every piece verified.
    Completed,
    /// Shutting down.
    Stopped,
}

/// Most peers a client keeps from one announce response; extra entries are ignored.
pub const MAX_RESPONSE_PEERS: usize = 1000;

/// One `GET /announce` request (BEP 3), as a client sends it and a tracker parses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent (`info_hash`, 20 bytes percent-encoded).
    pub info_hash: InfoHash,
    /// The announcing peer (`peer_id`, 20 bytes percent-encoded).
    pub peer_id: PeerId,
    /// The TCP port the peer listens on (`port`, 1-65535).
    pub port: u16,
    /// Bytes uploaded since the `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` event.
    pub downloaded: u64,
    /// Bytes still missing; 0 means a seeder.
    pub left: u64,
    /// `event`: `started`, `completed`, `stopped`, or absent/`empty` for a regular announce.
    pub event: AnnounceEvent,
    /// `compact=1`: the client wants the BEP 23 compact peer list.
    pub compact: bool,
    /// `numwant`: how many peers the client wants (the tracker applies its own default and cap).
    pub numwant: Option<u32>,
    /// `ip`: the address the peer claims; the tracker decides whether to trust it.
    pub ip: Option<IpAddr>,
    /// `key` (BEP 7): a per-session token that identifies the client across
    /// addresses. Opaque bytes (real clients send binary, e.g. aria2 sends 8
    /// random bytes), at most [`MAX_KEY_LEN`] bytes.
    pub key: Option<Vec<u8>>,
}

impl AnnounceRequest {
    /// Parses the raw (still percent-encoded) query string of an announce,
    /// the part of the URL after `?`. Unknown parameters are ignored; for a
    /// repeated parameter the first occurrence counts.
    ///
    /// # Errors
    /// A [`QueryError`] naming the first invalid or missing parameter:
    /// `info_hash`, `peer_id`, `port` (must be 1-65535), `uploaded`,
    /// `downloaded`, `left` (base-ten `u64`), `event`, `compact` (`0`/`1`),
    /// `numwant` (base-ten; values above `u32::MAX` saturate), `ip`
    /// (an IP address), `key` (any bytes, at most [`MAX_KEY_LEN`]).
    pub fn parse_query(raw_query: &str) -> Result<Self, QueryError> {
        let mut fields = RawFields::default();
        for (name, value) in query::pairs(raw_query) {
            let slot = match &*name {
                b"info_hash" => &mut fields.info_hash,
                b"peer_id" => &mut fields.peer_id,
                b"port" => &mut fields.port,
                b"uploaded" => &mut fields.uploaded,
                b"downloaded" => &mut fields.downloaded,
                b"left" => &mut fields.left,
                b"event" => &mut fields.event,
                b"compact" => &mut fields.compact,
                b"numwant" => &mut fields.numwant,
                b"ip" => &mut fields.ip,
                b"key" => &mut fields.key,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        fields.validate()
    }

    /// The query string a client appends to the announce URL after `?`
    /// (binary values percent-encoded; `event`, `numwant`, `ip`, `key`
    /// only when set). [`AnnounceRequest::parse_query`] reads it back.
    pub fn to_query(&self) -> String {
        let mut q = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            query::encode(&self.info_hash.0),
            query::encode(&self.peer_id.0),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact),
        );
        if let Some(event) = event_name(self.event) {
            let _ = write!(q, "&event={event}");
        }
        if let Some(n) = self.numwant {
            let _ = write!(q, "&numwant={n}");
        }
        if let Some(ip) = self.ip {
            let _ = write!(q, "&ip={}", query::encode(ip.to_string().as_bytes()));
        }
        if let Some(key) = &self.key {
            let _ = write!(q, "&key={}", query::encode(key));
        }
        q
    }
}

/// The wire name of an event, `None` for a regular announce.
fn event_name(event: AnnounceEvent) -> Option<&'static str> {
    match event {
        AnnounceEvent::None => None,
        AnnounceEvent::Started => Some("started"),
        AnnounceEvent::Completed => Some("completed"),
        AnnounceEvent::Stopped => Some("stopped"),
    }
}

/// The decoded but unvalidated announce parameters.
#[derive(Default)]
struct RawFields {
    info_hash: Option<Vec<u8>>,
    peer_id: Option<Vec<u8>>,
    port: Option<Vec<u8>>,
    uploaded: Option<Vec<u8>>,
    downloaded: Option<Vec<u8>>,
    left: Option<Vec<u8>>,
    event: Option<Vec<u8>>,
    compact: Option<Vec<u8>>,
    numwant: Option<Vec<u8>>,
    ip: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

/// A required parameter's value.
fn required<'a>(value: Option<&'a Vec<u8>>, name: &'static str) -> Result<&'a [u8], QueryError> {
    value.map(Vec::as_slice).ok_or(QueryError::Missing(name))
}

impl RawFields {
    fn validate(self) -> Result<AnnounceRequest, QueryError> {
        let info_hash = InfoHash(query::twenty_bytes(
            "info_hash",
            required(self.info_hash.as_ref(), "info_hash")?,
        )?);
        let peer_id = PeerId(query::twenty_bytes(
            "peer_id",
            required(self.peer_id.as_ref(), "peer_id")?,
        )?);
        let port = query::number::<u16>("port", required(self.port.as_ref(), "port")?)?;
        if port == 0 {
            return Err(QueryError::PortZero);
        }
        let count =
            |value: Option<&Vec<u8>>, name| query::number::<u64>(name, required(value, name)?);
        let uploaded = count(self.uploaded.as_ref(), "uploaded")?;
        let downloaded = count(self.downloaded.as_ref(), "downloaded")?;
        let left = count(self.left.as_ref(), "left")?;
        let event = match self.event.as_deref() {
            None | Some(b"" | b"empty") => AnnounceEvent::None,
            Some(b"started") => AnnounceEvent::Started,
            Some(b"completed") => AnnounceEvent::Completed,
            Some(b"stopped") => AnnounceEvent::Stopped,
            Some(other) => return Err(QueryError::UnknownEvent(query::quote(other))),
        };
        let compact = match self.compact.as_deref() {
            None | Some(b"0") => false,
            Some(b"1") => true,
            Some(other) => return Err(QueryError::BadCompact(query::quote(other))),
        };
        let numwant = self
            .numwant
            .map(|v| {
                query::number::<u64>("numwant", &v).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            })
            .transpose()?;
        let ip = self
            .ip
            .map(|v| {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .ok_or_else(|| QueryError::BadIp(query::quote(&v)))
            })
            .transpose()?;
        let key = self
            .key
            .map(|v| {
                if v.len() <= MAX_KEY_LEN {
                    Ok(v)
                } else {
                    Err(QueryError::BadKey)
                }
            })
            .transpose()?;
        Ok(AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded,
            downloaded,
            left,
            event,
            compact,
            numwant,
            ip,
            key,
        })
    }
}

/// A peer in an announce response.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrackerPeer {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its peer id: present in the dictionary form (BEP 3), absent in the compact form (BEP 23).
    pub peer_id: Option<PeerId>,
}

/// A successful announce response (BEP 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds the client should wait before its next regular announce.
    pub interval: u32,
    /// `min interval`: seconds the client must wait between announces, if the tracker sets it.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm.
    pub complete: u32,
    /// Leechers in the swarm.
    pub incomplete: u32,
    /// Peers to connect to.
    pub peers: Vec<TrackerPeer>,
    /// `warning message`: a non-fatal notice for the user.
    pub warning: Option<String>,
}

impl AnnounceResponse {
    /// The peers' socket addresses.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.iter().map(|p| p.addr)
    }

    /// The bencoded response body. `compact` selects BEP 23 `peers` (6
    /// bytes per IPv4 peer: address, port, big-endian) plus BEP 7 `peers6`
    /// (18 bytes per IPv6 peer) instead of the BEP 3 list of dictionaries
    /// with `ip`, `peer id` (when known) and `port`.
    pub fn encode(&self, compact: bool) -> Vec<u8> {
        let mut entries = vec![
            ("interval", Value::Int(self.interval.into())),
            ("complete", Value::Int(self.complete.into())),
            ("incomplete", Value::Int(self.incomplete.into())),
        ];
        if let Some(min) = self.min_interval {
            entries.push(("min interval", Value::Int(min.into())));
        }
        if let Some(warning) = &self.warning {
            entries.push((
                "warning message",
                Value::Bytes(warning.clone().into_bytes()),
            ));
        }
        if compact {
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            for peer in &self.peers {
                let port = peer.addr.port().to_be_bytes();
                match peer.addr.ip() {
                    IpAddr::V4(ip) => v4.extend(ip.octets().into_iter().chain(port)),
                    IpAddr::V6(ip) => v6.extend(ip.octets().into_iter().chain(port)),
                }
            }
            entries.push(("peers", Value::Bytes(v4)));
            if !v6.is_empty() {
                entries.push(("peers6", Value::Bytes(v6)));
            }
        } else {
            let list = self.peers.iter().map(|peer| {
                let mut d = vec![
                    ("ip", Value::Bytes(peer.addr.ip().to_string().into_bytes())),
                    ("port", Value::Int(peer.addr.port().into())),
                ];
                if let Some(id) = peer.peer_id {
                    d.push(("peer id", Value::Bytes(id.0.to_vec())));
                }
                bencode::dict(d)
            });
            entries.push(("peers", Value::List(list.collect())));
        }
        bencode::encode(&bencode::dict(entries))
    }

    /// Decodes a tracker's response body (client side). Accepts compact
    /// (BEP 23) and dictionary (BEP 3) `peers`, plus BEP 7 `peers6`, and
    /// ignores unknown keys. Dictionary entries whose `ip` is not an IP
    /// address (e.g. a DNS name) or whose port is 0 are skipped; at most
    /// [`MAX_RESPONSE_PEERS`] peers are kept.
    ///
    /// # Errors
    /// [`TrackerResponseError::Failure`] with the tracker's `failure reason`;
    /// otherwise the body is too large, not a bencoded dictionary, lacks
    /// `interval`, or has a value of the wrong type or a compact peer string
    /// whose length is not a multiple of 6 (18 for `peers6`).
    pub fn decode(body: &[u8]) -> Result<Self, TrackerResponseError> {
        let dict = bencode::decode_dict(body)?;
        let interval =
            bencode::int(&dict, "interval")?.ok_or(TrackerResponseError::MissingKey("interval"))?;
        let mut peers = Vec::new();
        match dict.get(&b"peers"[..]) {
            None => {}
            Some(Value::Bytes(b)) => compact_peers(b, 6, "peers", &mut peers)?,
            Some(Value::List(list)) => {
                peers.extend(list.iter().filter_map(dict_peer).take(MAX_RESPONSE_PEERS));
            }
            Some(_) => return Err(TrackerResponseError::BadValue("peers")),
        }
        if let Some(b) = bencode::bytes(&dict, "peers6")? {
            compact_peers(b, 18, "peers6", &mut peers)?;
        }
        peers.truncate(MAX_RESPONSE_PEERS);
        Ok(Self {
            interval,
            min_interval: bencode::int(&dict, "min interval")?,
            complete: bencode::int(&dict, "complete")?.unwrap_or(0),
            incomplete: bencode::int(&dict, "incomplete")?.unwrap_or(0),
            peers,
            warning: bencode::bytes(&dict, "warning message")?
                .map(|w| String::from_utf8_lossy(w).into_owned()),
        })
    }
}

/// Appends the peers of a compact string with `width`-byte entries (6: IPv4, 18: IPv6).
fn compact_peers(
    bytes: &[u8],
    width: usize,
    key: &'static str,
    out: &mut Vec<TrackerPeer>,
) -> Result<(), TrackerResponseError> {
    if bytes.len() % width != 0 {
        return Err(TrackerResponseError::BadValue(key));
    }
    let room = MAX_RESPONSE_PEERS.saturating_sub(out.len());
    out.extend(bytes.chunks_exact(width).take(room).filter_map(|entry| {
        let (ip, port) = entry.split_at(width - 2);
        let ip = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        };
        let port = u16::from_be_bytes([port[0], port[1]]);
        (port != 0).then_some(TrackerPeer {
            addr: SocketAddr::new(ip, port),
            peer_id: None,
        })
    }));
    Ok(())
}

/// One BEP 3 dictionary-form peer, or `None` if it is unusable.
fn dict_peer(value: &Value) -> Option<TrackerPeer> {
    let Value::Dict(d) = value else { return None };
    let ip = bencode::bytes(d, "ip").ok()??;
    let ip: IpAddr = std::str::from_utf8(ip).ok()?.parse().ok()?;
    let port: u16 = bencode::int(d, "port").ok()??;
    let peer_id = bencode::bytes(d, "peer id")
        .ok()
        .flatten()
        .and_then(|id| <[u8; 20]>::try_from(id).ok())
        .map(PeerId);
    (port != 0).then_some(TrackerPeer {
        addr: SocketAddr::new(ip, port),
        peer_id,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HASH: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";

    fn query(extra: &str) -> String {
        format!(
            "info_hash={HASH}&peer_id=-MB0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3{extra}"
        )
    }

    #[test]
    fn parses_a_real_client_query() {
        let req = AnnounceRequest::parse_query(&query(
            "&event=started&compact=1&numwant=80&key=7f3a&ip=10.0.0.2&supportcrypto=1",
        ))
        .unwrap();
        assert_eq!(
            req.info_hash.0,
            [
                0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
                0xef, 0x12, 0x34, 0x56, 0x78, 0x9a
            ]
        );
        assert_eq!(&req.peer_id.0, b"-MB0001-abcdefghijkl");
        assert_eq!(
            (req.port, req.uploaded, req.downloaded, req.left),
            (6881, 1, 2, 3)
        );
        assert_eq!(req.event, AnnounceEvent::Started);
        assert!(req.compact);
        assert_eq!(req.numwant, Some(80));
        assert_eq!(req.ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(req.key.as_deref(), Some(&b"7f3a"[..]));
    }

    #[test]
    fn key_is_opaque_bytes() {
        // aria2 1.36 sends 8 random bytes, most not UTF-8.
        let req = AnnounceRequest::parse_query(&query("&key=%0F%AC%95W%7C%E3q%60")).unwrap();
        assert_eq!(
            req.key.as_deref(),
            Some(&[0x0f, 0xac, 0x95, b'W', 0x7c, 0xe3, b'q', 0x60][..])
        );
        let longest = "%FF".repeat(MAX_KEY_LEN);
        let req = AnnounceRequest::parse_query(&query(&format!("&key={longest}"))).unwrap();
        assert_eq!(req.key, Some(vec![0xff; MAX_KEY_LEN]));
    }

    #[test]
    fn optional_parameters_default() {
        let req = AnnounceRequest::parse_query(&query("&event=")).unwrap();
        assert_eq!(req.event, AnnounceEvent::None);
        assert!(!req.compact);
        assert_eq!((req.numwant, req.ip, req.key), (None, None, None));
        assert_eq!(
            AnnounceRequest::parse_query(&query("&event=empty"))
                .unwrap()
                .event,
            AnnounceEvent::None
        );
    }

    #[test]
    fn huge_numwant_saturates_rather_than_fails() {
        let req = AnnounceRequest::parse_query(&query("&numwant=99999999999999")).unwrap();
        assert_eq!(req.numwant, Some(u32::MAX));
    }

    #[test]
    fn each_bad_parameter_has_its_error() {
        let full = query("");
        let without = |name: &str| {
            full.split('&')
                .filter(|p| !p.starts_with(&format!("{name}=")))
                .collect::<Vec<_>>()
                .join("&")
        };
        for name in [
            "info_hash",
            "peer_id",
            "port",
            "uploaded",
            "downloaded",
            "left",
        ] {
            let err = AnnounceRequest::parse_query(&without(name)).unwrap_err();
            assert_eq!(
                err,
                QueryError::Missing(match name {
                    "info_hash" => "info_hash",
                    "peer_id" => "peer_id",
                    "port" => "port",
                    "uploaded" => "uploaded",
                    "downloaded" => "downloaded",
                    _ => "left",
                })
            );
            assert_eq!(err.to_string(), format!("missing parameter `{name}`"));
        }
        let long_key = format!("key={}", "k".repeat(MAX_KEY_LEN + 1));
        let cases: &[(&str, QueryError)] = &[
            (
                "info_hash=%12%34",
                QueryError::NotTwentyBytes {
                    param: "info_hash",
                    len: 2,
                },
            ),
            (
                "peer_id=short",
                QueryError::NotTwentyBytes {
                    param: "peer_id",
                    len: 5,
                },
            ),
            ("port=0", QueryError::PortZero),
            (
                "port=65536",
                QueryError::NotANumber {
                    param: "port",
                    value: "65536".into(),
                },
            ),
            (
                "left=-1",
                QueryError::NotANumber {
                    param: "left",
                    value: "-1".into(),
                },
            ),
            (
                "uploaded=x",
                QueryError::NotANumber {
                    param: "uploaded",
                    value: "x".into(),
                },
            ),
            ("event=paused", QueryError::UnknownEvent("paused".into())),
            ("compact=yes", QueryError::BadCompact("yes".into())),
            (
                "numwant=lots",
                QueryError::NotANumber {
                    param: "numwant",
                    value: "lots".into(),
                },
            ),
            ("ip=example.org", QueryError::BadIp("example.org".into())),
            (&long_key, QueryError::BadKey),
        ];
        for (param, want) in cases {
            let name = param.split('=').next().unwrap();
            let q = format!("{param}&{}", without(name));
            assert_eq!(AnnounceRequest::parse_query(&q).as_ref(), Err(want), "{q}");
        }
        let err = AnnounceRequest::parse_query(&format!(
            "info_hash={}&{}",
            "%00".repeat(19),
            without("info_hash")
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter `info_hash` must be 20 bytes, got 19"
        );
    }

    #[test]
    fn first_occurrence_wins() {
        let req = AnnounceRequest::parse_query(&format!("port=7000&{}", query(""))).unwrap();
        assert_eq!(req.port, 7000);
    }

    fn sample_response(peers: Vec<TrackerPeer>) -> AnnounceResponse {
        AnnounceResponse {
            interval: 1800,
            min_interval: Some(60),
            complete: 3,
            incomplete: 4,
            peers,
            warning: Some("be nice".into()),
        }
    }

    fn peer(addr: &str, id: Option<u8>) -> TrackerPeer {
        TrackerPeer {
            addr: addr.parse().unwrap(),
            peer_id: id.map(|b| PeerId([b; 20])),
        }
    }

    #[test]
    fn compact_encoding_matches_bep_23_and_bep_7() {
        let resp = AnnounceResponse {
            min_interval: None,
            warning: None,
            ..sample_response(vec![peer("1.2.3.4:6881", Some(1)), peer("[::1]:258", None)])
        };
        let mut want = b"d8:completei3e10:incompletei4e8:intervali1800e5:peers6:\x01\x02\x03\x04\x1a\xe16:peers618:".to_vec();
        want.extend([0; 15]);
        want.extend([1, 1, 2]);
        want.push(b'e');
        assert_eq!(resp.encode(true), want);
    }

    #[test]
    fn dictionary_encoding_matches_bep_3() {
        let resp = AnnounceResponse {
            min_interval: None,
            warning: None,
            ..sample_response(vec![peer("1.2.3.4:6881", Some(b'A'))])
        };
        let want = format!(
            "d8:completei3e10:incompletei4e8:intervali1800e5:peersld2:ip7:1.2.3.47:peer id20:{}4:porti6881eeee",
            "A".repeat(20)
        );
        assert_eq!(resp.encode(false), want.as_bytes());
    }

    #[test]
    fn decode_skips_unusable_dict_peers_and_ignores_extra_keys() {
        let body = b"d8:intervali60e10:tracker id3:abc5:peersld2:ip11:example.org4:porti1eed2:ip8:10.0.0.14:porti0eed2:ip8:10.0.0.24:porti9e7:peer id3:abceee";
        let resp = AnnounceResponse::decode(body).unwrap();
        assert_eq!(resp.peers, vec![peer("10.0.0.2:9", None)]);
        assert_eq!((resp.interval, resp.complete, resp.incomplete), (60, 0, 0));
    }

    #[test]
    fn decode_reports_failure_reason_and_bad_shapes() {
        assert_eq!(
            AnnounceResponse::decode(b"d14:failure reason12:unregisterede"),
            Err(TrackerResponseError::Failure("unregistered".into()))
        );
        assert_eq!(
            AnnounceResponse::decode(b"d5:peers0:e"),
            Err(TrackerResponseError::MissingKey("interval"))
        );
        assert_eq!(
            AnnounceResponse::decode(b"d8:intervali-5ee"),
            Err(TrackerResponseError::BadValue("interval"))
        );
        assert_eq!(
            AnnounceResponse::decode(b"d8:intervali5e5:peers5:abcdee"),
            Err(TrackerResponseError::BadValue("peers"))
        );
        assert_eq!(
            AnnounceResponse::decode(b"d8:intervali5e5:peersi3ee"),
            Err(TrackerResponseError::BadValue("peers"))
        );
    }

    #[test]
    fn decode_bounds_the_peer_count() {
        let n = MAX_RESPONSE_PEERS + 10;
        let mut body = format!("d8:intervali5e5:peers{}:", n * 6).into_bytes();
        for i in 0..n {
            body.extend([10, 0, (i >> 8) as u8, i as u8, 0x1a, 0xe1]);
        }
        body.push(b'e');
        assert_eq!(
            AnnounceResponse::decode(&body).unwrap().peers.len(),
            MAX_RESPONSE_PEERS
        );
    }

    fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
        (
            (
                any::<[u8; 20]>(),
                any::<[u8; 20]>(),
                1..=u16::MAX,
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
            ),
            prop_oneof![
                Just(AnnounceEvent::None),
                Just(AnnounceEvent::Started),
                Just(AnnounceEvent::Completed),
                Just(AnnounceEvent::Stopped)
            ],
            any::<bool>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<IpAddr>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=MAX_KEY_LEN)),
        )
            .prop_map(
                |((h, p, port, up, down, left), event, compact, numwant, ip, key)| {
                    AnnounceRequest {
                        info_hash: InfoHash(h),
                        peer_id: PeerId(p),
                        port,
                        uploaded: up,
                        downloaded: down,
                        left,
                        event,
                        compact,
                        numwant,
                        ip,
                        key,
                    }
                },
            )
    }

    fn arb_peer() -> impl Strategy<Value = TrackerPeer> {
        (
            any::<IpAddr>(),
            1..=u16::MAX,
            proptest::option::of(any::<[u8; 20]>()),
        )
            .prop_map(|(ip, port, id)| TrackerPeer {
                addr: SocketAddr::new(ip, port),
                peer_id: id.map(PeerId),
            })
    }

    proptest! {
        #[test]
        fn parse_query_never_panics(
            query_like in "[a-z_=&%0-9A-F.:+-]{0,200}",
            anything in "(?s).{0,200}",
        ) {
            let _ = AnnounceRequest::parse_query(&query_like);
            let _ = AnnounceRequest::parse_query(&anything);
        }

        #[test]
        fn to_query_round_trips(req in arb_request()) {
            prop_assert_eq!(AnnounceRequest::parse_query(&req.to_query()), Ok(req));
        }

        #[test]
        fn encode_decode_round_trips(
            peers in proptest::collection::vec(arb_peer(), 0..50),
            interval: u32, min: Option<u32>, complete: u32, incomplete: u32,
            warning in proptest::option::of("\\PC{0,20}"),
            compact: bool,
        ) {
            let resp = AnnounceResponse { interval, min_interval: min, complete, incomplete, peers, warning };
            let decoded = AnnounceResponse::decode(&resp.encode(compact)).unwrap();
            let mut want = resp.clone();
            if compact {
                // The compact form carries no peer ids and lists IPv4 before IPv6.
                want.peers.sort_by_key(|p| p.addr.is_ipv6());
                for p in &mut want.peers { p.peer_id = None; }
            }
            prop_assert_eq!(decoded, want);
        }

        #[test]
        fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = AnnounceResponse::decode(&body);
        }

        #[test]
        fn decode_never_panics_on_mutated_responses(
            at in any::<proptest::sample::Index>(), byte: u8,
        ) {
            let mut body = sample_response(vec![peer("1.2.3.4:5", Some(7))]).encode(false);
            let i = at.index(body.len());
            body[i] = byte;
            let _ = AnnounceResponse::decode(&body);
        }
    }
}
