//! A short run of the `wan` bench so the harness cannot rot: 3 leechers,
//! 4 MiB, 20 Mbit/s uplinks (one leecher's 2 Mbit/s), minibit. Needs root (network namespaces, veth,
//! a bridge, `tc tbf`); without it the test fails saying so. Checks that
//! every copy is identical (the bench compares them and prints `all_ok`),
//! that the JSON line is well formed and that no namespace is left behind;
//! no timing is asserted.

mod common;

use std::process::Command;

use test_support::root::require_root;

/// Network namespaces the bench run with process id `pid` made.
fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs (Debian package iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("mbwan-{pid}-")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn three_leechers_get_identical_copies_and_one_json_line() {
    require_root("ip netns, veth, a bridge, tc tbf");
    let bins = common::minibit_binaries(env!("CARGO_BIN_EXE_wan"));
    let child = Command::new(env!("CARGO_BIN_EXE_wan"))
        .args([
            "--client",
            "minibit",
            "--leechers",
            "3",
            "--size",
            &(4u64 << 20).to_string(),
            "--piece-length",
            &(256u32 << 10).to_string(),
            "--up-mbit",
            "20",
            "--slow-leechers",
            "1",
            "--slow-up-mbit",
            "2",
            "--timeout",
            "60",
            "--bins",
        ])
        .arg(bins)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wan starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("wan runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wan failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line per client:\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(report["client"], "minibit");
    assert_eq!(report["n"], 3);
    assert_eq!(report["size"], 4u64 << 20);
    assert_eq!(report["piece_length"], 256u32 << 10);
    assert_eq!(report["all_ok"], true, "a copy differs: {report}");
    let finish: Vec<f64> = report["finish_s"]
        .as_array()
        .expect("finish_s is an array")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect();
    assert_eq!(finish.len(), 3);
    assert!(finish.is_sorted(), "{finish:?}");
    assert_eq!(report["first_s"].as_f64(), Some(finish[0]));
    assert_eq!(report["median_s"].as_f64(), Some(finish[1]));
    assert_eq!(report["last_s"].as_f64(), Some(finish[2]));
    // 4 MiB at 2.5 MB/s from the seed: F/u_s binds.
    let fluid = report["fluid_bound_s"].as_f64().expect("fluid_bound_s");
    assert!(
        (fluid - (4u64 << 20) as f64 / 2.5e6).abs() < 1e-9,
        "{fluid}"
    );
    let wire = report["wire_bound_s"].as_f64().expect("wire_bound_s");
    assert!(wire > fluid, "{wire} <= {fluid}");
    // The seeder sent at least one copy through its shaped link.
    let seed_tx = report["seed_tx_bytes"].as_u64().expect("seed_tx_bytes");
    assert!(seed_tx >= 4 << 20, "{seed_tx}");
    for key in [
        "last_over_fluid",
        "last_over_wire",
        "seed_copies",
        "up_mbit",
    ] {
        assert!(report[key].as_f64().is_some(), "{key} missing: {report}");
    }
    // The last leecher had the slow uplink: its finish is one of the three,
    // the other two's median lies between theirs.
    assert_eq!(report["slow_leechers"], 1);
    let slow = report["slow_median_s"].as_f64().expect("slow_median_s");
    let others = report["others_median_s"].as_f64().expect("others_median_s");
    assert!(finish.contains(&slow), "{slow} not in {finish:?}");
    assert!(others >= finish[0] && others <= finish[2], "{others}");
    // serde_json's default float parsing is not correctly rounded (it lacks
    // the `float_roundtrip` feature), so the last digit may differ.
    let ratio = report["slow_over_others"]
        .as_f64()
        .expect("slow_over_others");
    assert!(
        (ratio - slow / others).abs() < 1e-12,
        "{ratio} vs {slow}/{others}"
    );
    let left = namespaces_of(pid);
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}
