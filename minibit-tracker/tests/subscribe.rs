//! Publish and subscribe end to end, with the real binaries on 127.0.0.1:
//! a `minibit-tracker --state` and two `minibit-peer daemon --subscribe
//! TRACKER#GLOB` with different globs. Files published through the API
//! (before the daemons start, while they follow, and while the tracker
//! restarts) reach exactly the daemons whose glob matches, byte for byte;
//! a removal on the tracker keeps the subscriber's copy; after a restart
//! of the tracker and of both daemons (without `--subscribe`), the
//! catalogue, the subscriptions and the downloads are all there, nothing
//! re-hashed, and a new publication still arrives; one the user removed
//! from a daemon is not added back.

#[allow(dead_code)]
#[path = "interop/minibit.rs"]
mod minibit;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use minibit::peer_binary;
use serde_json::{Value, json};
use test_support::content::pseudo_random;
use test_support::process::{Proc, free_port, signal};

/// The longest any step may take on a busy machine.
const STEP: Duration = Duration::from_secs(60);

const TRACKER_TOKEN: &str = "subscribe-test-tracker-token";
const DAEMON_TOKEN: &str = "subscribe-test-daemon-token";

/// `minibit-tracker --bind 127.0.0.1:PORT --state STATE`.
struct Tracker {
    proc: Proc,
    base: String,
}

impl Tracker {
    fn start(port: u16, state: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"));
        command
            .args(["-q", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--api-token", TRACKER_TOKEN, "--state"])
            .arg(state);
        let proc = Proc::spawn("minibit-tracker", command);
        let base = proc.wait_line(STEP, |l| {
            l.strip_prefix("tracker listening on ").map(str::to_owned)
        });
        Self { proc, base }
    }

    async fn publish(&self, name: &str, bytes: &[u8]) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/api/publish?name={name}", self.base))
            .bearer_auth(TRACKER_TOKEN)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "publish {name}");
        let published = json_body(response).await;
        published["info_hash"].as_str().unwrap().to_owned()
    }

    async fn remove(&self, info_hash: &str) {
        let response = reqwest::Client::new()
            .delete(format!("{}/api/torrents/{info_hash}", self.base))
            .bearer_auth(TRACKER_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "remove {info_hash}");
    }

