//! Local service discovery (BEP 14): the `BT-SEARCH` announce multicast to
//! the local network, its strict parser, when each torrent is announced,
//! and the cap on how many received datagrams are looked at. Sans-IO: the
//! driver owns the multicast sockets and the clock.
//!
//! An announce is an HTTP-like request in one UDP datagram (BEP 14
//! "Protocol"):
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: 0123456789abcdef0123456789abcdef01234567\r\n
//! cookie: 5f3a9c01\r\n
//! \r\n
//! \r\n
//! ```
//!
//! One datagram may carry several consecutive `Infohash` headers and stays
//! under [`MAX_ANNOUNCE_LEN`] bytes (BEP 14). The `cookie` lets a sender
//! recognise its own announces coming back through multicast loopback.
//!
//! The [`LsdSchedule`] announces each torrent when it is added and every 5
//! minutes after (BEP 14 "Usage"), never more than once per minute per
//! torrent however often it is asked, and batches the torrents due within
//! a minute of each other into one datagram (BEP 14 allows several
//! info-hashes per announce when more than 5 torrents are active; libtorrent
//! sends one per torrent, so a minibit announce is also read by it: it
//! takes the first `Infohash`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::metainfo::InfoHash;

/// The UDP port of both LSD multicast groups (BEP 14).
pub const LSD_PORT: u16 = 6771;
/// The IPv4 group, organisation-local scope (BEP 14 group A).
pub const LSD_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
/// The IPv6 group, site-local scope (BEP 14 group B).
pub const LSD_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f);
/// Longest announce we send, bytes (BEP 14: "should not exceed 1400 bytes
/// to avoid MTU/fragmentation problems").
pub const MAX_ANNOUNCE_LEN: usize = 1400;
/// Longest datagram the parser accepts, bytes (an Ethernet MTU; anything
/// longer is refused unread).
pub const MAX_DATAGRAM_LEN: usize = 1500;
/// Longest cookie accepted or sent, bytes.
pub const MAX_COOKIE_LEN: usize = 64;
/// Most info-hashes in one announce we send (what fits in
/// [`MAX_ANNOUNCE_LEN`] with an IPv6 `Host` and a longest cookie).
pub const MAX_INFOHASHES_PER_ANNOUNCE: usize = 24;

/// The request line of every announce.
const REQUEST_LINE: &str = "BT-SEARCH * HTTP/1.1";

/// Which LSD multicast group an announce is for (its `Host` header).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LsdGroup {
    /// `239.192.152.143:6771`.
    V4,
    /// `[ff15::efc0:988f]:6771`.
    V6,
}

impl LsdGroup {
    /// The group's address with `port` (normally [`LSD_PORT`]).
    pub fn addr(self, port: u16) -> SocketAddr {
        match self {
            Self::V4 => SocketAddr::new(IpAddr::V4(LSD_GROUP_V4), port),
            Self::V6 => SocketAddr::new(IpAddr::V6(LSD_GROUP_V6), port),
        }
    }

    /// The group a `Host` address names, if it is one of the two.
    fn of(addr: SocketAddr) -> Option<Self> {
        match addr.ip() {
            IpAddr::V4(ip) if ip == LSD_GROUP_V4 => Some(Self::V4),
            IpAddr::V6(ip) if ip == LSD_GROUP_V6 => Some(Self::V6),
            _ => None,
        }
    }
}

/// Why a datagram is not an LSD announce we accept. A datagram that fails
/// loses nothing: the driver drops it and keeps listening.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LsdError {
    /// Longer than [`MAX_DATAGRAM_LEN`] bytes.
    #[error("datagram of {0} bytes is over {MAX_DATAGRAM_LEN}")]
    TooLong(usize),
    /// Not ASCII text (an announce is plain HTTP header text).
    #[error("datagram is not ASCII text")]
    NotText,
    /// The first line is not `BT-SEARCH * HTTP/1.1`.
    #[error("not a BT-SEARCH request")]
    NotBtSearch,
    /// A header line without `:`, or the headers end without a blank line.
    #[error("malformed header line")]
    BadHeader,
    /// No `Host` header, or it is not one of the two LSD groups.
    #[error("Host is missing or not an LSD group")]
    BadHost,
    /// No `Port`, two of them, or not a decimal in 1-65535.
    #[error("Port is missing, repeated or not in 1-65535")]
    BadPort,
    /// No `Infohash` header, one that is not 40 hex digits, or more than
    /// fit in a datagram.
    #[error("Infohash is missing or not 40 hex digits")]
    BadInfoHash,
    /// A cookie that is empty, repeated, longer than [`MAX_COOKIE_LEN`] or
    /// not printable.
    #[error("cookie is empty, repeated, too long or not printable")]
    BadCookie,
}

