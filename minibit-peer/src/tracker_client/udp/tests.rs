//! The UDP tracker client against scripted trackers on loopback.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex as StdMutex};

use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::udp::UdpPeers;
use minibit_core::wire::PeerId;

use super::*;

/// Retransmission base of the tests.
const BASE: Duration = Duration::from_millis(200);

/// What the scripted tracker received, in order, with when.
type Log = Arc<StdMutex<Vec<(Request, Instant)>>>;

/// A tracker on `bind` that answers each request with what `answer` returns
/// (nothing: the request is dropped). Returns its URL and what it received.
async fn tracker(
    bind: &str,
    mut answer: impl FnMut(&Request, usize) -> Option<Vec<u8>> + Send + 'static,
) -> (String, Log) {
    let socket = UdpSocket::bind(bind).await.unwrap();
    let url = format!("udp://{}/announce", socket.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let (len, from) = socket.recv_from(&mut buf).await.unwrap();
            let request = Request::decode(&buf[..len]).expect("a valid request");
            let count = {
                let mut seen = seen.lock().unwrap();
                seen.push((request.clone(), Instant::now()));
                seen.len()
            };
            if let Some(reply) = answer(&request, count) {
                socket.send_to(&reply, from).await.unwrap();
            }
        }
    });
    (url, log)
}

fn config(timeout_ms: u64) -> UdpConfig {
    UdpConfig {
        retransmit: BASE,
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn request() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([7; 20]),
        peer_id: PeerId(*b"-MB0001-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: Some(50),
        ip: None,
        key: None,
    }
}

const CONNECTION_ID: u64 = 0x1122_3344_5566_7788;

/// An honest tracker: connection id [`CONNECTION_ID`], announces answered
/// with `peers`, scrapes with counts 1, 2, 3 per info-hash.
fn honest(peers: UdpPeers) -> impl FnMut(&Request, usize) -> Option<Vec<u8>> + Send + 'static {
    move |request, _| {
        let response = match request {
            Request::Connect { transaction_id } => Response::Connect {
                transaction_id: *transaction_id,
                connection_id: CONNECTION_ID,
            },
            Request::Announce(a) => {
                assert_eq!(a.connection_id, CONNECTION_ID, "the id of the connect");
                Response::Announce {
                    transaction_id: a.transaction_id,
                    interval: 900,
                    leechers: 4,
                    seeders: 5,
                    peers: peers.clone(),
                }
            }
            Request::Scrape {
                transaction_id,
                info_hashes,
                ..
            } => Response::Scrape {
                transaction_id: *transaction_id,
                stats: info_hashes
                    .iter()
                    .map(|_| UdpScrapeStats {
                        seeders: 1,
                        completed: 2,
                        leechers: 3,
                    })
                    .collect(),
            },
        };
        Some(response.encode())
    }
}

fn kinds(log: &Log) -> Vec<&'static str> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(r, _)| match r {
            Request::Connect { .. } => "connect",
            Request::Announce(_) => "announce",
            Request::Scrape { .. } => "scrape",
        })
        .collect()
}

#[tokio::test]
async fn announce_connects_once_and_reuses_the_connection_id() {
    let peer: SocketAddrV4 = "10.0.0.1:6881".parse().unwrap();
    let (url, log) = tracker("127.0.0.1:0", honest(UdpPeers::V4(vec![peer]))).await;
    let udp = UdpTracker::new(&url, config(5_000)).unwrap();
    let response = udp.announce(&request(), 0xfeed).await.unwrap();
    assert_eq!(response.interval, 900);
    assert_eq!((response.complete, response.incomplete), (5, 4));
    assert_eq!(response.addrs().collect::<Vec<_>>(), [SocketAddr::V4(peer)]);
    udp.announce(&request(), 0xfeed).await.unwrap();
    let stats = udp
        .scrape(&[InfoHash([1; 20]), InfoHash([2; 20])])
        .await
        .unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (stats[1].seeders, stats[1].completed, stats[1].leechers),
        (1, 2, 3)
    );
    assert_eq!(kinds(&log), ["connect", "announce", "announce", "scrape"]);
    let log = log.lock().unwrap();
    let Request::Announce(sent) = &log[1].0 else {
        panic!("an announce")
    };
    assert_eq!(
        (sent.key, sent.port, sent.num_want),
        (0xfeed, 6881, Some(50))
    );
    assert_eq!((sent.uploaded, sent.downloaded, sent.left), (1, 2, 3));
    assert_eq!(sent.event, AnnounceEvent::Started);
}