    async fn catalogue(&self) -> BTreeSet<String> {
        let listing = json_body(
            reqwest::get(format!("{}/torrents", self.base))
                .await
                .unwrap(),
        )
        .await;
        listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// `minibit-peer -v daemon --state STATE [--subscribe SUBSCRIPTION]`.
struct Daemon {
    proc: Proc,
    api: String,
    state: PathBuf,
}

impl Daemon {
    fn start(state: &Path, subscribe: Option<&str>) -> Self {
        let mut command = Command::new(peer_binary());
        command
            .args([
                "-v",
                "daemon",
                "--api",
                "127.0.0.1:0",
                "--bind",
                "127.0.0.1",
            ])
            // The tracker is the only way peers meet here.
            .args(["--no-dht", "--no-lsd"])
            .args(["--api-token", DAEMON_TOKEN, "--state"])
            .arg(state)
            .env_remove("RUST_LOG");
        if let Some(subscription) = subscribe {
            command.args(["--subscribe", subscription]);
        }
        let proc = Proc::spawn("minibit-peer daemon", command);
        let api = proc.wait_line(STEP, |l| {
            l.strip_prefix("api listening on ").map(str::to_owned)
        });
        Self {
            proc,
            api,
            state: state.to_owned(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        json_body(reqwest::get(format!("{}{path}", self.api)).await.unwrap()).await
    }

    /// Waits until the daemon holds exactly `names`, each complete; checks
    /// each file is byte for byte the published one.
    async fn holds(&self, files: &[(&str, &[u8])]) {
        let wanted: BTreeSet<&str> = files.iter().map(|(name, _)| *name).collect();
        let deadline = Instant::now() + STEP;
        loop {
            let list = self.get("/api/torrents").await;
            let list = list.as_array().unwrap().clone();
            let names: BTreeSet<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
            assert!(
                names.is_subset(&wanted),
                "{} holds {names:?}, not only {wanted:?}",
                self.state.display()
            );
            if names == wanted && list.iter().all(|t| t["progress"] == 1.0) {
                break;
            }
            if Instant::now() > deadline {
                self.proc.fail(&format!(
                    "waiting for {wanted:?} complete; the daemon has {list:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for (name, bytes) in files {
            let saved = std::fs::read(self.state.join("downloads").join(name)).unwrap();
            assert!(saved == *bytes, "{name} differs from the published file");
        }
    }

    /// Checks that every torrent is complete at once after a restart and
    /// that its log says each was resumed without re-hashing a piece.
    async fn resumed_without_rehash(&self) {
        let list = self.get("/api/torrents").await;
        for torrent in list.as_array().unwrap() {
            assert_eq!(torrent["progress"], 1.0, "complete at once: {torrent}");
            let (name, info_hash) = (&torrent["name"], &torrent["info_hash"]);
            let detail = self
                .get(&format!("/api/torrents/{}", info_hash.as_str().unwrap()))
                .await;
            let pieces = detail["pieces"].as_str().unwrap().len();
            let resumed = format!(
                "resumed from resume data: {pieces} pieces trusted, 0 pieces of changed files re-verified"
            );
            let name = format!("name={name}");
            assert!(
                self.proc
                    .lines()
                    .iter()
                    .any(|l| l.contains(&resumed) && l.contains(&name)),
                "{name} not re-hashed: {:#?}",
                self.proc.lines()
            );
        }
    }

    /// Stops it with SIGTERM; it must exit cleanly.
    fn stop(mut self) {
        terminate(&mut self.proc, "TERM");
    }
}

async fn json_body(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn terminate(proc: &mut Proc, name: &str) {
    signal(proc.id(), name);
    assert!(proc.wait_exit(STEP).success(), "a clean exit on SIG{name}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_get_the_matching_publications_and_keep_them_across_restarts() {
    let dir = tempfile::Builder::new()
        .prefix("minibit-subscribe-")
        .tempdir()
        .unwrap();
    let (tracker_state, photos_state, notes_state) = (
        dir.path().join("tracker"),
        dir.path().join("photos"),
        dir.path().join("notes"),
    );
    let port = free_port();
    let photo_a = pseudo_random(300_000, 1);
    let notes_b = pseudo_random(150_000, 2);
    let photo_c = pseudo_random(200_000, 3);
    let photo_d = pseudo_random(100_000, 4);
    let notes_e = pseudo_random(50_000, 5);
    let photo_f = pseudo_random(60_000, 6);

    // Published before the daemons start: found by their catch-up.
    let tracker = Tracker::start(port, &tracker_state);
    let a_hash = tracker.publish("a.jpg", &photo_a).await;
    let photos = Daemon::start(&photos_state, Some(&format!("{}#*.jpg", tracker.base)));
    let notes = Daemon::start(&notes_state, Some(&format!("{}#*.txt", tracker.base)));
    // Published while they follow: pushed by the catalogue's events.
    tracker.publish("b.txt", &notes_b).await;
    photos.holds(&[("a.jpg", &photo_a)]).await;
    notes.holds(&[("b.txt", &notes_b)]).await;

    // A removal on the tracker keeps the subscriber's copy.
    tracker.remove(&a_hash).await;
    let c_hash = tracker.publish("c.jpg", &photo_c).await;
    photos
        .holds(&[("a.jpg", &photo_a), ("c.jpg", &photo_c)])
        .await;
    let catalogue = BTreeSet::from(["b.txt".to_owned(), "c.jpg".to_owned()]);
    assert_eq!(tracker.catalogue().await, catalogue);

    // The tracker restarts; a publication made as soon as it is back
    // arrives whether the daemons have reconnected yet or not.
    let mut tracker = tracker;
    terminate(&mut tracker.proc, "INT");
    drop(tracker);
    let tracker = Tracker::start(port, &tracker_state);
    assert_eq!(
        tracker.catalogue().await,
        catalogue,
        "the catalogue survives"
    );
    tracker.publish("d.jpg", &photo_d).await;
    photos
        .holds(&[
            ("a.jpg", &photo_a),
            ("c.jpg", &photo_c),
            ("d.jpg", &photo_d),
        ])
        .await;

    // Both daemons restart without --subscribe: subscriptions and
    // downloads are back, complete at once, nothing re-hashed.
    let subscriptions = (
        photos.get("/api/subscriptions").await,
        notes.get("/api/subscriptions").await,
    );
    assert_eq!(
        subscriptions.0,
        json!([{ "tracker": tracker.base, "glob": "*.jpg" }])
    );
    assert_eq!(
        subscriptions.1,
        json!([{ "tracker": tracker.base, "glob": "*.txt" }])
    );
    photos.stop();
    notes.stop();
    let photos = Daemon::start(&photos_state, None);
    let notes = Daemon::start(&notes_state, None);
    assert_eq!(photos.get("/api/subscriptions").await, subscriptions.0);
    assert_eq!(notes.get("/api/subscriptions").await, subscriptions.1);
    for daemon in [&photos, &notes] {
        daemon.resumed_without_rehash().await;
    }

    // They still follow: a new publication reaches the one it matches.
    tracker.publish("e.txt", &notes_e).await;
    notes
        .holds(&[("b.txt", &notes_b), ("e.txt", &notes_e)])
        .await;
    photos
        .holds(&[
            ("a.jpg", &photo_a),
            ("c.jpg", &photo_c),
            ("d.jpg", &photo_d),
        ])
        .await;

    // A publication the user removed from a daemon is not added back when
    // its subscription lists the catalogue again (here after a restart;
    // the catalogue lists c.jpg before f.jpg).
    let response = reqwest::Client::new()
        .delete(format!("{}/api/torrents/{c_hash}", photos.api))
        .bearer_auth(DAEMON_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    photos.stop();
    let photos = Daemon::start(&photos_state, None);
    tracker.publish("f.jpg", &photo_f).await;
    photos
        .holds(&[
            ("a.jpg", &photo_a),
            ("d.jpg", &photo_d),
            ("f.jpg", &photo_f),
        ])
        .await;
}