/// One LSD announce (BEP 14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdAnnounce {
    /// The group it is sent to (its `Host` header).
    pub group: LsdGroup,
    /// The port of the group in `Host` (normally [`LSD_PORT`]).
    pub group_port: u16,
    /// The TCP port the sender accepts peer connections on (never 0).
    pub port: u16,
    /// The torrents the sender is in: 1 to [`MAX_INFOHASHES_PER_ANNOUNCE`]
    /// for ones we make, distinct, in header order.
    pub info_hashes: Vec<InfoHash>,
    /// The sender's cookie (printable ASCII, at most [`MAX_COOKIE_LEN`]
    /// bytes), if it sent one.
    pub cookie: Option<String>,
}

impl LsdAnnounce {
    /// The datagram, headers in BEP 14 order, ending with the two blank
    /// lines BEP 14 shows. At most [`MAX_ANNOUNCE_LEN`] bytes when there
    /// are at most [`MAX_INFOHASHES_PER_ANNOUNCE`] info-hashes and the
    /// cookie is at most [`MAX_COOKIE_LEN`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::with_capacity(128 + 52 * self.info_hashes.len());
        let host = self.group.addr(self.group_port);
        let _ = write!(
            text,
            "{REQUEST_LINE}\r\nHost: {host}\r\nPort: {}\r\n",
            self.port
        );
        for hash in &self.info_hashes {
            let _ = write!(text, "Infohash: {hash}\r\n");
        }
        if let Some(cookie) = &self.cookie {
            let _ = write!(text, "cookie: {cookie}\r\n");
        }
        text.push_str("\r\n\r\n");
        text.into_bytes()
    }

    /// Parses one datagram. Header names are case-insensitive, lines end
    /// in CRLF or LF, headers other than `Host`, `Port`, `Infohash` and
    /// `cookie` are ignored (BEP 14), and so is anything after the blank
    /// line that ends the headers. Repeated info-hashes count once.
    ///
    /// # Errors
    /// An [`LsdError`] naming the first thing wrong.
    pub fn parse(datagram: &[u8]) -> Result<Self, LsdError> {
        if datagram.len() > MAX_DATAGRAM_LEN {
            return Err(LsdError::TooLong(datagram.len()));
        }
        if !datagram.is_ascii() {
            return Err(LsdError::NotText);
        }
        // ASCII is UTF-8.
        let text = std::str::from_utf8(datagram).map_err(|_| LsdError::NotText)?;
        // Every line ends in LF (CRLF included); an unterminated last
        // line is a malformed one.
        let mut lines = text.split_inclusive('\n').map(|l| {
            l.strip_suffix('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .ok_or(LsdError::BadHeader)
        });
        if lines.next() != Some(Ok(REQUEST_LINE)) {
            return Err(LsdError::NotBtSearch);
        }
        let mut host = None;
        let mut port = None;
        let mut info_hashes: Vec<InfoHash> = Vec::new();
        let mut cookie = None;
        let mut ended = false;
        for line in lines {
            let line = line?;
            if line.is_empty() {
                ended = true;
                break;
            }
            let (name, value) = line.split_once(':').ok_or(LsdError::BadHeader)?;
            let value = value.trim_matches([' ', '\t']);
            if name.eq_ignore_ascii_case("host") {
                if host.is_some() {
                    return Err(LsdError::BadHost);
                }
                let addr: SocketAddr = value.parse().map_err(|_| LsdError::BadHost)?;
                let group = LsdGroup::of(addr).ok_or(LsdError::BadHost)?;
                host = Some((group, addr.port()));
            } else if name.eq_ignore_ascii_case("port") {
                if port.is_some() {
                    return Err(LsdError::BadPort);
                }
                port = Some(parse_port(value)?);
            } else if name.eq_ignore_ascii_case("infohash") {
                let hash = parse_info_hash(value)?;
                if !info_hashes.contains(&hash) {
                    info_hashes.push(hash);
                }
            } else if name.eq_ignore_ascii_case("cookie") {
                if cookie.is_some() || !valid_cookie(value) {
                    return Err(LsdError::BadCookie);
                }
                cookie = Some(value.to_owned());
            }
        }
        if !ended {
            return Err(LsdError::BadHeader);
        }
        let (group, group_port) = host.ok_or(LsdError::BadHost)?;
        if info_hashes.is_empty() {
            return Err(LsdError::BadInfoHash);
        }
        Ok(Self {
            group,
            group_port,
            port: port.ok_or(LsdError::BadPort)?,
            info_hashes,
            cookie,
        })
    }

    /// Whether `cookie` (ours) is this announce's: it is our own, back
    /// through multicast loopback, and must be ignored.
    pub fn is_from(&self, cookie: &str) -> bool {
        self.cookie.as_deref() == Some(cookie)
    }

    /// The address a peer that sent this announce from `source` (the
    /// datagram's source address) accepts connections on: the source IP
    /// with the announced port (BEP 14 "Usage").
    pub fn peer_addr(&self, source: SocketAddr) -> SocketAddr {
        let mut addr = source;
        addr.set_port(self.port);
        addr
    }
}

