//! The UDP tracker protocol (BEP 15), both directions, sans IO.
//!
//! A client first sends a [`Request::Connect`] and receives a
//! [`Response::Connect`] holding a connection id; it then sends
//! [`Request::Announce`] / [`Request::Scrape`] carrying that id, answered
//! by [`Response::Announce`] / [`Response::Scrape`] or [`Response::Error`].
//! Every integer is big-endian. Packet layouts (bytes):
//!
//! | packet | layout |
//! |---|---|
//! | connect request | protocol id `0x41727101980` (8), action 0 (4), transaction id (4) = 16 |
//! | connect response | action 0 (4), transaction id (4), connection id (8) = 16 |
//! | announce request | connection id (8), action 1 (4), transaction id (4), info-hash (20), peer id (20), downloaded (8), left (8), uploaded (8), event (4), IPv4 (4), key (4), num_want (4, signed), port (2) = 98 |
//! | announce response | action 1 (4), transaction id (4), interval s (4), leechers (4), seeders (4), then 6 bytes per IPv4 peer or 18 per IPv6 peer |
//! | scrape request | connection id (8), action 2 (4), transaction id (4), 20 bytes per info-hash |
//! | scrape response | action 2 (4), transaction id (4), then seeders, completed, leechers (4 each) per info-hash |
//! | error response | action 3 (4), transaction id (4), message |
//!
//! Whether an announce response lists IPv4 or IPv6 peers is not in the
//! packet: it follows the address family of the request (BEP 15, "IPv6"),
//! so [`Response::decode`] takes the family of the socket the client used.
//!
//! Limits: a request or response whose fixed part is cut short, with an
//! unknown action, a connect without the protocol id, an unknown event, a
//! port of 0, more than [`MAX_SCRAPE_HASHES`] info-hashes, a trailing
//! partial entry, or more peers than one unfragmented datagram holds
//! ([`max_peers`]) is refused with a [`UdpTrackerError`]. Bytes after the
//! 98 of an announce request are ignored (BEP 41 options).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::scrape::ScrapeStats;
use super::{AnnounceEvent, AnnounceRequest};
use crate::metainfo::InfoHash;
use crate::wire::PeerId;

/// The magic connection id of a connect request (BEP 15).
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// Size of a connect request and of a connect response, bytes.
pub const CONNECT_LEN: usize = 16;
/// Size of an announce request without BEP 41 options, bytes.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Size of the fixed part of an announce response, bytes.
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
/// Size of the header shared by scrape requests, bytes.
const REQUEST_HEADER_LEN: usize = 16;
/// Size of the header shared by responses (action, transaction id), bytes.
const RESPONSE_HEADER_LEN: usize = 8;

/// Most info-hashes in one scrape request: "up to about 74 torrents can be
/// scraped at once" (BEP 15), which keeps the request at 1496 bytes.
pub const MAX_SCRAPE_HASHES: usize = 74;

/// Longest error message encoded or decoded, bytes (longer ones are cut
/// on a character boundary when encoding, refused when decoding).
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// Largest UDP payload that crosses a 1500-byte MTU unfragmented over IPv4
/// (1500 - 20 IP - 8 UDP), bytes.
const MAX_PAYLOAD_V4: usize = 1472;
/// The same over IPv6 (1500 - 40 IP - 8 UDP), bytes.
const MAX_PAYLOAD_V6: usize = 1452;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// The address family of a UDP tracker exchange: it decides the peer
/// format of announce responses (6 bytes IPv4, 18 bytes IPv6).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The request came over IPv4: IPv4 peers.
    V4,
    /// The request came over IPv6: IPv6 peers.
    V6,
}

impl Family {
    /// The family of a socket address (an IPv4-mapped IPv6 address counts
    /// as IPv6, as it is what the socket sees).
    pub fn of(addr: &std::net::SocketAddr) -> Self {
        if addr.is_ipv4() { Self::V4 } else { Self::V6 }
    }
}

/// Most peers in one announce response of `family` so that it fits one
/// unfragmented datagram: 242 IPv4 peers (6 bytes each) or 79 IPv6 peers
/// (18 bytes each), as opentracker does.
pub const fn max_peers(family: Family) -> usize {
    match family {
        Family::V4 => (MAX_PAYLOAD_V4 - ANNOUNCE_RESPONSE_HEADER_LEN) / 6,
        Family::V6 => (MAX_PAYLOAD_V6 - ANNOUNCE_RESPONSE_HEADER_LEN) / 18,
    }
}

