//! What the benches' smoke tests share.

use std::path::Path;
use std::process::Command;

/// Builds the minibit binaries a bench drives (cargo only builds a
/// package's own binaries for its tests) in this test's profile, next to
/// `bench_exe` (a `CARGO_BIN_EXE_*` path), and returns their folder.
pub fn minibit_binaries(bench_exe: &'static str) -> &'static Path {
    let dir = Path::new(bench_exe).parent().expect("binary folder");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--quiet",
        "-p",
        "minibit-peer",
        "-p",
        "minibit-tracker",
    ]);
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(
        status.success(),
        "cargo build of the minibit binaries failed"
    );
    dir
}
