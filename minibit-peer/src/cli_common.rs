//! What the command lines of `minibit-peer` and `minibit-tracker` share,
//! so both follow one convention: the verbosity flags (`-q` only errors;
//! by default warnings plus the few lines a user needs; `-v` info; `-vv`
//! debug), the `--bind IP[:PORT]` form, and the log set-up.

use std::fmt;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

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

#[cfg(test)]
mod tests {
    use super::*;

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