/// A UDP tracker packet that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpTrackerError {
    /// Shorter than its fixed part.
    #[error("packet truncated: {got} bytes, need {need}")]
    Truncated {
        /// Bytes needed, at least.
        need: usize,
        /// Bytes received.
        got: usize,
    },
    /// An action other than connect (0), announce (1), scrape (2), or error
    /// (3, responses only).
    #[error("unknown action {0}")]
    UnknownAction(u32),
    /// A connect request whose connection id is not [`PROTOCOL_ID`].
    #[error("connect request without the protocol id (got {0:#x})")]
    NotTheProtocol(u64),
    /// An announce event other than 0-3.
    #[error("unknown announce event {0}")]
    UnknownEvent(u32),
    /// An announce from port 0.
    #[error("announce with port 0")]
    PortZero,
    /// A scrape without any info-hash.
    #[error("scrape without an info-hash")]
    NoHashes,
    /// More than [`MAX_SCRAPE_HASHES`] info-hashes in a scrape request, or
    /// more peers than [`max_peers`] in an announce response.
    #[error("too many entries: {0}")]
    TooMany(usize),
    /// A list (info-hashes, peers, scrape counts) ends in a partial entry.
    #[error("list of {entry}-byte entries has {len} bytes")]
    PartialEntry {
        /// Size of one entry, bytes.
        entry: usize,
        /// Size of the list, bytes.
        len: usize,
    },
    /// An error response whose message is longer than [`MAX_ERROR_MESSAGE`].
    #[error("error message of {0} bytes")]
    MessageTooLong(usize),
}

/// A UDP announce (BEP 15): the fields of an HTTP announce in binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpAnnounce {
    /// The id from the tracker's connect response.
    pub connection_id: u64,
    /// Chosen by the client, echoed in the response.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing; 0 means a seeder.
    pub left: u64,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// 0 none, 1 completed, 2 started, 3 stopped.
    pub event: AnnounceEvent,
    /// The IPv4 address the peer claims (`None` on the wire as 0).
    pub ip: Option<Ipv4Addr>,
    /// A per-session token of the client.
    pub key: u32,
    /// Peers wanted (`None` on the wire as a negative number, -1 by convention).
    pub num_want: Option<u32>,
    /// The TCP port the peer listens on, 1-65535.
    pub port: u16,
}

impl UdpAnnounce {
    /// The same announce as an HTTP one (compact; `key` as its 4 bytes,
    /// `num_want` bounded by `max_peers(family)`), for a tracker's
    /// bookkeeping shared by both protocols.
    pub fn to_announce_request(&self, family: Family) -> AnnounceRequest {
        let cap = max_peers(family) as u32;
        AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left,
            event: self.event,
            compact: true,
            numwant: Some(self.num_want.map_or(cap, |n| n.min(cap))),
            ip: self.ip.map(Into::into),
            key: Some(self.key.to_be_bytes().to_vec()),
        }
    }
}

/// A packet from a client to a UDP tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Ask for a connection id.
    Connect {
        /// Chosen by the client, echoed in the response.
        transaction_id: u32,
    },
    /// Announce.
    Announce(UdpAnnounce),
    /// Scrape 1 to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape {
        /// The id from the tracker's connect response.
        connection_id: u64,
        /// Chosen by the client, echoed in the response.
        transaction_id: u32,
        /// The torrents asked about.
        info_hashes: Vec<InfoHash>,
    },
}

