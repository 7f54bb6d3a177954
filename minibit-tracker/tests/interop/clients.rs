//! The real clients from Debian's packages, driven headless on 127.0.0.1
//! with the options that make them behave on loopback (see
//! `/work/notes/interop-clients.md` for what each option is for).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use minibit_core::wire::PeerId;

use test_support::netns::Net;
use test_support::process::{Proc, free_port, run, wait_until};
use test_support::tools;

/// A real client taking part in a test.
#[derive(Clone, Copy, Debug)]
pub enum Client {
    /// `transmission-daemon` 3.00, driven through `transmission-remote`.
    Transmission,
    /// `aria2c`.
    Aria2,
    /// libtorrent-rasterbar through `lt_client.py`.
    Libtorrent,
}

/// A running real client.
pub enum Running {
    /// A daemon with one torrent.
    Transmission(Transmission),
    /// An aria2c process.
    Aria2(Proc),
    /// An lt_client.py process.
    Libtorrent(Libtorrent),
}

impl Client {
    /// Starts the client downloading `torrent` into `dir` (state in
    /// `home`); it keeps seeding after completing.
    pub fn download(self, torrent: &Path, dir: &Path, home: &Path) -> Running {
        std::fs::create_dir_all(dir).unwrap();
        match self {
            Self::Transmission => {
                let t = Transmission::start(home);
                t.add(torrent, dir);
                Running::Transmission(t)
            }
            Self::Aria2 => Running::Aria2(aria2(torrent.as_os_str(), dir, None)),
            Self::Libtorrent => Running::Libtorrent(Libtorrent::start(
                ("--torrent", torrent.as_os_str()),
                dir,
                "--download",
                0,
            )),
        }
    }

    /// [`Client::download`] of a `.torrent` whose trackers are `udp://`
    /// (BEP 15): aria2 speaks UDP trackers only with its IPv4 DHT on (they
    /// share its UDP socket), so its DHT runs from `home` on a free port
    /// with a closed loopback port as its only entry point.
    pub fn download_over_udp_tracker(self, torrent: &Path, dir: &Path, home: &Path) -> Running {
        match self {
            Self::Aria2 => {
                std::fs::create_dir_all(dir).unwrap();
                std::fs::create_dir_all(home).unwrap();
                Running::Aria2(aria2(torrent.as_os_str(), dir, Some(home)))
            }
            other => other.download(torrent, dir, home),
        }
    }

    /// Starts the client seeding `torrent` whose content is in `dir`, and
    /// waits until it has checked the content (at most `timeout`).
    pub fn seed(self, torrent: &Path, dir: &Path, home: &Path, timeout: Duration) -> Running {
        match self {
            Self::Transmission => {
                let t = Transmission::start(home);
                t.add(torrent, dir);
                t.wait_complete(timeout);
                Running::Transmission(t)
            }
            Self::Aria2 => {
                let p = aria2(torrent.as_os_str(), dir, None);
                // aria2 prints `SEED(` in its summary once it is seeding.
                p.wait_line(timeout, |l| l.contains("SEED(").then_some(()));
                Running::Aria2(p)
            }
            Self::Libtorrent => {
                let lt = Libtorrent::start(("--torrent", torrent.as_os_str()), dir, "--seed", 0);
                lt.wait_complete(timeout);
                Running::Libtorrent(lt)
            }
        }
    }
}

impl Running {
    /// What the client printed or reports about itself, for failure messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Transmission(t) => t.describe(),
            Self::Aria2(p) => p.lines().join("\n"),
            Self::Libtorrent(lt) => lt.describe(),
        }
    }
}

/// `aria2c` downloading `magnet` into `dir` (the metadata first, BEP 9,
/// then the content) and seeding it until it is killed.
pub fn aria2_magnet(magnet: &str, dir: &Path) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    aria2(OsStr::new(magnet), dir, None)
}

