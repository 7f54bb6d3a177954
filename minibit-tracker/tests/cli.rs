//! The `minibit-tracker` binary as a process.

use std::process::{Command, Stdio};

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse};
use minibit_core::wire::PeerId;
use test_support::process::{first_line_after, signal};

#[tokio::test]
async fn binary_listens_on_the_printed_address_and_exits_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
        .args(["--bind", "127.0.0.1:0", "-q"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let base = first_line_after(&mut child, "tracker listening on ");
    assert!(!base.ends_with(":0"), "the real port is printed: {base}");

    let req = AnnounceRequest {
        info_hash: InfoHash([9; 20]),
        peer_id: PeerId([1; 20]),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: None,
        ip: None,
        key: None,
    };
    let body = reqwest::get(format!("{base}/announce?{}", req.to_query()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp = AnnounceResponse::decode(&body).unwrap();
    assert_eq!((resp.complete, resp.incomplete), (1, 0));

    signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGINT: {status}");
}
