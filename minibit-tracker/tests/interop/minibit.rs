//! The minibit side: the `minibit-tracker` and `minibit-peer` binaries, and
//! a look into the tracker's swarm through its own announce protocol.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse};
use minibit_core::wire::PeerId;

use test_support::binaries::build_next_to;
use test_support::process::{Proc, wait_until};

/// How long the tracker may take to start and hash what it seeds.
const START: Duration = Duration::from_secs(60);

/// A running `minibit-tracker`.
pub struct Tracker {
    proc: Proc,
    base: String,
}

/// One torrent the tracker seeds, as it printed it.
pub struct Seeded {
    /// Where its `.torrent` is served.
    pub torrent_url: String,
    /// Its info-hash.
    pub info_hash: InfoHash,
}

impl Tracker {
    /// Starts `minibit-tracker --bind 127.0.0.1:0 FILE...`: a pure tracker
    /// when `files` is empty, else a tracker seeding each of them.
    pub fn start(files: &[&Path]) -> (Self, Vec<Seeded>) {
        Self::start_with(&["--bind", "127.0.0.1:0"], files)
    }

    /// Starts `minibit-tracker -q ARGS... FILE...` (ARGS must hold `--bind`).
    pub fn start_with(args: &[&str], files: &[&Path]) -> (Self, Vec<Seeded>) {
        Self::spawn(Self::command(args, files), files.len())
    }

    /// The command `minibit-tracker -q ARGS... FILE...`.
    pub fn command(args: &[&str], files: &[&Path]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"));
        command.arg("-q").args(args).args(files);
        command
    }

    /// Runs `command` (a [`Tracker::command`], maybe wrapped) and waits
    /// until it listens and seeds `files` files.
    pub fn spawn(command: Command, files: usize) -> (Self, Vec<Seeded>) {
        let proc = Proc::spawn("minibit-tracker", command);
        let base = proc.wait_line(START, |l| {
            l.strip_prefix("tracker listening on ").map(str::to_owned)
        });
        // `seeding NAME info_hash=HEX torrent=URL`
        let seeded = wait_until(START, "every file to be seeded", || {
            let seeded: Vec<_> = proc
                .lines()
                .iter()
                .filter(|l| l.starts_with("seeding "))
                .filter_map(|l| {
                    let (rest, url) = l.split_once(" torrent=")?;
                    let (_, hex) = rest.rsplit_once(" info_hash=")?;
                    Some(Seeded {
                        torrent_url: url.split(' ').next()?.to_owned(),
                        info_hash: InfoHash::from_hex(hex)?,
                    })
                })
                .collect();
            (seeded.len() == files).then_some(seeded)
        })
        .unwrap_or_else(|| proc.fail("did not print a `seeding` line for every file"));
        (Self { proc, base }, seeded)
    }

    /// The running process (its output lines).
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// The tracker's base URL, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The announce URL real clients are given.
    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.base)
    }

    /// Downloads `url` (a `.torrent` the tracker serves) into `to`.
    pub fn fetch(&self, url: &str, to: &Path) {
        let body = http_get(url);
        Metainfo::from_bytes(&body)
            .unwrap_or_else(|e| self.proc.fail(&format!("{url} is not a torrent: {e}")));
        std::fs::write(to, body).unwrap();
    }

    /// The swarm of `info_hash` as the tracker sees it: each peer's
    /// address and id, and the number of seeders. Learned by announcing
    /// as a leecher on port 1 and leaving again at once.
    pub fn swarm(&self, info_hash: InfoHash) -> (Vec<(SocketAddr, PeerId)>, u32) {
        let mut request = AnnounceRequest {
            info_hash,
            peer_id: PeerId(*b"-XX0000-interop-spy-"),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: 1,
            event: AnnounceEvent::Started,
            compact: false,
            numwant: Some(50),
            ip: None,
            key: None,
        };
        let response = self.announce(&request);
        request.event = AnnounceEvent::Stopped;
        self.announce(&request);
        let peers = response
            .peers
            .iter()
            .filter_map(|p| Some((p.addr, p.peer_id?)))
            .collect();
        (peers, response.complete)
    }

    /// Waits until the tracker knows at least one seeder of `info_hash`.
    pub fn wait_for_a_seeder(&self, info_hash: InfoHash, timeout: Duration) {
        wait_until(timeout, "a seeder to announce", || {
            (self.swarm(info_hash).1 > 0).then_some(())
        })
        .unwrap_or_else(|| self.proc.fail("no seeder announced"));
    }

    /// Waits until the swarm of `info_hash` has at least `n` peers (its
    /// own seeder included). Peers announce once at start, so a peer that
    /// only accepts connections must be listed before the others start.
    pub fn wait_for_peers(&self, info_hash: InfoHash, n: usize, timeout: Duration) {
        wait_until(timeout, &format!("{n} peers to announce"), || {
            (self.swarm(info_hash).0.len() >= n).then_some(())
        })
        .unwrap_or_else(|| self.proc.fail(&format!("fewer than {n} peers announced")));
    }

    fn announce(&self, request: &AnnounceRequest) -> AnnounceResponse {
        let url = format!("{}/announce?{}", self.base, request.to_query());
        AnnounceResponse::decode(&http_get(&url))
            .unwrap_or_else(|e| self.proc.fail(&format!("bad announce response: {e}")))
    }
}

/// The body of a GET of `url` (panics on any failure, a status other than
/// 2xx included).
pub fn http_get(url: &str) -> Vec<u8> {
    let (status, body) = get(url);
    assert!(
        (200..300).contains(&status),
        "GET {url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// The status and body of a GET of `url` (panics when there is no answer).
pub fn get(url: &str) -> (u16, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    })
}

/// The info-hash of the `.torrent` at `path`.
pub fn info_hash(path: &Path) -> InfoHash {
    Metainfo::from_bytes(&std::fs::read(path).unwrap())
        .unwrap()
        .info_hash()
}

/// Starts `minibit-peer -o DIR --port PORT [--exit-on-complete] SOURCE`.
pub fn peer(name: &str, source: &str, dir: &Path, port: u16, exit_on_complete: bool) -> Proc {
    let mut command = Command::new(peer_binary());
    command
        .arg("-o")
        .arg(dir)
        .args(["--port", &port.to_string()]);
    if exit_on_complete {
        command.arg("--exit-on-complete");
    }
    command.arg(source);
    Proc::spawn(name, command)
}

/// The `minibit-peer` binary. Cargo only builds a package's binaries for
/// that package's tests, so it is looked up next to `minibit-tracker` (the
/// same target folder); `cargo test --workspace` builds it. When it is
/// missing or older than `minibit-tracker` (built from older sources),
/// `cargo build -p minibit-peer` brings it up to date first.
pub fn peer_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let tracker = Path::new(env!("CARGO_BIN_EXE_minibit-tracker"));
        let binary =
            tracker.with_file_name(format!("minibit-peer{}", std::env::consts::EXE_SUFFIX));
        let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
        if modified(&binary) < modified(tracker) {
            build_next_to(tracker, &["-p", "minibit-peer", "--bin", "minibit-peer"]);
        }
        assert!(binary.is_file(), "{} was not built", binary.display());
        binary
    })
}
