use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;

/// An announce request laid out by hand from the BEP 15 table.
fn announce_bytes(event: u32, num_want: i32, port: u16) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0x1122_3344_5566_7788_u64.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
    p.extend_from_slice(&[0xaa; 20]);
    p.extend_from_slice(&[0xbb; 20]);
    p.extend_from_slice(&1000u64.to_be_bytes());
    p.extend_from_slice(&2000u64.to_be_bytes());
    p.extend_from_slice(&3000u64.to_be_bytes());
    p.extend_from_slice(&event.to_be_bytes());
    p.extend_from_slice(&[10, 0, 0, 7]);
    p.extend_from_slice(&0x0102_0304_u32.to_be_bytes());
    p.extend_from_slice(&num_want.to_be_bytes());
    p.extend_from_slice(&port.to_be_bytes());
    p
}

#[test]
fn connect_request_is_the_bep15_layout() {
    let bytes = Request::Connect {
        transaction_id: 0x0a0b_0c0d,
    }
    .encode();
    assert_eq!(
        bytes,
        [
            0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d
        ]
    );
    assert_eq!(
        Request::decode(&bytes),
        Ok(Request::Connect {
            transaction_id: 0x0a0b_0c0d
        })
    );
}

#[test]
fn announce_request_fields_come_from_their_offsets() {
    let bytes = announce_bytes(2, -1, 6881);
    assert_eq!(bytes.len(), ANNOUNCE_REQUEST_LEN);
    let Ok(Request::Announce(a)) = Request::decode(&bytes) else {
        panic!("not an announce: {:?}", Request::decode(&bytes));
    };
    assert_eq!(a.connection_id, 0x1122_3344_5566_7788);
    assert_eq!(a.transaction_id, 0xdead_beef);
    assert_eq!(a.info_hash, InfoHash([0xaa; 20]));
    assert_eq!(a.peer_id, PeerId([0xbb; 20]));
    assert_eq!((a.downloaded, a.left, a.uploaded), (1000, 2000, 3000));
    assert_eq!(a.event, AnnounceEvent::Started);
    assert_eq!(a.ip, Some(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(a.key, 0x0102_0304);
    assert_eq!(a.num_want, None);
    assert_eq!(a.port, 6881);
    assert_eq!(Request::Announce(a).encode(), bytes);
}

#[test]
fn announce_events_map_to_bep15_codes() {
    for (code, event) in [
        (0, AnnounceEvent::None),
        (1, AnnounceEvent::Completed),
        (2, AnnounceEvent::Started),
        (3, AnnounceEvent::Stopped),
    ] {
        let Ok(Request::Announce(a)) = Request::decode(&announce_bytes(code, 5, 1)) else {
            panic!("event {code} refused");
        };
        assert_eq!(a.event, event);
        assert_eq!(a.num_want, Some(5));
    }
    assert_eq!(
        Request::decode(&announce_bytes(4, 5, 1)),
        Err(UdpTrackerError::UnknownEvent(4))
    );
}

#[test]
fn announce_options_after_98_bytes_are_ignored() {
    let mut bytes = announce_bytes(0, 50, 1);
    let plain = Request::decode(&bytes);
    bytes.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
    assert_eq!(Request::decode(&bytes), plain);
}

#[test]
fn announce_from_port_zero_is_refused() {
    assert_eq!(
        Request::decode(&announce_bytes(0, -1, 0)),
        Err(UdpTrackerError::PortZero)
    );
}

#[test]
fn truncated_requests_are_refused() {
    let connect = Request::Connect { transaction_id: 1 }.encode();
    for n in 0..connect.len() {
        assert_eq!(
            Request::decode(&connect[..n]),
            Err(UdpTrackerError::Truncated { need: 16, got: n })
        );
    }
    let announce = announce_bytes(0, -1, 1);
    for n in 16..announce.len() {
        assert_eq!(
            Request::decode(&announce[..n]),
            Err(UdpTrackerError::Truncated { need: 98, got: n })
        );
    }
}

#[test]
fn connect_without_the_protocol_id_or_unknown_actions_are_refused() {
    let mut p = Request::Connect { transaction_id: 1 }.encode();
    p[7] ^= 1;
    assert_eq!(
        Request::decode(&p),
        Err(UdpTrackerError::NotTheProtocol(PROTOCOL_ID ^ 1))
    );
    let mut p = Request::Connect { transaction_id: 1 }.encode();
    p[11] = 3;
    assert_eq!(Request::decode(&p), Err(UdpTrackerError::UnknownAction(3)));
}

#[test]
fn scrape_requests_hold_1_to_74_whole_hashes() {
    let scrape = |n: usize| Request::Scrape {
        connection_id: 9,
        transaction_id: 8,
        info_hashes: (0..n).map(|i| InfoHash([i as u8; 20])).collect(),
    };
    let full = scrape(MAX_SCRAPE_HASHES).encode();
    assert_eq!(full.len(), 16 + 74 * 20);
    assert_eq!(Request::decode(&full), Ok(scrape(MAX_SCRAPE_HASHES)));
    assert_eq!(
        Request::decode(&scrape(0).encode()),
        Err(UdpTrackerError::NoHashes)
    );
    let mut over = full.clone();
    over.extend_from_slice(&[0; 20]);
    assert_eq!(Request::decode(&over), Err(UdpTrackerError::TooMany(75)));
    assert_eq!(
        Request::decode(&full[..full.len() - 1]),
        Err(UdpTrackerError::PartialEntry {
            entry: 20,
            len: 74 * 20 - 1
        })
    );
}

#[test]
fn announce_response_decodes_ipv4_and_ipv6_peers_by_family() {
    let mut p = vec![0, 0, 0, 1, 0, 0, 0, 7];
    for n in [1800u32, 3, 4] {
        p.extend_from_slice(&n.to_be_bytes());
    }
    let header = p.clone();
    p.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
    p.extend_from_slice(&[10, 1, 2, 3, 0, 80]);
    assert_eq!(
        Response::decode(&p, Family::V4),
        Ok(Response::Announce {
            transaction_id: 7,
            interval: 1800,
            leechers: 3,
            seeders: 4,
            peers: UdpPeers::V4(vec![
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6881),
                SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 80),
            ]),
        })
    );
    // 12 bytes of peers are two IPv4 peers but no whole IPv6 peer.
    assert_eq!(
        Response::decode(&p, Family::V6),
        Err(UdpTrackerError::PartialEntry { entry: 18, len: 12 })
    );
    let mut p6 = header;
    p6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    p6.extend_from_slice(&6881u16.to_be_bytes());
    let Ok(Response::Announce { peers, .. }) = Response::decode(&p6, Family::V6) else {
        panic!("IPv6 answer refused");
    };
    assert_eq!(
        peers.addrs(),
        [SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 6881)]
    );
}

