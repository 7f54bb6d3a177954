//! The workspace's programs for the tests of another package: cargo only
//! builds a package's own binaries for its tests.

use std::path::Path;
use std::process::Command;

use crate::process::run;

/// Runs `cargo build --quiet ARGS...` (e.g. `["-p", "minibit-peer"]`) in
/// the profile of `exe`, a `CARGO_BIN_EXE_*` path of the calling test
/// (`--release` when it lies in a `release` folder), so the programs land
/// next to it; panics with cargo's output when the build fails.
pub fn build_next_to(exe: &Path, args: &[&str]) {
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet"])
        .args(args);
    if exe.parent().is_some_and(|dir| dir.ends_with("release")) {
        build.arg("--release");
    }
    run(build);
}
