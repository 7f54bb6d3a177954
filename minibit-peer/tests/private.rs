//! BEP 27: a private torrent's peers come from its trackers only. Two
//! hand-written peers on raw TCP sockets join a leeching session; one of
//! them advertises `ut_pex` (BEP 11) and sends it a contact, a listener of
//! the test. The same run on a public torrent is the control: there the
//! session advertises `ut_pex`, tells the peer about the other one, and
//! dials the contact.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use minibit_core::wire::{ExtendedHandshake, Handshake, Message, PeerId, Pex, PexFlags};
use minibit_peer::{Session, SessionHandle};
use tokio::net::TcpListener;

use common::scripted::Scripted;
use common::{content, init_logging, local_config};

/// How long the private session is watched for PEX it must not send or act on.
const QUIET: Duration = Duration::from_secs(3);

/// Bound on everything that must happen.
const WAIT: Duration = Duration::from_secs(30);

/// Our `ut_pex` id as the fake peer (the session must send under it).
const PEER_UT_PEX: u8 = 5;

/// A session with no piece of a torrent (private or not) whose tracker is dead.
async fn leecher(root: &std::path::Path, private: bool) -> (Metainfo, SessionHandle) {
    init_logging();
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.bin"), content(100_000, 5)).unwrap();
    let metainfo = MetainfoBuilder::new(src.join("data.bin"))
        .piece_length(Some(32 * 1024))
        .announce("http://127.0.0.1:9/announce")
        .private(private)
        .build()
        .unwrap();
    let session = Session::start(local_config(&metainfo, &root.join("out"), 1))
        .await
        .unwrap();
    (metainfo, session)
}

/// A fake peer with the extension bit that sent its extended handshake
/// (`ut_pex` under [`PEER_UT_PEX`] when `pex`, listen port `port`);
/// returns it with the session's extended handshake.
async fn join(
    session: &SessionHandle,
    metainfo: &Metainfo,
    n: u8,
    pex: bool,
    port: u16,
) -> (Scripted, ExtendedHandshake) {
    let pieces = metainfo.layout().piece_count();
    let mut peer = Scripted::connect(session.local_addr(), pieces).await;
    let mut buf = BytesMut::new();
    Handshake::new(metainfo.info_hash(), PeerId::generate([n; 12]))
        .with_extensions()
        .encode(&mut buf);
    peer.raw(&buf).await;
    let theirs = peer.handshake().await;
    assert!(theirs.supports_extensions(), "the session speaks BEP 10");
    let ours = tokio::time::timeout(
        WAIT,
        peer.recv_until(|m| match m {
            Message::Extended { id: 0, payload } => {
                Some(ExtendedHandshake::decode(&payload).unwrap())
            }
            _ => None,
        }),
    )
    .await
    .expect("an extended handshake");
    let mine = ExtendedHandshake {
        m: pex
            .then(|| ("ut_pex".to_owned(), PEER_UT_PEX))
            .into_iter()
            .collect(),
        p: Some(port),
        ..ExtendedHandshake::default()
    };
    peer.send(&mine.to_message()).await;
    (peer, ours)
}

/// What a fake peer saw: the session's extended handshake, whether it got
/// a `ut_pex` message, and whether the session dialled the contact that
/// peer sent it.
async fn run(private: bool) -> (ExtendedHandshake, bool, bool) {
    let root = tempfile::tempdir().unwrap();
    let (metainfo, session) = leecher(root.path(), private).await;
    let contact = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A peer the session could tell about: listening on `other`'s port.
    let (_b, _) = join(
        &session,
        &metainfo,
        2,
        false,
        other.local_addr().unwrap().port(),
    )
    .await;
    let (mut a, ours) = join(&session, &metainfo, 1, true, 1).await;
    // Contacts under the id the session advertised, or BEP 11's usual 1.
    let id = ours.id_for("ut_pex").unwrap_or(1);
    let SocketAddr::V4(bait) = contact.local_addr().unwrap() else {
        unreachable!("bound on 127.0.0.1")
    };
    let pex = Pex {
        added: vec![(bait, PexFlags::default())],
        ..Pex::default()
    };
    a.send(&Message::Extended {
        id,
        payload: pex.encode(),
    })
    .await;
    let window = if private { QUIET } else { WAIT };
    let got_pex = async {
        loop {
            match a.recv().await {
                Some(Message::Extended { id, .. }) if id == PEER_UT_PEX => return true,
                Some(_) => {}
                None => return false,
            }
        }
    };
    let got_pex = tokio::time::timeout(window, got_pex).await.unwrap_or(false);
    let dialled = tokio::time::timeout(window, contact.accept()).await.is_ok();
    session.shutdown().await.unwrap();
    (ours, got_pex, dialled)
}

#[tokio::test]
async fn a_private_torrent_never_sends_or_accepts_pex() {
    let (ours, got_pex, dialled) = run(true).await;
    assert_eq!(ours.id_for("ut_pex"), None, "ut_pex advertised: {ours:?}");
    assert!(!got_pex, "the session sent ut_pex");
    assert!(!dialled, "the session dialled a contact learned via ut_pex");
}

#[tokio::test]
async fn a_public_torrent_exchanges_peers_the_control() {
    let (ours, got_pex, dialled) = run(false).await;
    assert!(
        ours.id_for("ut_pex").is_some(),
        "ut_pex advertised: {ours:?}"
    );
    assert!(got_pex, "the session told the peer about the other one");
    assert!(
        dialled,
        "the session dialled the contact learned via ut_pex"
    );
}