impl Request {
    /// The transaction id the response must echo.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id } | Self::Scrape { transaction_id, .. } => {
                *transaction_id
            }
            Self::Announce(a) => a.transaction_id,
        }
    }

    /// The datagram to send.
    ///
    /// # Panics
    /// A scrape with more than [`MAX_SCRAPE_HASHES`] info-hashes (a bug of
    /// the caller: split the list).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        match self {
            Self::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Self::Announce(a) => {
                out.extend_from_slice(&a.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id.0);
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&event_code(a.event).to_be_bytes());
                out.extend_from_slice(&a.ip.map_or([0; 4], |ip| ip.octets()));
                out.extend_from_slice(&a.key.to_be_bytes());
                let num_want = a
                    .num_want
                    .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
                out.extend_from_slice(&num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Self::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                assert!(
                    info_hashes.len() <= MAX_SCRAPE_HASHES,
                    "a UDP scrape holds at most {MAX_SCRAPE_HASHES} info-hashes"
                );
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for hash in info_hashes {
                    out.extend_from_slice(&hash.0);
                }
            }
        }
        out
    }

    /// Parses a datagram received by a tracker.
    ///
    /// # Errors
    /// [`UdpTrackerError::Truncated`] below 16 bytes (98 for an announce),
    /// [`UdpTrackerError::UnknownAction`], [`UdpTrackerError::NotTheProtocol`]
    /// for a connect without [`PROTOCOL_ID`], [`UdpTrackerError::UnknownEvent`],
    /// [`UdpTrackerError::PortZero`], and for a scrape
    /// [`UdpTrackerError::NoHashes`], [`UdpTrackerError::PartialEntry`] or
    /// [`UdpTrackerError::TooMany`].
    pub fn decode(packet: &[u8]) -> Result<Self, UdpTrackerError> {
        let mut r = Reader::new(packet, REQUEST_HEADER_LEN)?;
        let connection_id = r.u64();
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT if connection_id == PROTOCOL_ID => Ok(Self::Connect { transaction_id }),
            ACTION_CONNECT => Err(UdpTrackerError::NotTheProtocol(connection_id)),
            ACTION_ANNOUNCE => {
                let mut r = Reader::new(packet, ANNOUNCE_REQUEST_LEN)?;
                r.skip(REQUEST_HEADER_LEN);
                let info_hash = InfoHash(r.array());
                let peer_id = PeerId(r.array());
                let downloaded = r.u64();
                let left = r.u64();
                let uploaded = r.u64();
                let event = event_from_code(r.u32())?;
                let ip = Some(Ipv4Addr::from(r.array::<4>())).filter(|ip| !ip.is_unspecified());
                let key = r.u32();
                let num_want = u32::try_from(i32::from_be_bytes(r.array())).ok();
                let port = r.u16();
                if port == 0 {
                    return Err(UdpTrackerError::PortZero);
                }
                Ok(Self::Announce(UdpAnnounce {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip,
                    key,
                    num_want,
                    port,
                }))
            }
            ACTION_SCRAPE => {
                let list = r.rest();
                let info_hashes = entries::<20>(list, MAX_SCRAPE_HASHES)?
                    .map(InfoHash)
                    .collect::<Vec<_>>();
                if info_hashes.is_empty() {
                    return Err(UdpTrackerError::NoHashes);
                }
                Ok(Self::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            other => Err(UdpTrackerError::UnknownAction(other)),
        }
    }
}

/// The peers of an announce response, all of the request's family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpPeers {
    /// 6 bytes each.
    V4(Vec<SocketAddrV4>),
    /// 18 bytes each.
    V6(Vec<SocketAddrV6>),
}

impl UdpPeers {
    /// How many peers.
    pub fn len(&self) -> usize {
        match self {
            Self::V4(p) => p.len(),
            Self::V6(p) => p.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The family of these peers.
    pub fn family(&self) -> Family {
        match self {
            Self::V4(_) => Family::V4,
            Self::V6(_) => Family::V6,
        }
    }

    /// The peers of `family` among `addrs`, at most [`max_peers`]`(family)`
    /// of them, in order.
    pub fn select(family: Family, addrs: impl IntoIterator<Item = std::net::SocketAddr>) -> Self {
        let addrs = addrs.into_iter();
        match family {
            Family::V4 => Self::V4(
                addrs
                    .filter_map(|a| match a {
                        std::net::SocketAddr::V4(a) => Some(a),
                        std::net::SocketAddr::V6(_) => None,
                    })
                    .take(max_peers(family))
                    .collect(),
            ),
            Family::V6 => Self::V6(
                addrs
                    .filter_map(|a| match a {
                        std::net::SocketAddr::V6(a) => Some(a),
                        std::net::SocketAddr::V4(_) => None,
                    })
                    .take(max_peers(family))
                    .collect(),
            ),
        }
    }

    /// The peers as socket addresses.
    pub fn addrs(&self) -> Vec<std::net::SocketAddr> {
        match self {
            Self::V4(p) => p.iter().copied().map(Into::into).collect(),
            Self::V6(p) => p.iter().copied().map(Into::into).collect(),
        }
    }
}

/// The counts of one torrent in a scrape response (BEP 15 order: seeders,
/// completed, leechers).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct UdpScrapeStats {
    /// Seeders.
    pub seeders: u32,
    /// Downloads completed.
    pub completed: u32,
    /// Leechers.
    pub leechers: u32,
}

impl From<ScrapeStats> for UdpScrapeStats {
    /// `downloaded` saturates at `u32::MAX`.
    fn from(s: ScrapeStats) -> Self {
        Self {
            seeders: s.complete,
            completed: u32::try_from(s.downloaded).unwrap_or(u32::MAX),
            leechers: s.incomplete,
        }
    }
}

/// A packet from a UDP tracker to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The connection id to use for about a minute.
    Connect {
        /// Echoed from the request.
        transaction_id: u32,
        /// To send with announces and scrapes.
        connection_id: u64,
    },
    /// The answer to an announce.
    Announce {
        /// Echoed from the request.
        transaction_id: u32,
        /// Seconds until the next regular announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Peers to connect to, at most [`max_peers`] of the request's family.
        peers: UdpPeers,
    },
    /// The answer to a scrape: counts in the order of the request.
    Scrape {
        /// Echoed from the request.
        transaction_id: u32,
        /// One entry per info-hash asked about.
        stats: Vec<UdpScrapeStats>,
    },
    /// The request failed; a message for the user.
    Error {
        /// Echoed from the request.
        transaction_id: u32,
        /// At most [`MAX_ERROR_MESSAGE`] bytes.
        message: String,
    },
}

