//! `minibit-peer daemon` end to end, with real processes on 127.0.0.1: a
//! `minibit-peer` seeder of a generated file behind a tracker stub that
//! also serves its `.torrent`; the daemon adds it through the API by URL,
//! downloads it byte for byte, keeps it across a restart without
//! re-hashing; hostile requests get JSON errors and change nothing; the
//! remote verbs drive it like `transmission-remote` (torrents and
//! subscriptions); `/api/events` pushes additions, progress and removals;
//! a new state folder gets a 0600 token printed once as a login URL.

mod common;

use std::path::Path;
use std::process::Command;

use common::daemon::{BIN, TOKEN, call, eventually, start_daemon, start_seeder};
use common::{make_album, make_single, start_stub};
use serde_json::{Value, json};

const SIZE: usize = 1024 * 1024 + 4321;

async fn detail(api: &str, info_hash: &str) -> Value {
    call(reqwest::Client::new().get(format!("{api}/api/torrents/{info_hash}")))
        .await
        .1
}

/// The priority of each file in a torrent's `detail`, in order.
fn priorities(detail: &Value) -> Vec<&str> {
    detail["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["priority"].as_str().unwrap())
        .collect()
}

/// Sets the torrent's own limits (200 kB/s down: the download takes
/// seconds, so its peer and pieces in flight can be seen), resumes it and
/// checks its detail while it downloads: the seeder as a peer, the
/// availability, the tracker's answer.
async fn limit_resume_and_see_the_detail(
    http: &reqwest::Client,
    api: &str,
    info_hash: &str,
    announce: &str,
    metainfo: &minibit_core::metainfo::Metainfo,
) {
    let (status, body) = call(
        http.patch(format!("{api}/api/torrents/{info_hash}"))
            .bearer_auth(TOKEN)
            .json(&json!({"download_limit": 200_000, "upload_limit": 0})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = call(
        http.post(format!("{api}/api/torrents/{info_hash}/resume"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 204);
    let during = eventually("the seeder as a peer, pieces in flight", || async {
        let d = detail(api, info_hash).await;
        let downloading = d["pieces"].as_str()?.contains('2');
        (d["peer_list"].as_array()?.len() == 1 && downloading).then_some(d)
    })
    .await;
    let peer = &during["peer_list"][0];
    assert!(
        peer["address"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{peer}"
    );
    assert!(
        peer["client"].as_str().unwrap().starts_with("minibit "),
        "{peer}"
    );
    assert_eq!(peer["seed"], true, "{peer}");
    assert_eq!(peer["progress"], 1.0);
    assert_eq!(peer["am_interested"], true);
    assert_eq!(during["download_limit"], 200_000);
    assert_eq!(during["upload_limit"], 0);
    let availability = during["availability"].as_array().unwrap();
    assert_eq!(availability.len() as u32, metainfo.layout().piece_count());
    assert!(
        availability.iter().all(|n| n == 1),
        "one seeder: {availability:?}"
    );
    assert!(during["distributed_copies"].as_f64().unwrap() >= 1.0);
    let tracker = &during["trackers"][0];
    assert_eq!(tracker["url"], announce);
    assert_eq!(
        (tracker["tier"].as_u64(), tracker["error"].is_null()),
        (Some(0), true),
        "{tracker}"
    );
    assert!(
        tracker["last_announce"].as_u64().unwrap() > 1_700_000_000,
        "{tracker}"
    );
    assert_eq!(tracker["peers"], 1, "the stub listed the seeder: {tracker}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torrent_added_by_url_downloads_and_comes_back_after_a_restart_without_rehash() {
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, state) = (dir.path().join("seed"), dir.path().join("state"));
    std::fs::create_dir_all(&seed_dir).unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(&seed_dir, "film.bin", SIZE, &stub.announce_url());
    let torrent = dir.path().join("film.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    stub.publish(metainfo.clone());
    let _seeder = start_seeder(&torrent, &seed_dir);
    // The daemon's first announce must list the seeder (a loaded machine
    // may start the seeder after the daemon).
    stub.first_announce().await;

    let daemon = start_daemon(&state);
    let http = reqwest::Client::new();
    let (status, added) = call(
        http.post(format!("{}/api/torrents", daemon.api))
            .bearer_auth(TOKEN)
            .json(&json!({
                "uri": format!("{}/torrents/film.bin.torrent", stub.base),
                "save_dir": "films/2026",
                "paused": true,
            })),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let info_hash = added["info_hash"].as_str().unwrap().to_owned();
    assert_eq!(info_hash, metainfo.info_hash().to_hex());

    limit_resume_and_see_the_detail(
        &http,
        &daemon.api,
        &info_hash,
        &stub.announce_url(),
        &metainfo,
    )
    .await;

    let done = eventually("100 %", || async {
        let d = detail(&daemon.api, &info_hash).await;
        (d["progress"] == 1.0).then_some(d)
    })
    .await;
    assert_eq!(done["state"], "seeding");
    assert_eq!(done["size"], SIZE as u64);
    assert_eq!(done["files"][0]["have"], SIZE as u64);
    assert_eq!(done["files"][0]["priority"], "normal");
    let pieces = done["pieces"].as_str().unwrap();
    assert_eq!(pieces.len() as u32, metainfo.layout().piece_count());
    assert!(pieces.chars().all(|c| c == '1'), "{pieces}");
    let saved = state.join("downloads/films/2026/film.bin");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(seed_dir.join("film.bin")).unwrap()
    );

    let metrics = http
        .get(format!("{}/metrics", daemon.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "minibit_daemon_torrents{state=\"seeding\"} 1".to_owned(),
        "minibit_daemon_torrents{state=\"downloading\"} 0".to_owned(),
        format!("minibit_daemon_downloaded_bytes_total {SIZE}"),
        format!(
            "minibit_daemon_pieces_verified {}",
            metainfo.layout().piece_count()
        ),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // Paused, then restarted: the torrent is back, still paused, complete
    // at once, its pieces trusted from the resume data.
    let (status, _) = call(
        http.post(format!("{}/api/torrents/{info_hash}/pause", daemon.api))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 204);
    assert!(daemon.proc.terminate().success(), "a clean stop exits 0");
    let daemon = start_daemon(&state);
    let (status, list) = call(http.get(format!("{}/api/torrents", daemon.api))).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["info_hash"], info_hash.as_str());
    assert_eq!(list[0]["progress"], 1.0, "complete at once: {list}");
    assert_eq!(list[0]["state"], "paused");
    let kept = detail(&daemon.api, &info_hash).await;
    assert_eq!(kept["download_limit"], 200_000, "the limits are kept");
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    let trusted = format!(
        "{} pieces trusted, 0 pieces of changed files re-verified",
        metainfo.layout().piece_count()
    );
    assert!(log.contains(&trusted), "no re-hash: {log}");
    let (status, _) = call(
        http.post(format!("{}/api/torrents/{info_hash}/resume", daemon.api))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(detail(&daemon.api, &info_hash).await["state"], "seeding");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_json_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let metainfo = make_single(dir.path(), "a.bin", 50_000, "http://127.0.0.1:9/announce");
    let torrent = metainfo.to_bytes();
    let daemon = start_daemon(&state);
    let http = reqwest::Client::new();
    let api = &daemon.api;
    let upload = |query: &str, body: Vec<u8>, token: Option<&str>| {
        let mut request = http
            .post(format!("{api}/api/torrents{query}"))
            .header("Content-Type", "application/x-bittorrent")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };

    let (status, good) = call(upload("?save_dir=in", torrent.clone(), Some(TOKEN))).await;
    assert_eq!(status, 201, "{good}");
    let info_hash = good["info_hash"].as_str().unwrap().to_owned();

    // The good `.torrent` with the token and `query`.
    let torrent_with = |query: &str| upload(query, torrent.clone(), Some(TOKEN));
    let mut refusals = vec![
        (upload("", torrent.clone(), None), 401, "token"),
        (
            upload("", torrent.clone(), Some("wrong-token-0123456789")),
            401,
            "wrong",
        ),
        (
            upload("", b"d4:spam".to_vec(), Some(TOKEN)),
            400,
            "not a valid .torrent",
        ),
        (torrent_with("?save_dir=../../etc"), 403, "outside"),
        (torrent_with("?save_dir=/tmp"), 403, "outside"),
        (torrent_with("?only=*.mkv"), 400, "matches no file"),
        (torrent_with("?colour=red"), 400, "unknown parameter"),
        (torrent_with(""), 409, "already"),
        (
            upload("", vec![b'x'; 11 * 1024 * 1024], Some(TOKEN)),
            413,
            "at most",
        ),
    ];
    refusals.extend(other_refusals(&http, api, &info_hash));
    for (request, expected, words) in refusals {
        let (status, body) = call(request).await;
        assert_eq!(status, expected, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(words),
            "{expected}: {error:?} lacks {words:?}"
        );
    }
    // Still up, with the one torrent intact where it was asked to go.
    let (status, list) = call(http.get(format!("{api}/api/torrents"))).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["info_hash"], info_hash.as_str());
    let d = detail(api, &info_hash).await;
    assert_eq!(
        (&d["upload_limit"], &d["download_limit"]),
        (&json!(0), &json!(0)),
        "refused PATCHes changed no limit"
    );
    assert!(
        state.join("downloads/in/a.bin.part").exists(),
        "downloading into the asked folder"
    );
    assert!(!state.join("etc").exists() && !dir.path().join("etc").exists());
}

/// Refused requests other than `.torrent` uploads: each with the status
/// and words of its JSON error.
fn other_refusals(
    http: &reqwest::Client,
    api: &str,
    info_hash: &str,
) -> Vec<(reqwest::RequestBuilder, u16, &'static str)> {
    vec![
        (
            http.post(format!("{api}/api/torrents"))
                .bearer_auth(TOKEN)
                .header("Content-Type", "text/plain")
                .body("hello"),
            415,
            "application/x-bittorrent",
        ),
        (
            http.post(format!("{api}/api/torrents"))
                .bearer_auth(TOKEN)
                .header("Content-Type", "application/json")
                .body("{\"uri\": 5}"),
            400,
            "invalid type",
        ),
        (
            http.post(format!("{api}/api/torrents"))
                .bearer_auth(TOKEN)
                .json(&json!({"uri": "file:///etc/passwd"})),
            400,
            "http(s)",
        ),
        (
            http.post(format!("{api}/api/torrents/{info_hash}/pause")),
            401,
            "token",
        ),
        (
            http.post(format!("{api}/api/torrents/{}/pause", "ab".repeat(20)))
                .bearer_auth(TOKEN),
            404,
            "no torrent",
        ),
        (
            http.delete(format!("{api}/api/torrents/nothex"))
                .bearer_auth(TOKEN),
            400,
            "info-hash",
        ),
        (
            http.patch(format!("{api}/api/torrents/{info_hash}"))
                .bearer_auth(TOKEN)
                .json(&json!({"priorities": ["skip", "skip"]})),
            400,
            "one priority per file",
        ),
        (
            http.patch(format!("{api}/api/torrents/{info_hash}"))
                .bearer_auth(TOKEN)
                .json(&json!({})),
            400,
            "upload_limit",
        ),
        (
            http.patch(format!("{api}/api/torrents/{info_hash}"))
                .bearer_auth(TOKEN)
                .json(&json!({"upload_limit": -5})),
            400,
            "upload_limit",
        ),
        (
            http.patch(format!("{api}/api/torrents/{info_hash}"))
                .json(&json!({"upload_limit": 1000})),
            401,
            "token",
        ),
        (
            http.patch(format!("{api}/api/torrents/{}", "cd".repeat(20)))
                .bearer_auth(TOKEN)
                .json(&json!({"download_limit": 1000})),
            404,
            "no torrent",
        ),
        (
            http.delete(format!("{api}/api/torrents/{info_hash}"))
                .bearer_auth(TOKEN)
                .header("Origin", "http://evil.example"),
            403,
            "cross-origin",
        ),
    ]
}

fn remote(api: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .args(["--api", api])
        .env("MINIBIT_DAEMON_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_verbs_add_list_pause_resume_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let metainfo = make_album(dir.path(), "http://127.0.0.1:9/announce");
    let torrent = dir.path().join("album.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let daemon = start_daemon(&state);
    let api = daemon.api.as_str();

    // No token: refused before anything is sent.
    let refused = Command::new(BIN)
        .args(["add", torrent.to_str().unwrap(), "--api", api])
        .env_remove("MINIBIT_DAEMON_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("API token"));

    let added = stdout(&remote(
        api,
        &[
            "add",
            torrent.to_str().unwrap(),
            "--only",
            "disc2/*",
            "--paused",
        ],
    ));
    let info_hash = metainfo.info_hash().to_hex();
    assert_eq!(added.trim(), info_hash);
    let listed = stdout(&remote(api, &["list"]));
    assert!(listed.starts_with(&info_hash), "{listed}");
    assert!(
        listed.contains("paused") && listed.contains("album"),
        "{listed}"
    );
    let d = detail(api, &info_hash).await;
    assert_eq!(priorities(&d), ["skip", "normal", "skip"], "{d}");

    assert_eq!(
        stdout(&remote(api, &["resume", "album"])).trim(),
        format!("resumed {info_hash}")
    );
    assert_eq!(detail(api, &info_hash).await["state"], "downloading");
    assert_eq!(
        stdout(&remote(api, &["pause", &info_hash])).trim(),
        format!("paused {info_hash}")
    );
    assert_eq!(detail(api, &info_hash).await["state"], "paused");

    let unknown = remote(api, &["pause", "no such torrent"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no torrent named"));

    // File priorities at run time: the torrent is reopened with them,
    // still paused; the newly wanted file is created.
    let first = state.join("downloads/album/a.bin.part");
    assert!(!first.exists(), "skipped files are not created");
    let (status, body) = call(
        reqwest::Client::new()
            .patch(format!("{api}/api/torrents/{info_hash}"))
            .bearer_auth(TOKEN)
            .json(&json!({"priorities": ["high", "normal", "skip"]})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let d = detail(api, &info_hash).await;
    assert_eq!(priorities(&d), ["high", "normal", "skip"], "{d}");
    assert_eq!(d["state"], "paused");
    assert!(first.exists(), "a file no longer skipped is created");

    let content = state.join("downloads/album/disc2/b.bin");
    assert!(content.with_extension("bin.part").exists() || content.exists());
    let removed = stdout(&remote(api, &["remove", "--delete-data", &info_hash]));
    assert!(removed.contains("and its data"), "{removed}");
    assert_eq!(stdout(&remote(api, &["list"])).trim(), "no torrent");
    assert!(!content.exists() && !content.with_extension("bin.part").exists());
    assert!(!Path::new(&state.join("resume").join(format!("{info_hash}.resume"))).exists());

    // By URL (fetched by the daemon: the JSON form), files by index.
    let stub = start_stub().await;
    stub.publish(metainfo.clone());
    let url = format!("{}/torrents/album.torrent", stub.base);
    let added = stdout(&remote(api, &["add", &url, "--only", "1", "--paused"]));
    assert_eq!(added.trim(), info_hash);
    let d = detail(api, &info_hash).await;
    assert_eq!(priorities(&d), ["skip", "normal", "skip"], "{d}");
    assert_eq!(d["state"], "paused");
}

/// Reads server-sent events from `response` until `done` holds for the
/// events read so far (each `(event, data as JSON)`), at most 30 s.
async fn read_events(
    response: &mut reqwest::Response,
    events: &mut Vec<(String, Value)>,
    done: impl Fn(&[(String, Value)]) -> bool,
) {
    let mut text = String::new();
    let read = async {
        while !done(events) {
            let chunk = response.chunk().await.unwrap().expect("the stream ended");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let kind = block.lines().find_map(|l| l.strip_prefix("event: "));
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(kind), Some(data)) = (kind, data) {
                    events.push((kind.to_owned(), serde_json::from_str(data).unwrap()));
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("the events within 30 s, got {events:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_pushes_added_progress_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "a.bin", 50_000, "http://127.0.0.1:9/announce");
    let info_hash = metainfo.info_hash().to_hex();
    let daemon = start_daemon(&dir.path().join("state"));
    let http = reqwest::Client::new();
    let mut stream = http
        .get(format!("{}/api/events", daemon.api))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = Vec::new();
    // An empty list first (once a second), then the addition.
    read_events(&mut stream, &mut events, |e| {
        e.iter().any(|(kind, _)| kind == "progress")
    })
    .await;
    let (status, body) = call(
        http.post(format!("{}/api/torrents?paused=true", daemon.api))
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/x-bittorrent")
            .body(metainfo.to_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let lists_it = |(kind, data): &(String, Value)| {
        kind == "progress" && data[0]["info_hash"] == info_hash.as_str()
    };
    read_events(&mut stream, &mut events, |e| e.iter().any(lists_it)).await;
    let added = events
        .iter()
        .position(|(kind, _)| kind == "added")
        .expect("an added event");
    assert_eq!(
        events[added].1,
        json!({"event": "added", "info_hash": info_hash, "name": "a.bin"})
    );
    let listed = events.iter().position(lists_it).unwrap();
    let listed_data = &events[listed].1;
    assert!(added < listed, "added before it is listed: {events:?}");
    assert_eq!(listed_data[0]["state"], "paused", "{listed_data}");
    assert_eq!(listed_data[0]["name"], "a.bin", "{listed_data}");

    let (status, _) = call(
        http.delete(format!("{}/api/torrents/{info_hash}", daemon.api))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(status, 204);
    read_events(&mut stream, &mut events, |e| {
        e.iter().any(|(kind, _)| kind == "removed")
    })
    .await;
    let removed = &events.iter().find(|(kind, _)| kind == "removed").unwrap().1;
    assert_eq!(
        removed,
        &json!({"event": "removed", "info_hash": info_hash})
    );
    // Later progress events list nothing.
    let seen = events.len();
    read_events(&mut stream, &mut events, |e| {
        e[seen..].iter().any(|(kind, _)| kind == "progress")
    })
    .await;
    let last = &events[seen..]
        .iter()
        .find(|(kind, _)| kind == "progress")
        .unwrap()
        .1;
    assert_eq!(last, &json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_state_folder_gets_a_private_token_printed_once_as_a_login_url() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let start = || common::daemon::spawn_daemon(&state, &["--no-dht", "--no-lsd"], None);
    let daemon = start();
    let api = daemon.api.clone();
    let token_file = state.join("token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64, "{token:?}");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let stderr = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l == format!("api login: {api}/#token={token}")),
        "{stderr}"
    );
    // The token opens the API; another one does not.
    let http = reqwest::Client::new();
    let add = |token: &str| {
        http.post(format!("{api}/api/subscriptions"))
            .bearer_auth(token)
            .json(&json!({"tracker": "http://127.0.0.1:9"}))
    };
    assert_eq!(call(add(TOKEN)).await.0, 401);
    assert_eq!(call(add(token)).await.0, 201);
    assert!(daemon.proc.terminate().success());

    // Printed once: a restart says where it is, not what it is.
    let again = start();
    let stderr = std::fs::read_to_string(&again.log).unwrap();
    assert!(!stderr.contains(token), "{stderr}");
    assert!(stderr.contains("api token in "), "{stderr}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
}

fn stderr_of_failure(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_verbs_subscribe_list_and_unsubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(&dir.path().join("state"));
    let api = daemon.api.as_str();
    // Nothing listens there: the daemon keeps retrying, which is fine here.
    let tracker = "http://127.0.0.1:9";
    let photos = format!("{tracker}#*.jpg");

    assert_eq!(
        stdout(&remote(api, &["subscriptions"])).trim(),
        "no subscription"
    );
    assert_eq!(
        stdout(&remote(api, &["subscribe", &format!("{tracker}/#*.jpg")])).trim(),
        format!("subscribed to {photos}")
    );
    assert_eq!(
        stdout(&remote(api, &["subscribe", tracker])).trim(),
        format!("subscribed to {tracker}")
    );
    assert_eq!(
        stdout(&remote(api, &["subscriptions"])),
        format!("{photos}\n{tracker}\n")
    );
    let (_, listed) = call(reqwest::Client::new().get(format!("{api}/api/subscriptions"))).await;
    assert_eq!(
        listed,
        json!([{"tracker": tracker, "glob": "*.jpg"}, {"tracker": tracker, "glob": null}])
    );

    // Refusals, each said once on stderr with the daemon's reason.
    let again = stderr_of_failure(&remote(api, &["subscribe", &photos]));
    assert!(
        again.contains("already subscribed") && again.contains("HTTP 409"),
        "{again}"
    );
    let unknown = stderr_of_failure(&remote(api, &["unsubscribe", &format!("{tracker}#*.png")]));
    assert!(
        unknown.contains("no subscription") && unknown.contains("HTTP 404"),
        "{unknown}"
    );
    let no_token = Command::new(BIN)
        .args(["unsubscribe", &photos, "--api", api])
        .env_remove("MINIBIT_DAEMON_TOKEN")
        .output()
        .unwrap();
    assert!(stderr_of_failure(&no_token).contains("API token"));
    let bad_glob = remote(api, &["subscribe", &format!("{tracker}#[a")]);
    assert_eq!(
        bad_glob.status.code(),
        Some(2),
        "a usage error: {bad_glob:?}"
    );
    let unreachable = remote("http://127.0.0.1:9", &["subscriptions"]);
    assert!(stderr_of_failure(&unreachable).contains("cannot reach the daemon"));

    assert_eq!(
        stdout(&remote(api, &["unsubscribe", &photos])).trim(),
        format!("unsubscribed from {photos}")
    );
    assert_eq!(
        stdout(&remote(api, &["subscriptions"])),
        format!("{tracker}\n")
    );
}

/// The value of the series `name` (a line `name VALUE`) of the daemon's
/// `/metrics`, `None` when absent.
async fn metric(api: &str, name: &str) -> Option<u64> {
    let page = reqwest::get(format!("{api}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_connected_peers_and_pieces_that_fail_verification() {
    use common::scripted::Scripted;
    use minibit_core::wire::{Message, PeerId};

    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "a.bin", 200_000, "http://127.0.0.1:9/announce");
    let pieces = metainfo.layout().piece_count();
    let daemon = start_daemon(&dir.path().join("state"));
    let (status, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/torrents", daemon.api))
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/x-bittorrent")
            .body(metainfo.to_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(metric(&daemon.api, "minibit_daemon_peers").await, Some(0));
    assert_eq!(
        metric(&daemon.api, "minibit_daemon_pieces_failed_total").await,
        Some(0)
    );
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    let peer_addr = log
        .lines()
        .find_map(|l| l.strip_prefix("listening for peers on "))
        .unwrap_or_else(|| panic!("{log}"))
        .parse()
        .unwrap();

    // A peer that claims every piece and (once counted: it is banned
    // soon after) answers each request with garbage: every piece it
    // completes fails verification.
    let mut liar = Scripted::connect(peer_addr, pieces).await;
    liar.open_as_seeder(
        metainfo.info_hash(),
        PeerId(*b"-XX0001-liarliarliar"),
        pieces,
    )
    .await;
    eventually("the liar counted as a peer", || async {
        (metric(&daemon.api, "minibit_daemon_peers").await? == 1).then_some(())
    })
    .await;
    let liar = tokio::spawn(async move {
        while let Some((piece, offset, length)) = liar.next_request().await {
            let block = Message::Piece {
                piece,
                offset,
                data: bytes::Bytes::from(vec![0xAA; length as usize]),
            };
            if liar.try_send(&block).await.is_err() {
                return;
            }
        }
    });
    // (A piece may fail more than once: it is asked of the liar again
    // until the liar is banned.)
    eventually("a failed piece", || async {
        metric(&daemon.api, "minibit_daemon_pieces_failed_total")
            .await
            .filter(|&n| n > 0)
    })
    .await;
    assert_eq!(
        metric(&daemon.api, "minibit_daemon_pieces_verified").await,
        Some(0),
        "nothing the liar sent counts"
    );
    liar.abort();
}
