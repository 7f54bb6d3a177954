//! The JSON API of a running tracker, in process on 127.0.0.1: publish a
//! file or a `.torrent`, remove it, the catalogue events, `/metrics`, and
//! every error status (400, 401, 403, 404, 409, 413).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use minibit_core::metainfo::{InfoHash, Metainfo, MetainfoBuilder};
use minibit_peer::{Session, SessionConfig};
use minibit_tracker::store::Store;
use minibit_tracker::token::ApiToken;
use minibit_tracker::{CatalogueEntry, RegistryConfig, ServiceConfig, TrackerState, serve};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::content::pseudo_random;
use tokio::sync::oneshot;

const TOKEN: &str = "0123456789abcdef-test-token";

struct Tracker {
    base: String,
    state: Arc<TrackerState>,
    data: PathBuf,
    client: reqwest::Client,
    _dirs: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

/// A tracker on 127.0.0.1 with a data folder (unless `with_data` is
/// false) and a database.
async fn start(with_data: bool) -> Tracker {
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = std::fs::canonicalize(data).unwrap();
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(TrackerState::new(RegistryConfig::default()).with_service(
        ServiceConfig {
            tracker_addr: Some(addr),
            token: Some(ApiToken::new(TOKEN).unwrap()),
            data_root: with_data.then(|| data.clone()),
            store: Some(Store::open(dirs.path()).unwrap()),
            ..ServiceConfig::default()
        },
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&state), async {
        let _ = stopped.await;
    }));
    Tracker {
        base: format!("http://{addr}"),
        state,
        data,
        client: reqwest::Client::new(),
        _dirs: dirs,
        _stop: stop,
    }
}

impl Tracker {
    async fn publish(&self, name: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/api/publish", self.base))
            .query(&[("name", name)])
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        json(response).await
    }

    async fn publish_torrent(&self, torrent: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/api/publish", self.base))
            .header("content-type", "application/x-bittorrent")
            .bearer_auth(TOKEN)
            .body(torrent)
            .send()
            .await
            .unwrap();
        json(response).await
    }

