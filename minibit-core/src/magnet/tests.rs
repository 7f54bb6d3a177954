use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;

use super::*;
use crate::metainfo::{Content, Draft, Extras};

const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

#[test]
fn hex_and_base32_name_the_same_torrent() {
    let hex = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
    // The same 20 bytes in RFC 4648 base32, upper and lower case.
    let b32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap(),
        hex
    );
    assert_eq!(
        Magnet::parse(&format!("MAGNET:?xt=URN:BTIH:{}", b32.to_lowercase())).unwrap(),
        hex
    );
    assert_eq!(hex.info_hash.to_hex(), HEX);
    assert_eq!(hex.to_string(), format!("magnet:?xt=urn:btih:{HEX}"));
}

#[test]
fn a_real_link_with_name_trackers_and_peers() {
    let link = format!(
        "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny%C3%A9&tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce\
         &tr=http://t2.example/announce&x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413\
         &x.pe=peer.example:80&xl=123&ws=http://mirror.example/file&so=0-3"
    );
    let m = Magnet::parse(&link).unwrap();
    assert_eq!(m.name.as_deref(), Some("Big Buck Bunnyé"));
    assert_eq!(
        m.trackers,
        [
            "udp://tracker.example:1337/announce",
            "http://t2.example/announce"
        ]
    );
    assert_eq!(
        m.peers,
        [
            MagnetPeer::Addr(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(10, 0, 0, 1),
                6881
            ))),
            MagnetPeer::Addr(SocketAddr::V6(SocketAddrV6::new(
                "2001:db8::1".parse().unwrap(),
                51413,
                0,
                0
            ))),
            MagnetPeer::Host {
                host: "peer.example".into(),
                port: 80
            },
        ]
    );
    assert_eq!(Magnet::parse(&m.to_string()), Ok(m));
}

#[test]
fn a_v2_hash_beside_the_v1_hash_is_ignored() {
    let link = format!(
        "magnet:?xt=urn:btmh:1220{}&xt=urn:btih:{HEX}",
        "ab".repeat(32)
    );
    assert_eq!(Magnet::parse(&link).unwrap().info_hash.to_hex(), HEX);
}

#[test]
fn bad_links_get_typed_errors() {
    let other = "d".repeat(40);
    for (link, error) in [
        ("http://example.com".to_owned(), MagnetError::NotAMagnet),
        ("magnet:".to_owned(), MagnetError::NotAMagnet),
        ("magnet:?dn=x".to_owned(), MagnetError::MissingInfoHash),
        (
            "magnet:?xt=urn:btih:abc".to_owned(),
            MagnetError::BadInfoHash("abc".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{}", "g".repeat(40)),
            MagnetError::BadInfoHash("g".repeat(40)),
        ),
        (
            format!("magnet:?xt=urn:btih:{}", "1".repeat(32)),
            MagnetError::BadInfoHash("1".repeat(32)),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}"),
            MagnetError::ConflictingInfoHashes,
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&dn=%zz"),
            MagnetError::BadEncoding("dn".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&dn=%4"),
            MagnetError::BadEncoding("dn".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&tr=%ff%fe"),
            MagnetError::BadEncoding("tr".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&x.pe=10.0.0.1"),
            MagnetError::BadPeer("10.0.0.1".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&x.pe=10.0.0.1:0"),
            MagnetError::BadPeer("10.0.0.1:0".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&x.pe=300.0.0.1:80"),
            MagnetError::BadPeer("300.0.0.1:80".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&x.pe=bad_host:80"),
            MagnetError::BadPeer("bad_host:80".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}&x.pe=:80"),
            MagnetError::BadPeer(":80".into()),
        ),
        (
            format!("magnet:?xt=urn:btih:{HEX}{}", "&tr=u".repeat(201)),
            MagnetError::TooManySources,
        ),
        (
            format!(
                "magnet:?xt=urn:btih:{HEX}&dn={}",
                "a".repeat(MAX_MAGNET_LEN)
            ),
            MagnetError::TooLong(MAX_MAGNET_LEN + 64),
        ),
    ] {
        assert_eq!(Magnet::parse(&link), Err(error), "{link:.100}");
    }
}

#[test]
fn from_metainfo_lists_every_tracker_once() {
    let metainfo = Draft {
        name: "Holiday Movie.mkv".into(),
        piece_length: 16384,
        pieces: vec![[7; 20]],
        content: Content::Single { length: 100 },
        private: false,
        extras: Extras {
            announce: Some("http://a.example/announce".into()),
            announce_list: vec![
                vec![
                    "http://a.example/announce".into(),
                    "udp://b.example:80".into(),
                ],
                vec!["http://c.example/announce".into()],
            ],
            ..Extras::default()
        },
    }
    .finish()
    .unwrap();
    let m = Magnet::from_metainfo(&metainfo);
    assert_eq!(m.info_hash, metainfo.info_hash());
    assert_eq!(m.name.as_deref(), Some("Holiday Movie.mkv"));
    assert_eq!(
        m.trackers,
        [
            "http://a.example/announce",
            "udp://b.example:80",
            "http://c.example/announce"
        ]
    );
    assert_eq!(
        m.to_string(),
        format!(
            "magnet:?xt=urn:btih:{}&dn=Holiday%20Movie.mkv&tr=http%3A%2F%2Fa.example%2Fannounce\
             &tr=udp%3A%2F%2Fb.example%3A80&tr=http%3A%2F%2Fc.example%2Fannounce",
            metainfo.info_hash().to_hex()
        )
    );
}

fn arb_peer() -> impl Strategy<Value = MagnetPeer> {
    prop_oneof![
        (any::<Ipv4Addr>(), 1..=u16::MAX)
            .prop_map(|(ip, port)| MagnetPeer::Addr(SocketAddr::new(ip.into(), port))),
        (any::<Ipv6Addr>(), 1..=u16::MAX)
            .prop_map(|(ip, port)| MagnetPeer::Addr(SocketAddr::new(ip.into(), port))),
        ("[a-z][a-z0-9.-]{0,30}", 1..=u16::MAX)
            .prop_map(|(host, port)| MagnetPeer::Host { host, port }),
    ]
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_magnet(
        hash in any::<[u8; 20]>(),
        name in proptest::option::of(".{0,40}"),
        trackers in proptest::collection::vec(".{0,40}", 0..5),
        peers in proptest::collection::vec(arb_peer(), 0..5),
    ) {
        let magnet = Magnet { info_hash: InfoHash(hash), name, trackers, peers };
        prop_assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
    }

    #[test]
    fn any_string_parses_or_gets_an_error_and_parsed_links_round_trip(s in "magnet:\\?.{0,200}") {
        if let Ok(magnet) = Magnet::parse(&s) {
            prop_assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
        }
    }
}
