//! Running `minibit-peer` processes for the daemon's tests: a daemon on
//! 127.0.0.1 (its API URL from its first stdout line), a seeder, and
//! the API's JSON over reqwest.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_minibit-peer");

/// The API token the tests' daemons run with.
pub const TOKEN: &str = "daemon-test-token-0123456789";

/// A child process stopped when dropped (SIGTERM, then SIGKILL after 10 s).
pub struct Proc(pub Child);

impl Proc {
    /// Stops it with SIGTERM (a clean stop: resume data saved) and waits.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        stop(&mut self.0)
    }
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            stop(&mut self.0);
        }
    }
}

/// A running daemon.
pub struct Daemon {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub api: String,
    /// Its stderr (`-v`: info log).
    pub log: PathBuf,
}

/// Starts `minibit-peer -v daemon --state STATE` with [`TOKEN`] on
/// 127.0.0.1 (API and peers on free ports); returns once it serves.
pub fn start_daemon(state: &Path) -> Daemon {
    // No DHT, no LSD: nothing but loopback, whatever the machine's DNS
    // resolves.
    start_daemon_with(state, &["--no-dht", "--no-lsd"])
}

/// [`start_daemon`] with `extra` daemon flags (e.g. `--dht-bootstrap ADDR`).
pub fn start_daemon_with(state: &Path, extra: &[&str]) -> Daemon {
    spawn_daemon(state, extra, Some(TOKEN))
}

/// `minibit-peer -v daemon` on 127.0.0.1 with `extra` flags and
/// `--api-token TOKEN`, or with no token given at all (`None`: the daemon
/// makes or reads its own in `STATE/token`); returns once it serves.
pub fn spawn_daemon(state: &Path, extra: &[&str], token: Option<&str>) -> Daemon {
    std::fs::create_dir_all(state).unwrap();
    let log = state.with_extension(format!(
        "{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut child = Command::new(BIN)
        .args([
            "-v",
            "daemon",
            "--api",
            "127.0.0.1:0",
            "--bind",
            "127.0.0.1",
        ])
        .args(extra)
        .args(
            token
                .map(|token| ["--api-token", token])
                .into_iter()
                .flatten(),
        )
        .env_remove("MINIBIT_DAEMON_TOKEN")
        .arg("--state")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let api = first
        .trim()
        .strip_prefix("api listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {first:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .to_owned();
    Daemon {
        proc: Proc(child),
        api,
        log,
    }
}

/// Seeds `torrent` from `dir` (which holds its files) with the
/// `minibit-peer` program on 127.0.0.1.
pub fn start_seeder(torrent: &Path, dir: &Path) -> Proc {
    let child = Command::new(BIN)
        .args(["-q", "--bind", "127.0.0.1", "-o"])
        .arg(dir)
        .arg(torrent)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// The status and JSON body (`Value::Null` when empty) of `request`.
pub async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)))
    };
    (status, json)
}

/// Polls `find` every 100 ms until it gives `Some`, at most 60 s.
pub async fn eventually<T, F, Fut>(what: &str, find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    test_support::wait::eventually(Duration::from_secs(60), what, find).await
}
