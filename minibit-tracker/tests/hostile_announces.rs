//! Hostile announces to the tracker over real HTTP on loopback (what
//! `http.rs` does not already cover): over-long or garbled parameters get
//! a `failure reason`, and a burst of 1 000 concurrent announces is
//! answered with bounded responses, bounded state, and stale peers expired.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse, TrackerResponseError};
use minibit_core::wire::PeerId;
use minibit_tracker::{RegistryConfig, TrackerState, serve};

async fn start(config: RegistryConfig) -> (String, Arc<TrackerState>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let state = Arc::new(TrackerState::new(config));
    tokio::spawn(serve(listener, Arc::clone(&state), std::future::pending()));
    (format!("http://{addr}"), state)
}

fn request(info_hash: InfoHash, peer: u32, port: u16) -> AnnounceRequest {
    let mut peer_id = [b'p'; 20];
    peer_id[..4].copy_from_slice(&peer.to_be_bytes());
    AnnounceRequest {
        info_hash,
        peer_id: PeerId(peer_id),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: None,
        ip: None,
        key: None,
    }
}

async fn announce_raw(
    client: &reqwest::Client,
    base: &str,
    query: &str,
) -> Result<AnnounceResponse, TrackerResponseError> {
    let resp = client
        .get(format!("{base}/announce?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{query}");
    AnnounceResponse::decode(&resp.bytes().await.unwrap())
}

#[tokio::test]
async fn garbled_parameters_get_a_failure_reason() {
    let (base, state) = start(RegistryConfig::default()).await;
    let client = reqwest::Client::new();
    let good = request(InfoHash([2; 20]), 1, 7001).to_query();
    let hash = format!("info_hash={}", "%02".repeat(20));
    let cases = [
        // An info-hash of 21 bytes.
        (good.replace(&hash, &format!("{hash}%02")), "info_hash"),
        // A peer id of 19 bytes.
        (
            good.split('&')
                .map(|p| {
                    if p.starts_with("peer_id=") {
                        "peer_id=%01%02%03%04%05%06%07%08%09%10%11%12%13%14%15%16%17%18%19"
                    } else {
                        p
                    }
                })
                .collect::<Vec<_>>()
                .join("&"),
            "peer_id",
        ),
        (good.replace("port=7001", "port=70000"), "port"),
        (good.replace("port=7001", "port=-1"), "port"),
        (format!("{good}&numwant=-5"), "numwant"),
        (format!("{good}&numwant=lots"), "numwant"),
        (
            good.replace("left=1", "left=99999999999999999999999"),
            "left",
        ),
        (good.replace(&hash, "info_hash=%zz%zz"), "info_hash"),
    ];
    for (query, parameter) in cases {
        match announce_raw(&client, &base, &query).await {
            Err(TrackerResponseError::Failure(reason)) => {
                assert!(reason.contains(parameter), "{query}: {reason}");
            }
            other => panic!("{query}: accepted as {other:?}"),
        }
    }
    assert_eq!(state.registry().stats(&InfoHash([2; 20])).incomplete, 0);
}

#[tokio::test]
async fn a_huge_query_is_refused_and_the_tracker_goes_on() {
    let (base, _state) = start(RegistryConfig::default()).await;
    let client = reqwest::Client::new();
    let huge = format!(
        "{}&junk={}",
        request(InfoHash([3; 20]), 1, 7001).to_query(),
        "x".repeat(1 << 20)
    );
    let refused = client.get(format!("{base}/announce?{huge}")).send().await;
    if let Ok(resp) = refused {
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        assert!(body.len() < 64 * 1024, "a {}-byte answer", body.len());
        assert!(
            status != 200 || AnnounceResponse::decode(&body).is_err(),
            "accepted"
        );
    }
    let ok = announce_raw(
        &client,
        &base,
        &request(InfoHash([3; 20]), 2, 7002).to_query(),
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_announces_are_answered_bounded_and_expire() {
    let config = RegistryConfig {
        interval: Duration::from_secs(1),
        min_interval: None,
        expiry_slack: Duration::ZERO,
        max_peers_per_swarm: 300,
        ..RegistryConfig::default()
    };
    let (base, state) = start(config).await;
    let hash = InfoHash([4; 20]);
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for peer in 0..1_000u32 {
        let (client, base) = (client.clone(), base.clone());
        tasks.spawn(async move {
            let mut req = request(hash, peer, 10_000 + u16::try_from(peer).unwrap());
            req.numwant = Some(1_000_000);
            announce_raw(&client, &base, &req.to_query()).await
        });
    }
    let mut answered = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap().expect("an announce failed");
        assert!(
            answer.peers.len() <= 200,
            "{} peers returned",
            answer.peers.len()
        );
        answered += 1;
    }
    assert_eq!(answered, 1_000);
    let stats = state.registry().stats(&hash);
    assert!(stats.incomplete <= 300, "{} peers kept", stats.incomplete);
    assert!(stats.incomplete > 0);
    // Peers not heard from for 2 × interval are gone.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let late = announce_raw(&client, &base, &request(hash, 5_000, 9_000).to_query())
        .await
        .unwrap();
    assert!(
        late.peers.is_empty(),
        "{} stale peers returned",
        late.peers.len()
    );
    assert_eq!(state.registry().stats(&hash).incomplete, 1);
}
