//! The tracker over real HTTP on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{
    AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse, ScrapeStats,
    TrackerResponseError,
};
use minibit_core::wire::PeerId;
use minibit_tracker::{RegistryConfig, TrackerState, serve};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A tracker on an ephemeral loopback port: its base URL and state.
async fn start() -> (String, Arc<TrackerState>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(TrackerState::new(RegistryConfig::default()));
    tokio::spawn(serve(listener, Arc::clone(&state), std::future::pending()));
    (format!("http://{addr}"), state)
}

fn request(info_hash: InfoHash, peer: u8, port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest {
        info_hash,
        peer_id: PeerId([peer; 20]),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: None,
        ip: None,
        key: None,
    }
}

async fn get(url: &str) -> reqwest::Response {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp
}

async fn announce_raw(base: &str, query: &str) -> Result<AnnounceResponse, TrackerResponseError> {
    let body = get(&format!("{base}/announce?{query}"))
        .await
        .bytes()
        .await
        .unwrap();
    AnnounceResponse::decode(&body)
}

async fn announce(base: &str, req: &AnnounceRequest) -> AnnounceResponse {
    announce_raw(base, &req.to_query()).await.unwrap()
}

#[tokio::test]
async fn announce_compact_and_dictionary_forms() {
    let (base, _state) = start().await;
    let hash = InfoHash([1; 20]);
    let first = announce(&base, &request(hash, b'a', 7001, 100)).await;
    assert!(first.peers.is_empty());
    assert_eq!((first.complete, first.incomplete), (0, 1));

    let compact = announce(&base, &request(hash, b'b', 7002, 0)).await;
    let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    assert_eq!(compact.addrs().collect::<Vec<_>>(), [a]);
    assert_eq!(
        compact.peers[0].peer_id, None,
        "compact form carries no peer id"
    );
    assert_eq!((compact.complete, compact.incomplete), (1, 1));

    let mut dict_req = request(hash, b'c', 7003, 50);
    dict_req.compact = false;
    let body = get(&format!("{base}/announce?{}", dict_req.to_query()))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(body.windows(7).any(|w| w == b"peer id"), "dictionary form");
    let dict = AnnounceResponse::decode(&body).unwrap();
    let mut got: Vec<_> = dict
        .peers
        .iter()
        .map(|p| (p.addr.port(), p.peer_id))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (7001, Some(PeerId([b'a'; 20]))),
            (7002, Some(PeerId([b'b'; 20])))
        ]
    );
}

#[tokio::test]
async fn bad_parameters_get_a_failure_reason() {
    let (base, _state) = start().await;
    let good = request(InfoHash([2; 20]), b'a', 7001, 1).to_query();
    let without_hash: String = good
        .split('&')
        .filter(|p| !p.starts_with("info_hash="))
        .collect::<Vec<_>>()
        .join("&");
    let cases = [
        (without_hash.clone(), "missing parameter `info_hash`"),
        (
            format!("info_hash={}&{without_hash}", "%01".repeat(19)),
            "parameter `info_hash` must be 20 bytes, got 19",
        ),
        (
            good.replace("port=7001", "port=0"),
            "parameter `port` must be between 1 and 65535",
        ),
        (
            good.replace("left=1", "left=lots"),
            "parameter `left` is not a valid number: \"lots\"",
        ),
        (
            good.replace("event=started", "event=paused"),
            "unknown event \"paused\"",
        ),
        (String::new(), "missing parameter `info_hash`"),
    ];
    for (query, reason) in cases {
        assert_eq!(
            announce_raw(&base, &query).await,
            Err(TrackerResponseError::Failure(reason.into())),
            "{query}"
        );
    }
}

#[tokio::test]
async fn numwant_is_capped_not_refused() {
    let (base, state) = start().await;
    let hash = InfoHash([3; 20]);
    {
        let mut registry = state.registry();
        for port in 1..=250u16 {
            let mut req = request(hash, 0, port, 1);
            req.peer_id.0[..2].copy_from_slice(&port.to_be_bytes());
            registry.announce(Instant::now(), &req, LOCALHOST);
        }
    }
    let mut req = request(hash, b'z', 9000, 1);
    req.numwant = Some(1_000_000);
    assert_eq!(announce(&base, &req).await.peers.len(), 200);
    req.numwant = None;
    assert_eq!(announce(&base, &req).await.peers.len(), 50);
}

#[tokio::test]
async fn scrape_counts_seeders_leechers_and_completions() {
    let (base, _state) = start().await;
    let (hash, other) = (InfoHash([4; 20]), InfoHash([5; 20]));
    announce(&base, &request(hash, b'a', 7001, 0)).await;
    announce(&base, &request(hash, b'b', 7002, 10)).await;
    let mut done = request(hash, b'c', 7003, 0);
    done.event = AnnounceEvent::Completed;
    announce(&base, &done).await;
    announce(&base, &request(other, b'a', 7001, 10)).await;

    let query = ScrapeRequest {
        info_hashes: vec![hash, other],
    }
    .to_query();
    let body = get(&format!("{base}/scrape?{query}"))
        .await
        .bytes()
        .await
        .unwrap();
    let scrape = ScrapeResponse::decode(&body).unwrap();
    assert_eq!(
        scrape.files[&hash],
        ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 1
        }
    );
    assert_eq!(
        scrape.files[&other],
        ScrapeStats {
            complete: 0,
            downloaded: 0,
            incomplete: 1
        }
    );

    let body = get(&format!("{base}/scrape")).await.bytes().await.unwrap();
    assert_eq!(
        ScrapeResponse::decode(&body),
        Err(TrackerResponseError::Failure(
            "missing parameter `info_hash`".into()
        ))
    );
}

#[tokio::test]
async fn catalogue_lists_searches_and_serves_torrents() {
    let (base, state) = start().await;
    let photos = InfoHash([6; 20]);
    {
        let mut catalogue = state.catalogue_mut();
        catalogue
            .add(
                "Holiday Photos",
                photos,
                5_000_000,
                262_144,
                &b"d8:announce4:httpe"[..],
            )
            .unwrap();
        catalogue
            .add("debian.iso", InfoHash([7; 20]), 700, 16_384, &b"de"[..])
            .unwrap();
    }
    announce(&base, &request(photos, b'a', 7001, 0)).await;
    announce(&base, &request(photos, b'b', 7002, 9)).await;

    let listing: serde_json::Value = serde_json::from_slice(
        &get(&format!("{base}/torrents?q=PHOTO"))
            .await
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        listing,
        serde_json::json!([{
            "name": "Holiday Photos",
            "info_hash": "06".repeat(20),
            "size": 5_000_000,
            "piece_length": 262_144,
            "seeders": 1,
            "leechers": 1,
            "completed": 0,
            "announces_per_minute": 2.0,
            "magnet": null,
        }])
    );
    let all: Vec<serde_json::Value> = serde_json::from_slice(
        &get(&format!("{base}/torrents"))
            .await
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(all.len(), 2);

    let resp = get(&format!("{base}/torrents/Holiday%20Photos.torrent")).await;
    assert_eq!(resp.headers()["content-type"], "application/x-bittorrent");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"d8:announce4:httpe");

    for missing in [
        "nope.torrent",
        "Holiday%20Photos",
        "debian.iso.torrent.torrent",
    ] {
        let resp = reqwest::get(format!("{base}/torrents/{missing}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{missing}");
    }
}
