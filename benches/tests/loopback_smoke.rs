//! Short runs of the `loopback` bench so the harness cannot rot: minibit
//! and the no-protocol baseline move 4 MiB to two leechers on 127.0.0.1
//! (the bench compares every copy with the original and fails on a
//! difference); and the baseline's receiver refuses bytes that do not
//! match the `.torrent`'s piece hashes. No timing is asserted.

mod common;

use std::process::{Command, Stdio};

use minibit_core::metainfo::MetainfoBuilder;
use test_support::process::first_line_after;

const SIZE: u64 = 4 << 20;

fn run(client: &str) -> serde_json::Value {
    common::minibit_binaries(env!("CARGO_BIN_EXE_loopback"));
    let out = Command::new(env!("CARGO_BIN_EXE_loopback"))
        .args(["--client", client, "--leechers", "2", "--json"])
        .args(["--size", &SIZE.to_string(), "--timeout", "60"])
        .output()
        .expect("loopback runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loopback --client {client} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["client"], client);
    assert_eq!(report["size"], SIZE);
    assert_eq!(report["leechers"], 2);
    assert!(report["wall_s"].as_f64().expect("wall_s") > 0.0, "{report}");
    // CPU is counted in clock ticks: a 4 MiB run may take none.
    assert!(report["cpu_s"].is_f64(), "{report}");
    // Its parts: start-up, seeding and leeching, none negative.
    let parts: Vec<f64> = ["startup_cpu_s", "seed_cpu_s", "leech_cpu_s"]
        .iter()
        .map(|key| {
            report[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}: {report}"))
        })
        .collect();
    assert!(parts.iter().all(|&p| p >= 0.0), "{report}");
    let total = report["cpu_s"].as_f64().expect("cpu_s");
    assert!((parts.iter().sum::<f64>() - total).abs() < 1e-6, "{report}");
    assert!(
        report["peak_rss_bytes"].as_u64().expect("peak_rss_bytes") > 0,
        "{report}"
    );
    report
}

#[test]
fn minibit_and_the_baseline_move_identical_copies() {
    run("minibit");
    run("baseline");
}

#[test]
fn the_baseline_receiver_refuses_a_piece_that_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.bin");
    let forged = dir.path().join("forged.bin");
    let bytes: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&original, &bytes).unwrap();
    let mut other = bytes.clone();
    other[700_000] ^= 1;
    std::fs::write(&forged, &other).unwrap();
    let torrent = dir.path().join("original.torrent");
    let metainfo = MetainfoBuilder::new(&original)
        .announce("http://127.0.0.1:1/announce")
        .piece_length(Some(256 << 10))
        .build()
        .unwrap();
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let baseline = env!("CARGO_BIN_EXE_loopback-baseline");
    let mut sender = Command::new(baseline)
        .args(["send", "--listen", "127.0.0.1:0", "--receivers", "1"])
        .arg(&forged)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sender starts");
    let addr = first_line_after(&mut sender, "listening on ");
    let out = Command::new(baseline)
        .args(["receive", "--connect", &addr, "--torrent"])
        .arg(&torrent)
        .arg("--out")
        .arg(dir.path().join("copy.bin"))
        .output()
        .expect("receiver runs");
    sender.kill().unwrap();
    sender.wait().unwrap();
    assert!(!out.status.success(), "a forged piece was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("piece 2 does not match its hash"),
        "{stderr}"
    );
}