impl Response {
    /// The transaction id of the request this answers.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id, .. }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. }
            | Self::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// The datagram to send. Peers beyond [`max_peers`], scrape entries
    /// beyond [`MAX_SCRAPE_HASHES`] and message bytes beyond
    /// [`MAX_ERROR_MESSAGE`] are left out, so the datagram is never larger
    /// than 1472 bytes (IPv4) / 1452 bytes (IPv6).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_PAYLOAD_V4);
        let (action, transaction_id) = match self {
            Self::Connect { transaction_id, .. } => (ACTION_CONNECT, transaction_id),
            Self::Announce { transaction_id, .. } => (ACTION_ANNOUNCE, transaction_id),
            Self::Scrape { transaction_id, .. } => (ACTION_SCRAPE, transaction_id),
            Self::Error { transaction_id, .. } => (ACTION_ERROR, transaction_id),
        };
        out.extend_from_slice(&action.to_be_bytes());
        out.extend_from_slice(&transaction_id.to_be_bytes());
        match self {
            Self::Connect { connection_id, .. } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Self::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => {
                for n in [interval, leechers, seeders] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                let cap = max_peers(peers.family());
                match peers {
                    UdpPeers::V4(peers) => {
                        for p in peers.iter().take(cap) {
                            out.extend_from_slice(&p.ip().octets());
                            out.extend_from_slice(&p.port().to_be_bytes());
                        }
                    }
                    UdpPeers::V6(peers) => {
                        for p in peers.iter().take(cap) {
                            out.extend_from_slice(&p.ip().octets());
                            out.extend_from_slice(&p.port().to_be_bytes());
                        }
                    }
                }
            }
            Self::Scrape { stats, .. } => {
                for s in stats.iter().take(MAX_SCRAPE_HASHES) {
                    for n in [s.seeders, s.completed, s.leechers] {
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                }
            }
            Self::Error { message, .. } => {
                out.extend_from_slice(cut_message(message).as_bytes());
            }
        }
        out
    }

