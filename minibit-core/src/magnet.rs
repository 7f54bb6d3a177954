//! Magnet links (BEP 9 "magnet URI format"): parse and make.
//!
//! `magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker>&x.pe=<peer>`:
//! the info-hash in hex (40 characters) or base32 (32 characters, RFC 4648
//! alphabet, either case), an optional display name, any number of tracker
//! URLs, and any number of peer addresses (`1.2.3.4:6881`,
//! `[2001:db8::1]:6881` or `host.name:6881`). Values are percent-decoded
//! strictly (`%` must be followed by two hex digits; `+` is a space, as
//! in HTML forms and libtorrent) and must be UTF-8. Other parameters
//! (`xl`, `ws`, `so`, `xt=urn:btmh:` of BitTorrent v2, ...) are ignored.
//!
//! [`Magnet`]'s `Display` writes the canonical link (hex info-hash, then
//! `dn`, `tr` and `x.pe` in order, everything outside `A-Z a-z 0-9 - . _ ~`
//! percent-encoded), which parses back to the same [`Magnet`].

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::metainfo::{InfoHash, Metainfo};

/// Longest magnet link accepted, bytes.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;

/// Most `tr` plus `x.pe` parameters accepted in one link.
pub const MAX_MAGNET_SOURCES: usize = 200;

/// Everything but the RFC 3986 unreserved characters is encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A peer address from `x.pe`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MagnetPeer {
    /// `1.2.3.4:6881` or `[2001:db8::1]:6881`.
    Addr(SocketAddr),
    /// `host.name:6881`, to resolve.
    Host {
        /// A DNS name: letters, digits, `-` and `.`.
        host: String,
        /// 1-65535.
        port: u16,
    },
}

impl fmt::Display for MagnetPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => write!(f, "{addr}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for MagnetPeer {
    type Err = MagnetError;

    /// # Errors
    /// [`MagnetError::BadPeer`] unless `IPv4:port`, `[IPv6]:port` or
    /// `host:port` with a port of 1-65535.
    fn from_str(s: &str) -> Result<Self, MagnetError> {
        let bad = || MagnetError::BadPeer(quote(s));
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err(bad())
            } else {
                Ok(Self::Addr(addr))
            };
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && host.bytes().any(|b| b.is_ascii_alphabetic());
        if port == 0 || !host_ok {
            return Err(bad());
        }
        Ok(Self::Host {
            host: host.to_owned(),
            port,
        })
    }
}

/// A magnet link that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// Does not start with `magnet:?`.
    #[error("not a magnet link (must start with \"magnet:?\")")]
    NotAMagnet,
    /// Longer than [`MAX_MAGNET_LEN`] bytes.
    #[error("magnet link of {0} bytes is too long")]
    TooLong(usize),
    /// No `xt=urn:btih:` parameter.
    #[error("magnet link has no BitTorrent info-hash (xt=urn:btih:...)")]
    MissingInfoHash,
    /// The `btih` value is neither 40 hex nor 32 base32 characters.
    #[error("info-hash \"{0}\" is neither 40 hex nor 32 base32 characters")]
    BadInfoHash(String),
    /// Two `xt=urn:btih:` parameters name different torrents.
    #[error("magnet link names two different info-hashes")]
    ConflictingInfoHashes,
    /// A `%` not followed by two hex digits, or a value that is not UTF-8.
    #[error("parameter `{0}` is not valid percent-encoded UTF-8")]
    BadEncoding(String),
    /// An `x.pe` value that is not `IPv4:port`, `[IPv6]:port` or `host:port`.
    #[error("peer address \"{0}\" is not IP:port, [IPv6]:port or host:port")]
    BadPeer(String),
    /// More than [`MAX_MAGNET_SOURCES`] `tr` and `x.pe` parameters.
    #[error("more than {MAX_MAGNET_SOURCES} trackers and peers")]
    TooManySources,
}

/// A parsed magnet link (BEP 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// `xt=urn:btih:`: the torrent.
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub name: Option<String>,
    /// `tr`: tracker URLs, in link order.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to dial, in link order.
    pub peers: Vec<MagnetPeer>,
}

