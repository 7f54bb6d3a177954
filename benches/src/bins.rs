//! The minibit programs a bench drives: `minibit-tracker` and
//! `minibit-peer`, built next to the bench (`cargo build --release
//! --workspace`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// The programs every bench needs in its binaries folder.
pub const MINIBIT: [&str; 2] = ["minibit-tracker", "minibit-peer"];

/// The folder of this executable, once it holds both [`MINIBIT`] programs.
///
/// # Errors
/// When the executable's path is unknown, or a program is missing (the
/// message names it and the build command).
pub fn beside_this_exe() -> Result<PathBuf> {
    let bins = std::env::current_exe()?
        .parent()
        .context("executable folder")?
        .to_owned();
    check(&bins)?;
    Ok(bins)
}

/// Checks that `bins` holds both [`MINIBIT`] programs.
///
/// # Errors
/// When one is missing (the message names it and the build command).
pub fn check(bins: &Path) -> Result<()> {
    for bin in MINIBIT {
        ensure!(
            bins.join(bin).is_file(),
            "{} missing: run `cargo build --release --workspace` first",
            bins.join(bin).display()
        );
    }
    Ok(())
}