#[tokio::test]
async fn ipv6_trackers_answer_with_ipv6_peers() {
    let peer: SocketAddrV6 = "[2001:db8::1]:51413".parse().unwrap();
    let (url, _) = tracker("[::1]:0", honest(UdpPeers::V6(vec![peer]))).await;
    assert!(url.starts_with("udp://[::1]:"), "{url}");
    let udp = UdpTracker::new(&url, config(5_000)).unwrap();
    let response = udp.announce(&request(), 1).await.unwrap();
    assert_eq!(response.addrs().collect::<Vec<_>>(), [SocketAddr::V6(peer)]);
}

#[tokio::test]
async fn a_lost_request_is_sent_again_after_the_base_then_twice_the_base() {
    let mut honest = honest(UdpPeers::V4(Vec::new()));
    // The first two connects are lost.
    let (url, log) = tracker(
        "127.0.0.1:0",
        move |r, n| {
            if n <= 2 { None } else { honest(r, n) }
        },
    )
    .await;
    let udp = UdpTracker::new(&url, config(10_000)).unwrap();
    udp.announce(&request(), 1).await.unwrap();
    assert_eq!(kinds(&log), ["connect", "connect", "connect", "announce"]);
    let log = log.lock().unwrap();
    let transaction = |i: usize| log[i].0.transaction_id();
    assert_eq!(
        transaction(0),
        transaction(2),
        "the same request, sent again"
    );
    assert!(log[1].1 - log[0].1 >= BASE, "{:?}", log[1].1 - log[0].1);
    assert!(log[2].1 - log[1].1 >= BASE * 2, "{:?}", log[2].1 - log[1].1);
}

#[tokio::test]
async fn a_silent_tracker_is_given_up_at_the_timeout_and_the_id_forgotten() {
    let mut honest = honest(UdpPeers::V4(Vec::new()));
    // Connects are answered; the first announce (all its sendings) is not.
    let (url, log) = tracker("127.0.0.1:0", move |r, n| match r {
        Request::Announce(_) if n <= 4 => None,
        _ => honest(r, n),
    })
    .await;
    let udp = UdpTracker::new(&url, config(1_000)).unwrap();
    let error = udp.announce(&request(), 1).await.unwrap_err();
    let UdpError::NoAnswer { sends, ignored, .. } = error else {
        panic!("{error:?}")
    };
    // 0, 200, 600 ms: the next would be at 1400 ms, past the timeout.
    assert_eq!((sends, ignored), (3, 0));
    udp.announce(&request(), 1).await.unwrap();
    assert_eq!(
        kinds(&log),
        [
            "connect", "announce", "announce", "announce", "connect", "announce"
        ],
        "a new connect after an unanswered announce"
    );
}

/// Announces to a tracker that answers the connect honestly and the
/// announce with `reply(transaction id)`.
async fn announce_answered_with(reply: fn(u32) -> Vec<u8>) -> UdpError {
    let mut honest = honest(UdpPeers::V4(Vec::new()));
    let (url, _) = tracker("127.0.0.1:0", move |r, n| match r {
        Request::Announce(a) => Some(reply(a.transaction_id)),
        _ => honest(r, n),
    })
    .await;
    let udp = UdpTracker::new(&url, config(1_000)).unwrap();
    udp.announce(&request(), 1).await.unwrap_err()
}