#[test]
fn responses_never_exceed_one_unfragmented_datagram() {
    assert_eq!(max_peers(Family::V4), 242);
    assert_eq!(max_peers(Family::V6), 79);
    let many = (0..1000u16).map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), i + 1));
    let peers = UdpPeers::select(Family::V4, many);
    assert_eq!(peers.len(), 242);
    let v4 = Response::Announce {
        transaction_id: 0,
        interval: 0,
        leechers: 0,
        seeders: 0,
        peers,
    }
    .encode();
    assert!(v4.len() <= 1472, "{} bytes", v4.len());
    let many6 = (0..1000u16).map(|i| SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), i + 1));
    let v6 = Response::Announce {
        transaction_id: 0,
        interval: 0,
        leechers: 0,
        seeders: 0,
        peers: UdpPeers::V6(
            many6
                .filter_map(|a| match a {
                    SocketAddr::V6(a) => Some(a),
                    SocketAddr::V4(_) => None,
                })
                .collect(),
        ),
    }
    .encode();
    assert_eq!(v6.len(), 20 + 79 * 18);
    assert!(v6.len() <= 1452);
    let error = Response::Error {
        transaction_id: 0,
        message: "é".repeat(MAX_ERROR_MESSAGE),
    }
    .encode();
    assert_eq!(error.len(), 8 + MAX_ERROR_MESSAGE);
    assert!(std::str::from_utf8(&error[8..]).is_ok());
}

#[test]
fn select_keeps_only_the_family_of_the_request() {
    let mixed = [
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 1),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2),
    ];
    assert_eq!(UdpPeers::select(Family::V4, mixed).addrs(), [mixed[1]]);
    assert_eq!(UdpPeers::select(Family::V6, mixed).addrs(), [mixed[0]]);
}

#[test]
fn truncated_or_unknown_responses_are_refused() {
    assert_eq!(
        Response::decode(&[0, 0, 0, 0, 0, 0, 0], Family::V4),
        Err(UdpTrackerError::Truncated { need: 8, got: 7 })
    );
    assert_eq!(
        Response::decode(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0], Family::V4),
        Err(UdpTrackerError::Truncated { need: 16, got: 10 })
    );
    assert_eq!(
        Response::decode(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0], Family::V4),
        Err(UdpTrackerError::Truncated { need: 20, got: 10 })
    );
    assert_eq!(
        Response::decode(&[0, 0, 0, 9, 0, 0, 0, 1], Family::V4),
        Err(UdpTrackerError::UnknownAction(9))
    );
    assert_eq!(
        Response::decode(&[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0], Family::V4),
        Err(UdpTrackerError::PartialEntry { entry: 12, len: 3 })
    );
    let mut long_error = vec![0, 0, 0, 3, 0, 0, 0, 1];
    long_error.resize(8 + MAX_ERROR_MESSAGE + 1, b'x');
    assert_eq!(
        Response::decode(&long_error, Family::V4),
        Err(UdpTrackerError::MessageTooLong(MAX_ERROR_MESSAGE + 1))
    );
    // Invalid UTF-8 grows threefold when decoded lossily: still capped.
    let mut binary_error = vec![0, 0, 0, 3, 0, 0, 0, 1];
    binary_error.resize(8 + MAX_ERROR_MESSAGE, 0xff);
    let Ok(Response::Error { message, .. }) = Response::decode(&binary_error, Family::V4) else {
        panic!("binary error message refused");
    };
    assert!(message.len() <= MAX_ERROR_MESSAGE && message.starts_with('\u{fffd}'));
}