impl Magnet {
    /// A link with only the info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// The link for a torrent: its info-hash, its name and its trackers
    /// (`announce`, then every `announce-list` tier in order, each URL once).
    pub fn from_metainfo(metainfo: &Metainfo) -> Self {
        let mut trackers: Vec<String> = Vec::new();
        let urls = metainfo.announce().into_iter().chain(
            metainfo
                .announce_list()
                .iter()
                .flatten()
                .map(String::as_str),
        );
        for url in urls {
            if !trackers.iter().any(|t| t == url) {
                trackers.push(url.to_owned());
            }
        }
        Self {
            info_hash: metainfo.info_hash(),
            name: Some(metainfo.info().name().to_owned()),
            trackers,
            peers: Vec::new(),
        }
    }

    /// Parses a magnet link.
    ///
    /// # Errors
    /// A [`MagnetError`]: not `magnet:?`, longer than [`MAX_MAGNET_LEN`],
    /// no or a malformed or two different `xt=urn:btih:`, bad percent
    /// encoding or UTF-8 in a known parameter, a bad `x.pe`, more than
    /// [`MAX_MAGNET_SOURCES`] `tr` + `x.pe`.
    pub fn parse(link: &str) -> Result<Self, MagnetError> {
        if link.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong(link.len()));
        }
        let query = link
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &link[8..])
            .ok_or(MagnetError::NotAMagnet)?;
        let mut info_hash = None;
        let mut magnet = Self::new(InfoHash([0; 20]));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = || decode(key, raw);
            match key {
                "xt" => {
                    let value = value()?;
                    let Some(hash) = strip_prefix_ignore_case(&value, "urn:btih:") else {
                        continue;
                    };
                    let hash = parse_info_hash(hash)?;
                    if info_hash.is_some_and(|h| h != hash) {
                        return Err(MagnetError::ConflictingInfoHashes);
                    }
                    info_hash = Some(hash);
                }
                "dn" => magnet.name = Some(value()?),
                "tr" | "x.pe" => {
                    if magnet.trackers.len() + magnet.peers.len() == MAX_MAGNET_SOURCES {
                        return Err(MagnetError::TooManySources);
                    }
                    if key == "tr" {
                        magnet.trackers.push(value()?);
                    } else {
                        magnet.peers.push(value()?.parse()?);
                    }
                }
                _ => {}
            }
        }
        magnet.info_hash = info_hash.ok_or(MagnetError::MissingInfoHash)?;
        Ok(magnet)
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, MagnetError> {
        Self::parse(s)
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.name {
            write!(f, "&dn={}", utf8_percent_encode(name, VALUE))?;
        }
        for tracker in &self.trackers {
            write!(f, "&tr={}", utf8_percent_encode(tracker, VALUE))?;
        }
        for peer in &self.peers {
            write!(f, "&x.pe={}", utf8_percent_encode(&peer.to_string(), VALUE))?;
        }
        Ok(())
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// The info-hash from 40 hex or 32 base32 characters.
fn parse_info_hash(s: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash(quote(s));
    let mut hash = [0; 20];
    match s.len() {
        40 => hex::decode_to_slice(s, &mut hash).map_err(|_| bad())?,
        32 => {
            // 32 characters of 5 bits are exactly 160 bits.
            let mut acc: u64 = 0;
            let mut bits = 0;
            let mut out = 0;
            for c in s.bytes() {
                let v = match c.to_ascii_uppercase() {
                    c @ b'A'..=b'Z' => c - b'A',
                    c @ b'2'..=b'7' => c - b'2' + 26,
                    _ => return Err(bad()),
                };
                acc = (acc << 5) | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    hash[out] = (acc >> bits) as u8;
                    out += 1;
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(InfoHash(hash))
}

/// Strict percent-decoding of the value of parameter `key` (`+` is a space).
fn decode(key: &str, raw: &str) -> Result<String, MagnetError> {
    let bad = || MagnetError::BadEncoding(quote(key));
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(|c| (c as char).to_digit(16));
                let lo = bytes.next().and_then(|c| (c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(bad());
                };
                out.push((hi * 16 + lo) as u8);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// `s` cut to 80 characters, for an error message.
fn quote(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests;