    /// Parses a datagram received by a client over a socket of `family`
    /// (which decides the peer format of an announce response). The
    /// transaction id is not checked here: compare [`Response::transaction_id`]
    /// with the request's.
    ///
    /// # Errors
    /// [`UdpTrackerError::Truncated`] below the fixed part (8 bytes; 16 for
    /// connect, 20 for announce), [`UdpTrackerError::UnknownAction`],
    /// [`UdpTrackerError::PartialEntry`] for a peer or scrape list that
    /// ends mid-entry, [`UdpTrackerError::TooMany`] beyond [`max_peers`] or
    /// [`MAX_SCRAPE_HASHES`], [`UdpTrackerError::MessageTooLong`]. An error
    /// message that is not UTF-8 is decoded lossily (and cut to
    /// [`MAX_ERROR_MESSAGE`] bytes if the replacement characters lengthen it).
    pub fn decode(packet: &[u8], family: Family) -> Result<Self, UdpTrackerError> {
        let mut r = Reader::new(packet, RESPONSE_HEADER_LEN)?;
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT => {
                let mut r = Reader::new(packet, CONNECT_LEN)?;
                r.skip(RESPONSE_HEADER_LEN);
                Ok(Self::Connect {
                    transaction_id,
                    connection_id: r.u64(),
                })
            }
            ACTION_ANNOUNCE => {
                let mut r = Reader::new(packet, ANNOUNCE_RESPONSE_HEADER_LEN)?;
                r.skip(RESPONSE_HEADER_LEN);
                let (interval, leechers, seeders) = (r.u32(), r.u32(), r.u32());
                let list = r.rest();
                let cap = max_peers(family);
                let peers = match family {
                    Family::V4 => UdpPeers::V4(
                        entries::<6>(list, cap)?
                            .map(|e| {
                                SocketAddrV4::new(
                                    Ipv4Addr::new(e[0], e[1], e[2], e[3]),
                                    u16::from_be_bytes([e[4], e[5]]),
                                )
                            })
                            .collect(),
                    ),
                    Family::V6 => UdpPeers::V6(
                        entries::<18>(list, cap)?
                            .map(|e| {
                                let mut ip = [0; 16];
                                ip.copy_from_slice(&e[..16]);
                                SocketAddrV6::new(
                                    Ipv6Addr::from(ip),
                                    u16::from_be_bytes([e[16], e[17]]),
                                    0,
                                    0,
                                )
                            })
                            .collect(),
                    ),
                };
                Ok(Self::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let stats = entries::<12>(r.rest(), MAX_SCRAPE_HASHES)?
                    .map(|e| {
                        let n = |i: usize| u32::from_be_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
                        UdpScrapeStats {
                            seeders: n(0),
                            completed: n(4),
                            leechers: n(8),
                        }
                    })
                    .collect();
                Ok(Self::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => {
                let text = r.rest();
                if text.len() > MAX_ERROR_MESSAGE {
                    return Err(UdpTrackerError::MessageTooLong(text.len()));
                }
                Ok(Self::Error {
                    transaction_id,
                    message: cut_message(&String::from_utf8_lossy(text)).to_owned(),
                })
            }
            other => Err(UdpTrackerError::UnknownAction(other)),
        }
    }
}

/// The longest prefix of `message` of at most [`MAX_ERROR_MESSAGE`] bytes
/// that ends on a character boundary.
fn cut_message(message: &str) -> &str {
    let mut end = message.len().min(MAX_ERROR_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// The wire code of an announce event (BEP 15).
fn event_code(event: AnnounceEvent) -> u32 {
    match event {
        AnnounceEvent::None => 0,
        AnnounceEvent::Completed => 1,
        AnnounceEvent::Started => 2,
        AnnounceEvent::Stopped => 3,
    }
}

fn event_from_code(code: u32) -> Result<AnnounceEvent, UdpTrackerError> {
    Ok(match code {
        0 => AnnounceEvent::None,
        1 => AnnounceEvent::Completed,
        2 => AnnounceEvent::Started,
        3 => AnnounceEvent::Stopped,
        other => return Err(UdpTrackerError::UnknownEvent(other)),
    })
}

/// `list` cut into `N`-byte entries, at most `max` of them.
fn entries<const N: usize>(
    list: &[u8],
    max: usize,
) -> Result<impl Iterator<Item = [u8; N]> + '_, UdpTrackerError> {
    if list.len() % N != 0 {
        return Err(UdpTrackerError::PartialEntry {
            entry: N,
            len: list.len(),
        });
    }
    let count = list.len() / N;
    if count > max {
        return Err(UdpTrackerError::TooMany(count));
    }
    Ok(list.chunks_exact(N).map(|c| {
        let mut e = [0; N];
        e.copy_from_slice(c);
        e
    }))
}

/// Big-endian reads from a packet whose length was checked up front, so
/// the reads of the fixed part cannot fail.
struct Reader<'a> {
    packet: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `packet`, which must hold at least `need` bytes.
    fn new(packet: &'a [u8], need: usize) -> Result<Self, UdpTrackerError> {
        if packet.len() < need {
            return Err(UdpTrackerError::Truncated {
                need,
                got: packet.len(),
            });
        }
        Ok(Self { packet, pos: 0 })
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        a.copy_from_slice(&self.packet[self.pos..self.pos + N]);
        self.pos += N;
        a
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    fn rest(&self) -> &'a [u8] {
        &self.packet[self.pos..]
    }
}

#[cfg(test)]
mod tests;