#[test]
fn to_announce_request_bounds_num_want_by_the_datagram() {
    let Ok(Request::Announce(a)) = Request::decode(&announce_bytes(2, -1, 6881)) else {
        panic!("refused");
    };
    let http = a.to_announce_request(Family::V6);
    assert_eq!(http.numwant, Some(79));
    assert_eq!(http.ip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))));
    assert_eq!(http.key.as_deref(), Some(&[1, 2, 3, 4][..]));
    assert!(http.compact);
    let few = UdpAnnounce {
        num_want: Some(5),
        ..a.clone()
    };
    assert_eq!(few.to_announce_request(Family::V4).numwant, Some(5));
    let greedy = UdpAnnounce {
        num_want: Some(100_000),
        ..a
    };
    assert_eq!(greedy.to_announce_request(Family::V4).numwant, Some(242));
}

fn arb_event() -> impl Strategy<Value = AnnounceEvent> {
    prop_oneof![
        Just(AnnounceEvent::None),
        Just(AnnounceEvent::Started),
        Just(AnnounceEvent::Completed),
        Just(AnnounceEvent::Stopped),
    ]
}

fn arb_request() -> impl Strategy<Value = Request> {
    let announce = (
        (
            any::<u64>(),
            any::<u32>(),
            any::<[u8; 20]>(),
            any::<[u8; 20]>(),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>(), arb_event()),
        (
            proptest::option::of(
                any::<Ipv4Addr>().prop_filter("0 means none", |ip| !ip.is_unspecified()),
            ),
            any::<u32>(),
            proptest::option::of(0..=i32::MAX as u32),
            1..=u16::MAX,
        ),
    )
        .prop_map(
            |(
                (connection_id, transaction_id, h, id),
                (downloaded, left, uploaded, event),
                (ip, key, num_want, port),
            )| {
                Request::Announce(UdpAnnounce {
                    connection_id,
                    transaction_id,
                    info_hash: InfoHash(h),
                    peer_id: PeerId(id),
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip,
                    key,
                    num_want,
                    port,
                })
            },
        );
    prop_oneof![
        any::<u32>().prop_map(|transaction_id| Request::Connect { transaction_id }),
        announce,
        (
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<[u8; 20]>().prop_map(InfoHash), 1..=MAX_SCRAPE_HASHES)
        )
            .prop_map(
                |(connection_id, transaction_id, info_hashes)| Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes
                }
            ),
    ]
}

fn arb_peers() -> impl Strategy<Value = UdpPeers> {
    prop_oneof![
        proptest::collection::vec(any::<SocketAddrV4>(), 0..=max_peers(Family::V4))
            .prop_map(UdpPeers::V4),
        proptest::collection::vec(
            (any::<Ipv6Addr>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddrV6::new(ip, port, 0, 0)),
            0..=max_peers(Family::V6)
        )
        .prop_map(UdpPeers::V6),
    ]
}

fn arb_response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<u32>(), any::<u64>()).prop_map(|(transaction_id, connection_id)| {
            Response::Connect {
                transaction_id,
                connection_id,
            }
        }),
        (any::<[u32; 4]>(), arb_peers()).prop_map(
            |([transaction_id, interval, leechers, seeders], peers)| {
                Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                }
            }
        ),
        (
            any::<u32>(),
            proptest::collection::vec(
                any::<[u32; 3]>().prop_map(|[seeders, completed, leechers]| UdpScrapeStats {
                    seeders,
                    completed,
                    leechers
                }),
                0..=MAX_SCRAPE_HASHES
            )
        )
            .prop_map(|(transaction_id, stats)| Response::Scrape {
                transaction_id,
                stats
            }),
        (any::<u32>(), "\\PC{0,200}").prop_map(|(transaction_id, message)| Response::Error {
            transaction_id,
            message
        }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(request in arb_request()) {
        let bytes = request.encode();
        prop_assert!(bytes.len() <= 16 + MAX_SCRAPE_HASHES * 20);
        prop_assert_eq!(Request::decode(&bytes), Ok(request));
    }

    #[test]
    fn responses_round_trip(response in arb_response()) {
        let family = match &response {
            Response::Announce { peers, .. } => peers.family(),
            _ => Family::V4,
        };
        let bytes = response.encode();
        prop_assert!(bytes.len() <= 1472);
        prop_assert_eq!(Response::decode(&bytes, family), Ok(response));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decoded_packets_re_encode(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(request) = Request::decode(&bytes) {
            let again = request.encode();
            prop_assert_eq!(Request::decode(&again), Ok(request));
        }
        for family in [Family::V4, Family::V6] {
            if let Ok(response) = Response::decode(&bytes, family) {
                prop_assert_eq!(Response::decode(&response.encode(), family), Ok(response));
            }
        }
    }
}
