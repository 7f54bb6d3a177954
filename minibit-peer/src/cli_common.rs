//! What the command lines of `minibit-peer` and `minibit-tracker` share,
//! so both follow one convention: the verbosity flags (`-q` only errors;
//! by default warnings plus the few lines a user needs; `-v` info; `-vv`
//! debug), the `--bind IP[:PORT]` form, rates (`--download-limit 8M`),
//! the discovery flags (`--no-dht`, `--dht-bootstrap`, `--no-lsd`) and the
//! log set-up.

use std::fmt;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;

use crate::dht::DhtConfig;
use crate::lsd::LsdConfig;

/// `-q` / `-v` flags (clap), the same in both programs.
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct Verbosity {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr: -v info, -vv debug (default: warnings).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl Verbosity {
    /// The `tracing` level: `error`, `warn`, `info` or `debug`.
    pub fn level(self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        }
    }

    /// Logs to stderr at [`Verbosity::level`] (`RUST_LOG` overrides it),
    /// with colours only on a terminal.
    pub fn init_logging(self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(self.level()));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}

/// A `--bind` value: `IP` or `IP:PORT` (`[IPv6]:PORT` for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindAddr {
    /// The address to listen on.
    pub ip: IpAddr,
    /// The port, when given.
    pub port: Option<u16>,
}

impl BindAddr {
    /// The socket address, with `default_port` when no port was given.
    pub fn with_default_port(self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(default_port))
    }
}

impl FromStr for BindAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self { ip, port: None });
        }
        s.parse::<SocketAddr>()
            .map(|addr| Self {
                ip: addr.ip(),
                port: Some(addr.port()),
            })
            .map_err(|_| {
                format!("{s:?} is not IP or IP:PORT (e.g. 127.0.0.1, 0.0.0.0:6881, [::1]:6969)")
            })
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.ip, port).fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

/// A rate in bytes per second, as given on the command line: a whole
/// number with an optional binary suffix, `K` (KiB/s), `M` (MiB/s) or `G`
/// (GiB/s), e.g. `500K`, `8M`; `0` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate(pub u64);

impl Rate {
    /// Bytes per second (0 = unlimited).
    pub fn bytes_per_second(self) -> u64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || format!("{s:?} is not a rate in bytes per second (e.g. 0, 500K, 8M, 1G)");
        let text = s.trim();
        let shift = match text.as_bytes().last() {
            Some(b'k' | b'K') => 10,
            Some(b'm' | b'M') => 20,
            Some(b'g' | b'G') => 30,
            _ => 0,
        };
        let digits = if shift == 0 {
            text
        } else {
            &text[..text.len() - 1]
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        let value: u64 = digits.parse().map_err(|_| error())?;
        value
            .checked_mul(1 << shift)
            .map(Self)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffixes = [(30, "G"), (20, "M"), (10, "K")];
        for (shift, suffix) in suffixes {
            if self.0 != 0 && self.0 % (1 << shift) == 0 {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_binary_suffixes() {
        let rate = |s: &str| s.parse::<Rate>().map(Rate::bytes_per_second);
        assert_eq!(rate("0"), Ok(0));
        assert_eq!(rate("1000"), Ok(1000));
        assert_eq!(rate("500K"), Ok(500 * 1024));
        assert_eq!(rate("500k"), Ok(500 * 1024));
        assert_eq!(rate("8M"), Ok(8 * 1024 * 1024));
        assert_eq!(rate("1G"), Ok(1 << 30));
        for bad in ["", "M", "8MB", "-1", "1.5M", "8 M", "eight", "99999999999G"] {
            assert!(rate(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(Rate(8 << 20).to_string(), "8M");
        assert_eq!(Rate(1536).to_string(), "1536");
        assert_eq!(Rate(0).to_string(), "0");
    }

    #[test]
    fn bind_takes_an_ip_with_or_without_a_port() {
        let ip: BindAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(ip.port, None);
        assert_eq!(ip.with_default_port(6969).to_string(), "127.0.0.1:6969");
        let full: BindAddr = "0.0.0.0:6881".parse().unwrap();
        assert_eq!(full.with_default_port(1).to_string(), "0.0.0.0:6881");
        let v6: BindAddr = "[::1]:7".parse().unwrap();
        assert_eq!(v6.to_string(), "[::1]:7");
        assert_eq!("::1".parse::<BindAddr>().unwrap().port, None);
        assert!("localhost:80".parse::<BindAddr>().is_err());
        assert!("1.2.3.4:99999".parse::<BindAddr>().is_err());
    }

    #[test]
    fn verbosity_levels_are_the_same_for_both_programs() {
        let v = |quiet, verbose| Verbosity { quiet, verbose }.level();
        assert_eq!(v(true, 0), "error");
        assert_eq!(v(false, 0), "warn");
        assert_eq!(v(false, 1), "info");
        assert_eq!(v(false, 2), "debug");
        assert_eq!(v(false, 5), "debug");
    }
}

/// How a client finds peers past its trackers: the Mainline DHT (BEP 5)
/// and local service discovery (BEP 14), both on by default (clap), the
/// same for `download` and `daemon`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DiscoveryArgs {
    /// Do not use the Mainline DHT (BEP 5). By default a DHT node runs on
    /// UDP at the TCP listen port's number (private torrents are never
    /// announced there); its routing table is kept in the state folder.
    #[arg(long)]
    pub no_dht: bool,
    /// A DHT node to bootstrap from, HOST:PORT (repeat for more)
    /// [default: the well-known public routers].
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dht")]
    pub dht_bootstrap: Vec<String>,
    /// Do not use local service discovery (BEP 14: multicast announces on
    /// the local network; private torrents are never announced).
    #[arg(long)]
    pub no_lsd: bool,
}

impl DiscoveryArgs {
    /// The argument ids, for callers that check where they were given.
    pub const IDS: [&'static str; 3] = ["no_dht", "dht_bootstrap", "no_lsd"];

    /// The DHT node for a client listening on `listen` (TCP): UDP on the
    /// same IPv4 address (0.0.0.0 for an IPv6 one) at the TCP port's
    /// number, the `--dht-bootstrap` nodes or the public routers, the
    /// routing table in `state_dir/dht.nodes`. `None` with `--no-dht`.
    pub fn dht(&self, listen: SocketAddr, state_dir: &Path) -> Option<DhtConfig> {
        if self.no_dht {
            return None;
        }
        let mut config = DhtConfig::new(0);
        config.bind = ipv4_or_any(listen);
        if !self.dht_bootstrap.is_empty() {
            config.bootstrap.clone_from(&self.dht_bootstrap);
        }
        config.routing_table = Some(state_dir.join("dht.nodes"));
        Some(config)
    }

    /// Local service discovery on `listen`'s IPv4 interface (every
    /// interface for an IPv6 one), announcing its port. `None` with
    /// `--no-lsd`.
    pub fn lsd(&self, listen: SocketAddr) -> Option<LsdConfig> {
        (!self.no_lsd).then(|| LsdConfig::new(ipv4_or_any(listen), listen.port()))
    }
}

/// The IPv4 address of `addr`, or 0.0.0.0 for an IPv6 one.
fn ipv4_or_any(addr: SocketAddr) -> Ipv4Addr {
    match addr.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}
