//! What the benches' smoke tests share.

use std::path::Path;

use test_support::binaries::build_next_to;

/// Builds the minibit binaries a bench drives (cargo only builds a
/// package's own binaries for its tests) in this test's profile, next to
/// `bench_exe` (a `CARGO_BIN_EXE_*` path), and returns their folder.
pub fn minibit_binaries(bench_exe: &'static str) -> &'static Path {
    let exe = Path::new(bench_exe);
    build_next_to(exe, &["-p", "minibit-peer", "-p", "minibit-tracker"]);
    exe.parent().expect("binary folder")
}
