//! The tier-walking client against HTTP trackers and dead trackers on
//! loopback.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::*;

/// An HTTP tracker on 127.0.0.1 that answers every request with `body`;
/// returns its announce URL and how many requests it answered.
async fn http_tracker(body: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(body).await.unwrap();
        }
    });
    (url, count)
}

/// An HTTP URL whose port refuses connections.
async fn closed_http() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}/announce", listener.local_addr().unwrap())
}

/// A UDP tracker that reads every datagram and never answers; returns its
/// URL and the socket (keep it alive).
async fn silent_udp() -> (String, UdpSocket) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    (
        format!("udp://{}/announce", socket.local_addr().unwrap()),
        socket,
    )
}

const ANSWER: &[u8] = b"d8:intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";

fn client(tiers: Vec<Vec<String>>) -> TrackerClient {
    client_with(Tiers::new(tiers, 3))
}

fn client_with(tiers: Tiers) -> TrackerClient {
    TrackerClient::with_tiers(
        tiers,
        InfoHash([1; 20]),
        PeerId(*b"-MB0001-abcdefghijkl"),
        6881,
        TrackerConfig {
            timeout: Duration::from_millis(600),
            udp_retransmit: Duration::from_millis(200),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn compact_peers_are_decoded() {
    let (url, _) = http_tracker(ANSWER).await;
    let response = client(vec![vec![url]])
        .announce(AnnounceEvent::Started, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(response.interval, 900);
    let peers: Vec<std::net::SocketAddr> = response.addrs().collect();
    assert_eq!(peers, ["127.0.0.1:6881".parse().unwrap()]);
}

#[tokio::test]
async fn a_failure_reason_of_the_only_tracker_is_its_own_error() {
    let (url, _) = http_tracker(b"d14:failure reason12:unregisterede").await;
    let err = client(vec![vec![url]])
        .announce(AnnounceEvent::None, 0, 0, 10)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AnnounceError::Response {
            source: TrackerResponseError::Failure(ref reason),
            ..
        } if reason == "unregistered"
    ));
}

#[tokio::test]
async fn a_dead_first_tier_falls_over_to_the_second() {
    let closed = closed_http().await;
    let (silent, silent_socket) = silent_udp().await;
    let (alive, answered) = http_tracker(ANSWER).await;
    let (spare, spare_answered) = http_tracker(ANSWER).await;
    let tracker = client(vec![
        vec![closed.clone(), silent.clone()],
        vec![alive.clone(), spare.clone()],
    ]);
    let first_of_tier_two = tracker.urls()[2].clone();
    let response = tracker
        .announce(AnnounceEvent::Started, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(response.interval, 900);
    let mut buf = [0u8; 64];
    let (len, _) = silent_socket.try_recv_from(&mut buf).unwrap();
    assert_eq!(len, 16, "the silent tracker was sent a connect");
    assert_eq!(
        answered.load(Ordering::SeqCst) + spare_answered.load(Ordering::SeqCst),
        1,
        "one tracker of tier 2 answered, the other was not asked"
    );
    assert_eq!(tracker.urls()[2], first_of_tier_two);

    // Next time tier 1 is tried again, then the tracker that answered.
    tracker
        .announce(AnnounceEvent::None, 0, 0, 10)
        .await
        .unwrap();
    let urls = tracker.urls();
    let mut tier_one = urls[..2].to_vec();
    tier_one.sort();
    let mut dead = vec![closed, silent];
    dead.sort();
    assert_eq!(tier_one, dead, "tier 1 stays first");
}

#[tokio::test]
async fn the_tracker_that_answered_moves_to_the_front_of_its_tier() {
    let closed = closed_http().await;
    let (alive, answered) = http_tracker(ANSWER).await;
    // A seed whose shuffle puts the dead one first.
    let tiers = vec![vec![closed.clone(), alive.clone()]];
    let seed = (0..1000)
        .find(|&seed| Tiers::new(tiers.clone(), seed).order().next() == Some(closed.as_str()))
        .unwrap();
    let tracker = client_with(Tiers::new(tiers, seed));
    tracker
        .announce(AnnounceEvent::Started, 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(tracker.urls(), [alive.clone(), closed]);
    let clone = tracker.clone();
    clone.announce(AnnounceEvent::None, 0, 0, 10).await.unwrap();
    assert_eq!(answered.load(Ordering::SeqCst), 2);
    assert_eq!(tracker.urls()[0], alive, "clones share the order");
}

#[tokio::test]
async fn when_every_tier_fails_each_trackers_error_is_listed() {
    let closed = closed_http().await;
    let (silent, _socket) = silent_udp().await;
    let tracker = client(vec![
        vec![closed.clone()],
        vec![silent.clone()],
        vec![
            "wss://tracker.example/announce".to_owned(),
            "udp://no-port.example/announce".to_owned(),
        ],
    ]);
    let err = tracker
        .announce(AnnounceEvent::Started, 0, 0, 10)
        .await
        .unwrap_err();
    let AnnounceError::AllFailed(ref all) = err else {
        panic!("{err:?}")
    };
    assert_eq!(all.len(), 4);
    let failures = err.failures();
    let urls: Vec<&str> = failures.iter().map(|(u, _)| *u).collect();
    assert_eq!(urls[..2], [closed.as_str(), &silent]);
    assert!(failures[1].1.contains("no answer after"), "{failures:?}");
    // The last tier is shuffled: find each of its trackers.
    let cause = |url: &str| &failures.iter().find(|(u, _)| *u == url).unwrap().1;
    assert_eq!(
        cause("wss://tracker.example/announce"),
        "unsupported scheme"
    );
    assert!(
        cause("udp://no-port.example/announce").starts_with("not a UDP tracker URL"),
        "{failures:?}"
    );
    assert!(
        err.to_string().starts_with("no tracker answered: http://"),
        "{err}"
    );
}