    async fn remove(&self, info_hash: &str, query: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .delete(format!("{}/api/torrents/{info_hash}{query}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        json(response).await
    }

    /// The response to `GET PATH` (`/torrents`, `/metrics`, ...).
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The catalogued `name`'s `.torrent`, as served.
    async fn torrent(&self, name: &str) -> bytes::Bytes {
        let response = self.get(&format!("/torrents/{name}.torrent")).await;
        response.bytes().await.unwrap()
    }

    async fn listing(&self) -> Vec<Value> {
        let body = self.get("/torrents").await.bytes().await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// The names in the catalogue, in its order.
    async fn names(&self) -> Vec<Value> {
        let listing = self.listing().await;
        listing.iter().map(|e| e["name"].clone()).collect()
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    fn data_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.bytes().await.unwrap();
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, value)
}

/// The response's `content-type`.
fn content_type(response: &reqwest::Response) -> &str {
    response.headers()["content-type"].to_str().unwrap()
}

fn error_of(value: &Value) -> &str {
    value["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {value}"))
}

/// Downloads the catalogued `name` from `tracker` with a `minibit-peer`
/// session into a fresh folder and returns the bytes.
async fn download(tracker: &Tracker, name: &str) -> Vec<u8> {
    let torrent = tracker.torrent(name).await;
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(metainfo, dir.path());
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let leecher = Session::start(config).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the leecher completed");
    leecher.shutdown().await.unwrap();
    std::fs::read(dir.path().join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_file_is_stored_catalogued_seeded_and_downloaded() {
    let tracker = start(true).await;
    let data = pseudo_random(700_000, 1);
    let (status, published) = tracker.publish("Holiday Movie.bin", data.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    assert_eq!(published["name"], "Holiday Movie.bin");
    assert_eq!(published["size"], 700_000);
    assert_eq!(published["seeded"], true);
    assert_eq!(
        published["torrent"],
        "/torrents/Holiday%20Movie.bin.torrent"
    );
    assert_eq!(tracker.data_files(), ["Holiday Movie.bin"]);
    assert_eq!(
        std::fs::read(tracker.data.join("Holiday Movie.bin")).unwrap(),
        data
    );

    let listing = tracker.listing().await;
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0]["info_hash"], published["info_hash"]);

    let copy = download(&tracker, "Holiday Movie.bin").await;
    assert!(copy == data, "the downloaded copy differs");
    let listing = tracker.listing().await;
    assert_eq!(listing[0]["completed"], 1, "{listing:?}");
    // The leecher left (`stopped`): the seeder alone; its `started` and the
    // leecher's `started`, `completed` and `stopped` in the last minute.
    assert_eq!(
        (&listing[0]["seeders"], &listing[0]["leechers"]),
        (&serde_json::json!(1), &serde_json::json!(0)),
        "{listing:?}"
    );
    let announces = listing[0]["announces_per_minute"].as_f64().unwrap();
    assert!(announces >= 4.0, "{listing:?}");
    // The seeder's counters are snapshots taken about once a second.
    let uploaded = async {
        loop {
            let metrics = tracker.metrics().await;
            let uploaded: u64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix("minibit_tracker_seeder_uploaded_bytes_total "))
                .unwrap_or_else(|| panic!("no upload counter in\n{metrics}"))
                .parse()
                .unwrap();
            if uploaded >= 700_000 {
                return uploaded;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let uploaded = tokio::time::timeout(Duration::from_secs(30), uploaded).await;
    assert!(
        uploaded.is_ok(),
        "the upload counter reached the file's size within 30 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeders_view_shows_its_upload_and_the_availability_among_its_peers() {
    let tracker = start(true).await;
    let (_, published) = tracker.publish("slow.bin", pseudo_random(600_000, 8)).await;
    let info_hash = published["info_hash"].as_str().unwrap().to_owned();
    let status_of = |hash: String| {
        let request = tracker
            .client
            .get(format!("{}/api/torrents/{hash}", tracker.base));
        async move { json(request.send().await.unwrap()).await }
    };
    let (status, view) = status_of(info_hash.clone()).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let torrent = tracker.torrent("slow.bin").await;
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    let pieces = metainfo.layout().piece_count() as usize;
    assert_eq!(view["availability"].as_array().unwrap().len(), pieces);
    assert_eq!(
        (view["peers"].as_u64(), view["uploaded"].as_u64()),
        (Some(0), Some(0))
    );

    // A leecher held to 100 kB/s: the seeder sees its pieces and uploads.
    let dir = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(metainfo, dir.path());
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.download_limit = 100_000;
    let leecher = Session::start(config).await.unwrap();
    let seen = async {
        loop {
            let (_, view) = status_of(info_hash.clone()).await;
            let copies: Vec<u64> = view["availability"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .collect();
            if view["peers"] == 1
                && view["upload_rate"].as_f64().unwrap() > 0.0
                && copies.contains(&1)
                && copies.iter().all(|&n| n <= 1)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let seen = tokio::time::timeout(Duration::from_secs(30), seen).await;
    assert!(
        seen.is_ok(),
        "the leecher's pieces and the upload were seen within 30 s"
    );
    leecher.shutdown().await.unwrap();

    let (status, body) = status_of("ab".repeat(20)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(error_of(&body).contains("does not seed"));
    let (status, body) = status_of("xyz".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_stops_seeding_forgets_the_swarm_and_deletes_the_data_on_request() {
    let tracker = start(true).await;
    let (_, a) = tracker.publish("a.bin", pseudo_random(100_000, 2)).await;
    let (_, b) = tracker.publish("b.bin", pseudo_random(100_000, 3)).await;
    let a_hash = a["info_hash"].as_str().unwrap();
    let info_hash = |hex: &str| {
        let mut bytes = [0; 20];
        hex::decode_to_slice(hex, &mut bytes).unwrap();
        InfoHash(bytes)
    };
    // Both seeders announced: one seeder in each swarm.
    for hex in [a_hash, b["info_hash"].as_str().unwrap()] {
        assert_eq!(tracker.state.registry().stats(&info_hash(hex)).complete, 1);
    }

    let (status, removed) = tracker.remove(a_hash, "").await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["name"], "a.bin");
    assert_eq!(removed["data_deleted"], false);
    assert!(!tracker.state.registry().tracks(&info_hash(a_hash)));
    assert!(!tracker.state.service().seeds(&info_hash(a_hash)));
    assert_eq!(tracker.data_files(), ["a.bin", "b.bin"], "data kept");
    assert_eq!(tracker.names().await, ["b.bin"]);

    let (status, removed) = tracker
        .remove(b["info_hash"].as_str().unwrap(), "?delete_data=true")
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["data_deleted"], true);
    assert_eq!(tracker.data_files(), ["a.bin"]);
    assert!(tracker.listing().await.is_empty());

    // Removed entries are 404 now, and stay out of the database.
    let (status, body) = tracker.remove(a_hash, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let store = tracker.state.service().store().unwrap();
    assert!(store.load().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_alone_is_tracked_and_seeded_only_when_its_data_is_there() {
    let tracker = start(true).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let make = |name: &str, seed: u64| {
        let path = elsewhere.path().join(name);
        std::fs::write(&path, pseudo_random(50_000, seed)).unwrap();
        MetainfoBuilder::new(&path)
            .announce(format!("{}/announce", tracker.base))
            .build()
            .unwrap()
            .to_bytes()
    };
    let tracked = make("tracked.bin", 4);
    let (status, published) = tracker.publish_torrent(tracked.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    assert_eq!(published["seeded"], false);
    let served = tracker.torrent("tracked.bin").await;
    assert_eq!(
        served.as_ref(),
        tracked.as_slice(),
        "the .torrent is served as given"
    );

    let present = make("present.bin", 5);
    std::fs::copy(
        elsewhere.path().join("present.bin"),
        tracker.data.join("present.bin"),
    )
    .unwrap();
    let (status, published) = tracker.publish_torrent(present).await;
    assert_eq!(status, StatusCode::CREATED, "{published}");
    assert_eq!(published["seeded"], true);
    let copy = download(&tracker, "present.bin").await;
    assert!(copy == pseudo_random(50_000, 5), "the copy differs");

    // The same torrent again: 409.
    let (status, body) = tracker.publish_torrent(tracked).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn catalogue_events_are_pushed_for_publications_and_removals() {
    let tracker = start(true).await;
    let response = tracker.get("/api/catalogue/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/event-stream"));
    let mut stream = response.bytes_stream();
    let (_, published) = tracker.publish("x.bin", pseudo_random(20_000, 6)).await;
    tracker
        .remove(published["info_hash"].as_str().unwrap(), "")
        .await;
    let mut text = String::new();
    let read = async {
        while text.matches("\n\n").count() < 2 {
            let chunk = stream.next().await.expect("the stream ended").unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("two events within 30 s");
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let kind = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (kind, serde_json::from_str(data).unwrap())
        })
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0].0, "publish");
    assert_eq!(events[1].0, "remove");
    for (_, event) in &events {
        assert_eq!(event["name"], "x.bin");
        assert_eq!(event["info_hash"], published["info_hash"]);
        assert_eq!(event["size"], 20_000);
    }
}

#[tokio::test]
async fn requests_without_the_token_or_from_another_origin_are_refused() {
    let tracker = start(true).await;
    let url = format!("{}/api/publish?name=a.bin", tracker.base);
    let none = tracker.client.post(&url).body("x").send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let (status, body) = json(none).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&body).contains("Bearer"), "{body}");
    let wrong = tracker
        .client
        .post(&url)
        .bearer_auth("0123456789abcdef-test-tokem")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(json(wrong).await.0, StatusCode::UNAUTHORIZED);
    let delete = tracker
        .client
        .delete(format!("{}/api/torrents/{}", tracker.base, "ab".repeat(20)))
        .send()
        .await
        .unwrap();
    assert_eq!(json(delete).await.0, StatusCode::UNAUTHORIZED);
    assert!(tracker.data_files().is_empty(), "nothing was stored");

    // A page on another site, even with the token (no CORS).
    for (method, path) in [
        (reqwest::Method::POST, "/api/publish?name=a.bin"),
        (reqwest::Method::GET, "/torrents"),
    ] {
        let cross = tracker
            .client
            .request(method, format!("{}{path}", tracker.base))
            .header("origin", "http://evil.example")
            .bearer_auth(TOKEN)
            .body("x")
            .send()
            .await
            .unwrap();
        assert!(cross.headers().get("access-control-allow-origin").is_none());
        let (status, body) = json(cross).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_of(&body), "cross-origin requests are refused");
    }
    // The tracker's own page may.
    let own = tracker
        .client
        .post(&url)
        .header("origin", &tracker.base)
        .bearer_auth(TOKEN)
        .body(pseudo_random(1000, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn published_names_never_leave_the_data_folder() {
    let tracker = start(true).await;
    let parent = tracker.data.parent().unwrap().to_owned();
    for name in [
        "../escaped.bin",
        "..",
        "sub/escaped.bin",
        "/tmp/escaped.bin",
        "a\\b",
        "C:x",
    ] {
        let (status, body) = tracker.publish(name, b"payload".to_vec()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        assert!(
            error_of(&body).contains("outside the data folder"),
            "{body}"
        );
    }
    for name in ["", ".hidden", "nul\0byte", "line\nbreak"] {
        let (status, body) = tracker.publish(name, b"payload".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
    }
    assert!(!parent.join("escaped.bin").exists());
    assert!(!Path::new("/tmp/escaped.bin").exists());
    assert!(tracker.data_files().is_empty());
    assert!(tracker.listing().await.is_empty());
}

#[tokio::test]
async fn bad_publications_get_the_right_status_and_change_nothing() {
    let tracker = start(true).await;
    let (status, first) = tracker.publish("a.bin", pseudo_random(30_000, 8)).await;
    assert_eq!(status, StatusCode::CREATED);

    // The same name: 409, the file untouched.
    let (status, body) = tracker.publish("a.bin", pseudo_random(30_000, 9)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        std::fs::read(tracker.data.join("a.bin")).unwrap(),
        pseudo_random(30_000, 8)
    );
    // A file of that name in the data folder, not catalogued: 409, kept.
    std::fs::write(tracker.data.join("mine.txt"), b"not yours").unwrap();
    let (status, body) = tracker.publish("mine.txt", pseudo_random(30_000, 9)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        std::fs::read(tracker.data.join("mine.txt")).unwrap(),
        b"not yours"
    );
    assert_eq!(
        tracker.data_files(),
        ["a.bin", "mine.txt"],
        "no temporary file left"
    );

    // No name: 400. An empty file: 400. A malformed .torrent: 400.
    let response = tracker
        .client
        .post(format!("{}/api/publish", tracker.base))
        .bearer_auth(TOKEN)
        .body("x")
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("?name="), "{body}");
    let (status, body) = tracker.publish("empty.bin", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = tracker.publish_torrent(b"d4:infoi1ee".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_of(&body).contains("not a valid .torrent"), "{body}");

    // A .torrent over 10 MiB: 413, whether the length is declared or not.
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let (status, body) = tracker.publish_torrent(big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1 << 20).map(|c| Ok(c.to_vec())).collect();
    let response = tracker
        .client
        .post(format!("{}/api/publish", tracker.base))
        .header("content-type", "application/x-bittorrent")
        .bearer_auth(TOKEN)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(json(response).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    // Removing: a bad info-hash 400, an unknown one 404, a bad flag 400.
    let (status, _) = tracker.remove("not-hex", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = tracker.remove(&"cd".repeat(20), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let a_hash = first["info_hash"].as_str().unwrap();
    let (status, _) = tracker.remove(a_hash, "?delete_data=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Data outside the data folder is never deleted: 403, entry kept.
    let outside = tempfile::tempdir().unwrap();
    tracker
        .state
        .catalogue_mut()
        .insert(CatalogueEntry {
            name: "outside.bin".into(),
            info_hash: InfoHash([0xee; 20]),
            size: 1,
            piece_length: 16_384,
            torrent: bytes::Bytes::from_static(b"de"),
            data: Some(outside.path().to_owned()),
            published: 0,
            completed: 0,
        })
        .unwrap();
    let (status, body) = tracker.remove(&"ee".repeat(20), "?delete_data=true").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    assert_eq!(
        tracker.names().await,
        ["a.bin", "outside.bin"],
        "nothing changed"
    );
}

#[tokio::test]
async fn without_a_data_folder_only_torrents_are_published() {
    let tracker = start(false).await;
    let (status, body) = tracker.publish("a.bin", b"payload".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("--state"), "{body}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.bin"), pseudo_random(10_000, 10)).unwrap();
    let torrent = MetainfoBuilder::new(dir.path().join("t.bin"))
        .build()
        .unwrap()
        .to_bytes();
    let (status, body) = tracker.publish_torrent(torrent).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seeded"], false);
}

#[tokio::test]
async fn metrics_count_announces_scrapes_swarms_and_the_catalogue() {
    let tracker = start(true).await;
    tracker.publish("m.bin", pseudo_random(20_000, 11)).await;
    let scrape = tracker
        .get(&format!("/scrape?info_hash={}", "%01".repeat(20)))
        .await;
    assert_eq!(scrape.status(), StatusCode::OK);
    let response = tracker.get("/metrics").await;
    assert!(content_type(&response).starts_with("application/openmetrics-text"));
    let metrics = response.text().await.unwrap();
    let value = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    // The embedded seeder's `started` announce.
    assert!(value("minibit_tracker_announces_total{protocol=\"http\"}") >= 1);
    assert_eq!(value("minibit_tracker_scrapes_total{protocol=\"http\"}"), 1);
    assert_eq!(value("minibit_tracker_swarms"), 1);
    assert_eq!(value("minibit_tracker_seeders"), 1);
    assert_eq!(value("minibit_tracker_leechers"), 0);
    assert_eq!(value("minibit_tracker_catalogue_entries"), 1);
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
}

#[tokio::test]
async fn the_page_searches_and_offers_publish_and_remove_under_a_strict_policy() {
    let tracker = start(true).await;
    let (_, holiday) = tracker
        .publish("Holiday.bin", pseudo_random(10_000, 12))
        .await;
    tracker
        .publish("other.bin", pseudo_random(10_000, 13))
        .await;
    let response = tracker.get("/").await;
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Holiday.bin") && html.contains("other.bin"));
    assert!(html.contains("<form id=\"publish\""), "{html}");
    assert!(
        html.contains(&format!(
            "data-info-hash=\"{}\"",
            holiday["info_hash"].as_str().unwrap()
        )),
        "a remove button per torrent: {html}"
    );
    let found = tracker.get("/?q=holi").await.text().await.unwrap();
    assert!(
        found.contains("Holiday.bin") && !found.contains("other.bin"),
        "{found}"
    );

    let script = tracker.get("/index.js").await;
    assert!(content_type(&script).starts_with("text/javascript"));
    let script = script.text().await.unwrap();
    for needle in [
        "/api/publish?name=",
        "EventSource(\"/api/catalogue/events\")",
    ] {
        assert!(script.contains(needle), "index.js lacks {needle}");
    }
    // The token handling both programs' pages share, loaded first.
    assert!(html.contains(
        "<script src=\"/common.js\" defer></script>\n<script src=\"/index.js\" defer></script>"
    ));
    assert!(html.contains("data-token-key=\"minibit-tracker-token\""));
    let common = tracker.get("/common.js").await.text().await.unwrap();
    for needle in ["localStorage", "Authorization", "dataset.tokenKey"] {
        assert!(common.contains(needle), "common.js lacks {needle}");
    }
}