/// `aria2c` downloading (or, when the content is already in `dir`,
/// verifying and then seeding) `source` (a `.torrent` or a magnet link)
/// until it is killed. With
/// `dht_home`, its IPv4 DHT (needed for UDP trackers) runs with its state
/// there, on a free port, its only entry point a closed loopback port.
fn aria2(source: &OsStr, dir: &Path, dht_home: Option<&Path>) -> Proc {
    tools::require(&tools::ARIA2C);
    let mut command = Command::new("aria2c");
    command
        .arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={}", free_port()));
    match dht_home {
        None => command.arg("--enable-dht=false"),
        Some(home) => command
            .arg("--enable-dht=true")
            .arg(format!("--dht-listen-port={}", free_port()))
            .arg(format!(
                "--dht-file-path={}",
                home.join("dht.dat").display()
            ))
            .arg(format!("--dht-entry-point=127.0.0.1:{}", free_port())),
    };
    command
        .args([
            // Only the tracker: no IPv6 DHT, local peer discovery or peer exchange.
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            // Plaintext peers are fine.
            "--bt-require-crypto=false",
            // Check what is on disk (seeding needs it), seed forever.
            "--check-integrity=true",
            "--seed-ratio=0.0",
            "--bt-tracker-interval=2",
            "--summary-interval=1",
            "--console-log-level=warn",
            "--enable-color=false",
            "--file-allocation=none",
        ])
        .arg(source);
    Proc::spawn("aria2c", command)
}

/// `transmission-daemon` in the foreground with its own config folder,
/// RPC and peer ports.
pub struct Transmission {
    proc: Proc,
    rpc: String,
}

impl Transmission {
    /// Starts a daemon whose config lives in `home`.
    pub fn start(home: &Path) -> Self {
        let config = home.join("transmission");
        std::fs::create_dir_all(&config).unwrap();
        let rpc_port = free_port();
        let settings = serde_json::json!({
            // Only the tracker: no DHT, local peer discovery, PEX, uTP, port mapping.
            "dht-enabled": false,
            "lpd-enabled": false,
            "pex-enabled": false,
            "utp-enabled": false,
            "port-forwarding-enabled": false,
            // 0: prefer plaintext, accept encrypted.
            "encryption": 0,
            "peer-port": free_port(),
            "peer-port-random-on-start": false,
            "bind-address-ipv4": "127.0.0.1",
            "rpc-enabled": true,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": rpc_port,
            "rpc-authentication-required": false,
            "rpc-whitelist-enabled": false,
            "rpc-host-whitelist-enabled": false,
            "download-dir": home.join("download"),
            "incomplete-dir-enabled": false,
            "rename-partial-files": true,
            "watch-dir-enabled": false,
            "start-added-torrents": true,
            "ratio-limit-enabled": false,
            "idle-seeding-limit-enabled": false,
            "speed-limit-up-enabled": false,
            "speed-limit-down-enabled": false,
            "alt-speed-enabled": false,
            "blocklist-enabled": false,
            "message-level": 2,
        });
        std::fs::write(config.join("settings.json"), settings.to_string()).unwrap();
        tools::require(&tools::TRANSMISSION_DAEMON);
        tools::require(&tools::TRANSMISSION_REMOTE);
        let mut command = Command::new("transmission-daemon");
        command.arg("-f").arg("-g").arg(&config);
        let this = Self {
            proc: Proc::spawn("transmission-daemon", command),
            rpc: format!("127.0.0.1:{rpc_port}"),
        };
        wait_until(Duration::from_secs(20), "transmission RPC", || {
            this.remote(&["-l"])
                .output()
                .ok()?
                .status
                .success()
                .then_some(())
        })
        .unwrap_or_else(|| this.proc.fail("RPC never answered"));
        this
    }

    fn remote(&self, args: &[&str]) -> Command {
        let mut command = Command::new("transmission-remote");
        command.arg(&self.rpc).args(args);
        command
    }

    /// Adds `torrent` with its content in (or downloaded to) `dir`.
    pub fn add(&self, torrent: &Path, dir: &Path) {
        let mut command = self.remote(&["-a"]);
        command.arg(torrent).arg("-w").arg(dir);
        run(command);
    }

    /// The torrent's "Percent Done" (verified pieces), 0-100.
    pub fn percent_done(&self) -> Option<f64> {
        run(self.remote(&["-t", "all", "-i"]))
            .lines()
            .find_map(|l| l.trim().strip_prefix("Percent Done: "))
            .and_then(|p| p.trim_end_matches('%').parse().ok())
    }

    /// Waits until every piece is verified.
    pub fn wait_complete(&self, timeout: Duration) {
        wait_until(timeout, "transmission to complete", || {
            (self.percent_done()? >= 100.0).then_some(())
        })
        .unwrap_or_else(|| {
            self.proc
                .fail(&format!("not complete:\n{}", self.describe()))
        });
    }