/// A cookie as sent: 16 lower-case hex digits of `value` (draw it from OS
/// randomness once per node).
pub fn cookie_from(value: u64) -> String {
    format!("{value:016x}")
}

fn parse_port(value: &str) -> Result<u16, LsdError> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LsdError::BadPort);
    }
    match value.parse::<u16>() {
        Ok(0) | Err(_) => Err(LsdError::BadPort),
        Ok(port) => Ok(port),
    }
}

fn parse_info_hash(value: &str) -> Result<InfoHash, LsdError> {
    let mut bytes = [0; 20];
    if value.len() != 40 {
        return Err(LsdError::BadInfoHash);
    }
    hex::decode_to_slice(value, &mut bytes).map_err(|_| LsdError::BadInfoHash)?;
    Ok(InfoHash(bytes))
}

fn valid_cookie(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_COOKIE_LEN
        && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Tunables of an [`LsdSchedule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdScheduleConfig {
    /// Time between two announces of a torrent (default 5 min, BEP 14).
    pub interval: Duration,
    /// Shortest time between two announces of one torrent, however often
    /// one is asked for (default 1 min, BEP 14).
    pub min_gap: Duration,
    /// A torrent due within this time after a batch goes out joins it
    /// early (default 1 min), so torrents settle into shared datagrams.
    pub batch_window: Duration,
}

impl Default for LsdScheduleConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5 * 60),
            min_gap: Duration::from_secs(60),
            batch_window: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    due: Instant,
    last: Option<Instant>,
}

impl Entry {
    /// The earliest instant this torrent may be announced again.
    fn allowed(&self, min_gap: Duration) -> Option<Instant> {
        self.last.map(|last| last + min_gap)
    }
}

/// When each registered torrent is announced on LSD. Private torrents
/// (BEP 27) must never be added: the driver refuses them.
#[derive(Clone, Debug)]
pub struct LsdSchedule {
    config: LsdScheduleConfig,
    torrents: BTreeMap<InfoHash, Entry>,
}

impl LsdSchedule {
    /// An empty schedule.
    pub fn new(config: LsdScheduleConfig) -> Self {
        Self {
            config,
            torrents: BTreeMap::new(),
        }
    }

    /// Registers `info_hash`, due at `now`; false (and nothing changes)
    /// when it is already registered.
    pub fn add(&mut self, info_hash: InfoHash, now: Instant) -> bool {
        if self.torrents.contains_key(&info_hash) {
            return false;
        }
        self.torrents.insert(
            info_hash,
            Entry {
                due: now,
                last: None,
            },
        );
        true
    }

    /// Forgets `info_hash`; false when it was not registered.
    pub fn remove(&mut self, info_hash: &InfoHash) -> bool {
        self.torrents.remove(info_hash).is_some()
    }

    /// Whether `info_hash` is registered.
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.torrents.contains_key(info_hash)
    }

    /// Registered torrents.
    pub fn len(&self) -> usize {
        self.torrents.len()
    }

    /// Whether no torrent is registered.
    pub fn is_empty(&self) -> bool {
        self.torrents.is_empty()
    }

    /// Asks for an announce of `info_hash` soon (it wants peers): due at
    /// `now`, or one [`LsdScheduleConfig::min_gap`] after its last
    /// announce, whichever is later. False when it is not registered.
    pub fn request(&mut self, info_hash: &InfoHash, now: Instant) -> bool {
        let min_gap = self.config.min_gap;
        let Some(entry) = self.torrents.get_mut(info_hash) else {
            return false;
        };
        let at = entry
            .allowed(min_gap)
            .map_or(now, |allowed| allowed.max(now));
        entry.due = entry.due.min(at);
        true
    }

    /// The info-hashes to announce in one datagram at `now` (1 to
    /// [`MAX_INFOHASHES_PER_ANNOUNCE`], earliest due first), counted as
    /// sent; `None` when none is due. Torrents due within
    /// [`LsdScheduleConfig::batch_window`] join a batch when their
    /// minimum gap allows. Call again until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<InfoHash>> {
        let (min_gap, window) = (self.config.min_gap, self.config.batch_window);
        let may_send = |e: &Entry| e.allowed(min_gap).is_none_or(|a| a <= now);
        if !self.torrents.values().any(|e| e.due <= now && may_send(e)) {
            return None;
        }
        let mut batch: Vec<(Instant, InfoHash)> = self
            .torrents
            .iter()
            .filter(|(_, e)| e.due <= now + window && may_send(e))
            .map(|(hash, e)| (e.due, *hash))
            .collect();
        batch.sort_unstable();
        batch.truncate(MAX_INFOHASHES_PER_ANNOUNCE);
        let interval = self.config.interval;
        Some(
            batch
                .into_iter()
                .map(|(_, hash)| {
                    let entry = self.torrents.get_mut(&hash).expect("listed just now");
                    entry.last = Some(now);
                    entry.due = now + interval;
                    hash
                })
                .collect(),
        )
    }

    /// The earliest instant [`LsdSchedule::poll`] may return a batch;
    /// `None` with no torrent registered.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let min_gap = self.config.min_gap;
        self.torrents
            .values()
            .map(|e| e.allowed(min_gap).map_or(e.due, |a| a.max(e.due)))
            .min()
    }
}

/// A cap on received datagrams looked at (a token bucket): a flood on the
/// LSD group costs at most `burst` parses at once and `per_second` after.
#[derive(Clone, Debug)]
pub struct FloodCap {
    burst: f64,
    per_second: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl FloodCap {
    /// A full bucket of `burst` datagrams, refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self {
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            tokens: f64::from(burst),
            at: None,
        }
    }

    /// Whether a datagram received at `now` may be looked at (takes one
    /// token). Time going backwards adds nothing.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        }
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::test_clock::origin;

    fn hash(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    const LIBTORRENT: &str = "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: 0123456789ABCDEF0123456789abcdef01234567\r\ncookie: 5f3a9c01\r\n\r\n\r\n";

    #[test]
    fn parses_the_bep_14_example_and_ignores_unknown_headers() {
        let a = LsdAnnounce::parse(LIBTORRENT.as_bytes()).unwrap();
        assert_eq!(a.group, LsdGroup::V4);
        assert_eq!(a.group_port, 6771);
        assert_eq!(a.port, 6881);
        assert_eq!(
            a.info_hashes[0].to_hex(),
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(a.cookie.as_deref(), Some("5f3a9c01"));
        assert!(a.is_from("5f3a9c01"));
        assert!(!a.is_from("5f3a9c02"));
        let lf = "bt-search * HTTP/1.1\n";
        assert_eq!(
            LsdAnnounce::parse(lf.as_bytes()),
            Err(LsdError::NotBtSearch)
        );
        let extra = "BT-SEARCH * HTTP/1.1\nhost: [ff15::efc0:988f]:6771\nX-Other: 1\nPORT:  51413 \ninfohash: 0101010101010101010101010101010101010101\ninfohash: 0101010101010101010101010101010101010101\n\n";
        let a = LsdAnnounce::parse(extra.as_bytes()).unwrap();
        assert_eq!((a.group, a.port, &a.cookie), (LsdGroup::V6, 51413, &None));
        assert_eq!(a.info_hashes, [hash(1)], "a repeated hash counts once");
        let source: SocketAddr = "10.0.0.7:6771".parse().unwrap();
        assert_eq!(a.peer_addr(source), "10.0.0.7:51413".parse().unwrap());
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let with = |from: &str, to: &str| LIBTORRENT.replacen(from, to, 1).into_bytes();
        let cases: Vec<(Vec<u8>, LsdError)> = vec![
            (vec![b' '; 1501], LsdError::TooLong(1501)),
            (
                b"BT-SEARCH * HTTP/1.1\r\n\xff\r\n".to_vec(),
                LsdError::NotText,
            ),
            (b"".to_vec(), LsdError::NotBtSearch),
            (with("BT-SEARCH *", "M-SEARCH *"), LsdError::NotBtSearch),
            (with("Port: 6881", "Port 6881"), LsdError::BadHeader),
            (with("\r\n\r\n\r\n", "\r\n"), LsdError::BadHeader),
            (
                with("239.192.152.143", "239.192.152.144"),
                LsdError::BadHost,
            ),
            (
                with("Host: 239.192.152.143:6771\r\n", ""),
                LsdError::BadHost,
            ),
            (with("Port: 6881", "Port: 0"), LsdError::BadPort),
            (with("Port: 6881", "Port: 65536"), LsdError::BadPort),
            (with("Port: 6881", "Port: +6881"), LsdError::BadPort),
            (
                with("Port: 6881", "Port: 6881\r\nPort: 1"),
                LsdError::BadPort,
            ),
            (with("Port: 6881\r\n", ""), LsdError::BadPort),
            (with("01234567\r\n", "0123456\r\n"), LsdError::BadInfoHash),
            (with("01234567\r\n", "0123456g\r\n"), LsdError::BadInfoHash),
            (with("Infohash", "X-Infohash"), LsdError::BadInfoHash),
            (with("5f3a9c01", ""), LsdError::BadCookie),
            (with("5f3a9c01", "a b"), LsdError::BadCookie),
            (with("5f3a9c01", &"c".repeat(65)), LsdError::BadCookie),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                LsdAnnounce::parse(&bytes),
                Err(error),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn a_full_announce_fits_in_1400_bytes() {
        let a = LsdAnnounce {
            group: LsdGroup::V6,
            group_port: 65535,
            port: 65535,
            info_hashes: (0..MAX_INFOHASHES_PER_ANNOUNCE as u8).map(hash).collect(),
            cookie: Some("c".repeat(MAX_COOKIE_LEN)),
        };
        let bytes = a.encode();
        assert!(bytes.len() <= MAX_ANNOUNCE_LEN, "{}", bytes.len());
        assert!(
            bytes.len() + 52 > MAX_ANNOUNCE_LEN,
            "one more would not fit"
        );
        assert_eq!(LsdAnnounce::parse(&bytes).unwrap(), a);
        assert_eq!(cookie_from(0x5f3a_9c01), "000000005f3a9c01");
    }

    fn mins(n: u64) -> Duration {
        Duration::from_secs(60 * n)
    }

    #[test]
    fn announces_at_once_then_every_five_minutes() {
        let t0 = origin();
        let mut s = LsdSchedule::new(LsdScheduleConfig::default());
        assert_eq!(s.poll_timeout(), None);
        assert!(s.add(hash(1), t0));
        assert!(!s.add(hash(1), t0), "already registered");
        assert_eq!(s.poll(t0), Some(vec![hash(1)]));
        assert_eq!(s.poll(t0), None);
        assert_eq!(s.poll_timeout(), Some(t0 + mins(5)));
        assert_eq!(s.poll(t0 + mins(4) + Duration::from_secs(59)), None);
        assert_eq!(s.poll(t0 + mins(5)), Some(vec![hash(1)]));
        assert!(s.remove(&hash(1)));
        assert!(!s.remove(&hash(1)));
        assert_eq!(s.poll(t0 + mins(20)), None);
    }

    #[test]
    fn asking_often_announces_at_most_once_a_minute() {
        let t0 = origin();
        let mut s = LsdSchedule::new(LsdScheduleConfig::default());
        s.add(hash(1), t0);
        assert_eq!(s.poll(t0), Some(vec![hash(1)]));
        let mut sent = vec![];
        for second in 0..=180 {
            let now = t0 + Duration::from_secs(second);
            assert!(s.request(&hash(1), now));
            if s.poll(now).is_some() {
                sent.push(second);
            }
        }
        assert_eq!(sent, [60, 120, 180]);
        assert!(!s.request(&hash(9), t0), "not registered");
    }

    #[test]
    fn torrents_due_within_a_minute_share_a_datagram() {
        let t0 = origin();
        let mut s = LsdSchedule::new(LsdScheduleConfig::default());
        s.add(hash(1), t0);
        assert_eq!(s.poll(t0), Some(vec![hash(1)]));
        s.add(hash(2), t0 + mins(2));
        assert_eq!(s.poll(t0 + mins(2)), Some(vec![hash(2)]));
        // hash(1) is due at 5 min, hash(2) at 7 min: not within a minute.
        assert_eq!(s.poll(t0 + mins(5)), Some(vec![hash(1)]));
        assert_eq!(s.poll(t0 + mins(7)), Some(vec![hash(2)]));
        s.add(hash(3), t0 + mins(9) + Duration::from_secs(30));
        // At 9:30 hash(3) is due and hash(1) (due 10:00) comes along, not
        // hash(2) (due 12:00).
        assert_eq!(
            s.poll(t0 + mins(9) + Duration::from_secs(30)),
            Some(vec![hash(3), hash(1)])
        );
    }

    #[test]
    fn a_batch_holds_at_most_what_fits_in_a_datagram() {
        let t0 = origin();
        let mut s = LsdSchedule::new(LsdScheduleConfig::default());
        for b in 0..60 {
            s.add(hash(b), t0);
        }
        let sizes: Vec<usize> = std::iter::from_fn(|| s.poll(t0).map(|b| b.len())).collect();
        assert_eq!(sizes, [24, 24, 12]);
    }

    #[test]
    fn the_flood_cap_refills_at_its_rate() {
        let t0 = origin();
        let mut cap = FloodCap::new(3, 2);
        let allowed = |cap: &mut FloodCap, now| (0..10).filter(|_| cap.allow(now)).count();
        assert_eq!(allowed(&mut cap, t0), 3);
        assert_eq!(allowed(&mut cap, t0 + Duration::from_secs(1)), 2);
        assert_eq!(allowed(&mut cap, t0), 0, "time going back adds nothing");
        assert_eq!(allowed(&mut cap, t0 + Duration::from_secs(100)), 3);
    }

    fn announce() -> impl Strategy<Value = LsdAnnounce> {
        (
            any::<bool>(),
            any::<u16>(),
            1u16..,
            proptest::collection::btree_set(any::<[u8; 20]>(), 1..=MAX_INFOHASHES_PER_ANNOUNCE),
            proptest::option::of("[!-~]{1,64}"),
        )
            .prop_map(|(v6, group_port, port, hashes, cookie)| LsdAnnounce {
                group: if v6 { LsdGroup::V6 } else { LsdGroup::V4 },
                group_port,
                port,
                info_hashes: hashes.into_iter().map(InfoHash).collect(),
                cookie,
            })
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_the_identity(a in announce()) {
            let bytes = a.encode();
            prop_assert!(bytes.len() <= MAX_ANNOUNCE_LEN);
            prop_assert_eq!(LsdAnnounce::parse(&bytes).unwrap(), a);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_sane_announces(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            if let Ok(a) = LsdAnnounce::parse(&bytes) {
                prop_assert!(a.port != 0 && !a.info_hashes.is_empty());
            }
        }

        #[test]
        fn no_torrent_is_announced_twice_within_a_minute(
            steps in proptest::collection::vec((0u8..8, 0u64..90, any::<bool>()), 1..200)
        ) {
            let t0 = origin();
            let mut s = LsdSchedule::new(LsdScheduleConfig::default());
            let mut last: BTreeMap<InfoHash, Instant> = BTreeMap::new();
            let mut now = t0;
            for (b, advance, ask) in steps {
                now += Duration::from_secs(advance);
                if ask { s.request(&hash(b), now); } else { s.add(hash(b), now); }
                while let Some(batch) = s.poll(now) {
                    prop_assert!(!batch.is_empty() && batch.len() <= MAX_INFOHASHES_PER_ANNOUNCE);
                    for h in batch {
                        if let Some(prev) = last.insert(h, now) {
                            prop_assert!(now - prev >= Duration::from_secs(60));
                        }
                    }
                }
                if let Some(at) = s.poll_timeout() {
                    prop_assert!(at > now, "nothing is due once polled dry");
                }
            }
        }
    }
}