#[tokio::test]
async fn hostile_answers_are_typed_errors() {
    let error = announce_answered_with(|_| vec![0, 0, 0, 1, 0]).await;
    assert!(
        matches!(
            error,
            UdpError::Malformed(UdpTrackerError::Truncated { .. })
        ),
        "{error:?}"
    );
    let error = announce_answered_with(|t| {
        let mut p = Response::Announce {
            transaction_id: t,
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: UdpPeers::V4(Vec::new()),
        }
        .encode();
        p.extend_from_slice(&[1, 2, 3]);
        p
    })
    .await;
    assert!(
        matches!(
            error,
            UdpError::Malformed(UdpTrackerError::PartialEntry { .. })
        ),
        "{error:?}"
    );
    let error = announce_answered_with(|t| {
        let mut p = 9u32.to_be_bytes().to_vec();
        p.extend_from_slice(&t.to_be_bytes());
        p
    })
    .await;
    assert!(
        matches!(
            error,
            UdpError::Malformed(UdpTrackerError::UnknownAction(9))
        ),
        "{error:?}"
    );
    let error = announce_answered_with(|t| {
        Response::Connect {
            transaction_id: t,
            connection_id: 1,
        }
        .encode()
    })
    .await;
    assert!(
        matches!(
            error,
            UdpError::WrongAction {
                asked: "announce",
                got: "connect"
            }
        ),
        "{error:?}"
    );
    let error = announce_answered_with(|t| {
        Response::Error {
            transaction_id: t,
            message: "torrent not registered".into(),
        }
        .encode()
    })
    .await;
    assert_eq!(error.to_string(), "tracker error: torrent not registered");
    let error = announce_answered_with(|t| {
        Response::Error {
            transaction_id: t.wrapping_add(1),
            message: "not yours".into(),
        }
        .encode()
    })
    .await;
    assert!(
        matches!(error, UdpError::NoAnswer { ignored, .. } if ignored >= 1),
        "another transaction id is not an answer: {error:?}"
    );
}

#[tokio::test]
async fn a_closed_port_fails_at_once_and_bad_urls_are_refused() {
    let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", closed.local_addr().unwrap());
    drop(closed);
    let udp = UdpTracker::new(&url, config(30_000)).unwrap();
    let error = udp.announce(&request(), 1).await.unwrap_err();
    assert!(
        matches!(error, UdpError::Io(_)),
        "refused, not timed out: {error:?}"
    );
    for bad in [
        "http://a:1/announce",
        "udp://a/announce",
        "udp://:80",
        "udp",
    ] {
        assert!(
            matches!(UdpTracker::new(bad, config(1)), Err(UdpError::BadUrl)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_scrape_answer_must_hold_one_entry_per_info_hash() {
    let mut honest = honest(UdpPeers::V4(Vec::new()));
    let (url, _) = tracker("127.0.0.1:0", move |r, n| match r {
        Request::Scrape { transaction_id, .. } => Some(
            Response::Scrape {
                transaction_id: *transaction_id,
                stats: vec![UdpScrapeStats::default()],
            }
            .encode(),
        ),
        _ => honest(r, n),
    })
    .await;
    let udp = UdpTracker::new(&url, config(2_000)).unwrap();
    let error = udp
        .scrape(&[InfoHash([1; 20]), InfoHash([2; 20])])
        .await
        .unwrap_err();
    assert!(
        matches!(error, UdpError::WrongCount { asked: 2, got: 1 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_from_another_address_is_never_taken() {
    // The tracker stays silent; another socket answers each request, with
    // the right transaction id, from its own address.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let spoofed = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        let mut sent = 0;
        while let Ok(Ok((len, from))) =
            tokio::time::timeout(Duration::from_secs(2), silent.recv_from(&mut buf)).await
        {
            let request = Request::decode(&buf[..len]).unwrap();
            let answer = Response::Connect {
                transaction_id: request.transaction_id(),
                connection_id: CONNECTION_ID,
            };
            spoofer.send_to(&answer.encode(), from).await.unwrap();
            sent += 1;
        }
        sent
    });
    let udp = UdpTracker::new(&url, config(1_000)).unwrap();
    let error = udp.announce(&request(), 1).await.unwrap_err();
    assert!(
        matches!(error, UdpError::NoAnswer { ignored: 0, .. }),
        "{error:?}"
    );
    assert!(spoofed.await.unwrap() >= 1, "the spoofer answered");
}