    /// The torrent's details and peer list.
    pub fn describe(&self) -> String {
        let info = self.remote(&["-t", "all", "-i"]).output();
        let peers = self.remote(&["-t", "all", "-pi"]).output();
        let text = |o: std::io::Result<std::process::Output>| {
            o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        format!(
            "{}\n{}\n{}",
            text(info),
            text(peers),
            self.proc.lines().join("\n")
        )
    }
}

/// `lt_client.py`: libtorrent, reporting blocks exchanged per peer id.
pub struct Libtorrent {
    proc: Proc,
}

impl Libtorrent {
    /// Downloads `torrent` into `dir` at most `limit` bytes/s, then seeds.
    pub fn download_throttled(torrent: &Path, dir: &Path, limit: u32) -> Self {
        Self::start(("--torrent", torrent.as_os_str()), dir, "--download", limit)
    }

    /// Downloads the magnet link `magnet` into `dir` (the metadata comes
    /// from the swarm, BEP 9), then seeds.
    pub fn download_magnet(magnet: &str, dir: &Path) -> Self {
        Self::start(("--magnet", OsStr::new(magnet)), dir, "--download", 0)
    }

    /// `source`: `--torrent FILE` or `--magnet URI`.
    fn start(source: (&str, &OsStr), dir: &Path, mode: &str, download_limit: u32) -> Self {
        let mut command = Self::command(source, dir, mode);
        command
            .args(["--port", &free_port().to_string()])
            .args(["--download-limit", &download_limit.to_string()]);
        Self {
            proc: Proc::spawn("libtorrent", command),
        }
    }

    /// Starts it in peer `i`'s namespace of `net`, on that peer's address
    /// and TCP/UDP port 6881, with the Mainline DHT on, bootstrapped from
    /// `bootstrap` (`HOST:PORT,...`) alone; `source` and `mode`
    /// (`--seed`, `--download`) as for [`Self::start`].
    pub fn start_on_dht(
        net: &Net,
        i: usize,
        source: (&str, &OsStr),
        dir: &Path,
        mode: &str,
        bootstrap: &str,
    ) -> Self {
        let mut command = Self::command(source, dir, mode);
        command
            .args(["--port", "6881", "--ip", &Net::ip(i).to_string()])
            .args(["--dht-bootstrap", bootstrap]);
        Self {
            proc: Proc::spawn("libtorrent", net.command(i, &command)),
        }
    }

    /// `lt_client.py SOURCE --dir DIR MODE --keep-seeding`.
    fn command(source: (&str, &OsStr), dir: &Path, mode: &str) -> Command {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_client.py");
        tools::require_libtorrent();
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(script)
            .arg(source.0)
            .arg(source.1)
            .arg("--dir")
            .arg(dir)
            .args([mode, "--keep-seeding"]);
        command
    }

    /// Waits until every piece is verified (at most `timeout`).
    pub fn wait_complete(&self, timeout: Duration) {
        self.proc
            .wait_line(timeout, |l| (l == "complete").then_some(()));
    }

    /// The port it listens on (its first line).
    pub fn listen_port(&self) -> u16 {
        self.proc.wait_line(Duration::from_secs(30), |l| {
            l.strip_prefix("listening ")?.parse().ok()
        })
    }

    /// Waits until at least `ppm` parts per million are verified.
    pub fn wait_progress(&self, ppm: u32, timeout: Duration) {
        self.proc.wait_line(timeout, |l| {
            let done: u32 = l
                .strip_prefix("progress ")?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            (done >= ppm).then_some(())
        });
    }

    /// What it printed.
    pub fn describe(&self) -> String {
        self.proc.lines().join("\n")
    }

    /// Blocks received from and sent to each peer id so far.
    pub fn blocks(&self) -> HashMap<PeerId, (u64, u64)> {
        let mut blocks = HashMap::new();
        for line in self.proc.lines() {
            let mut words = line.split(' ');
            if words.next() != Some("peer") {
                continue;
            }
            let (Some(id), Some(down), Some(up)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let id = hex::decode(id)
                .ok()
                .and_then(|b| <[u8; 20]>::try_from(b).ok());
            let down = down.strip_prefix("down=").and_then(|n| n.parse().ok());
            let up = up.strip_prefix("up=").and_then(|n| n.parse().ok());
            if let (Some(id), Some(down), Some(up)) = (id, down, up) {
                blocks.insert(PeerId(id), (down, up));
            }
        }
        blocks
    }
}
