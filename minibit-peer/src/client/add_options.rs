//! What every way of adding a torrent shares: where its files and state
//! go, how often its resume data is saved, and the core's tunables. A leaf
//! of the client module.

use std::path::PathBuf;
use std::time::Duration;

use minibit_core::torrent::TorrentConfig;

use crate::resume_data::DEFAULT_STATE_DIR;

/// Where a torrent's files and state go and how it runs; part of
/// [`super::AddTorrent`], [`super::AddMagnet`] and
/// [`crate::SessionConfig`].
#[derive(Clone, Debug)]
pub struct AddOptions {
    /// Folder the torrent's files go in (for a seeder: the folder that
    /// already holds them).
    pub output_dir: PathBuf,
    /// Folder of the resume data, of the skipped files' part files and of
    /// the `.torrent` a magnet link's metadata is saved as (`None`:
    /// `.minibit` inside `output_dir`; see [`AddOptions::state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// Least time between two saves of the resume data while pieces are
    /// verified; it is also saved when the torrent stops.
    pub resume_interval: Duration,
    /// The core's tunables (RNG seed, slots, super-seeding, file
    /// priorities, ...); a `None` [`TorrentConfig::rng_seed`] is seeded
    /// from OS entropy. A magnet link's `file_priorities` apply once the
    /// metadata tells the files.
    pub torrent: TorrentConfig,
}

impl AddOptions {
    /// Defaults: state in `.minibit` inside `output_dir`, resume data saved
    /// at most every 5 s, the core's default tunables.
    pub fn new(output_dir: impl Into<PathBuf>) -> Self {
        Self {
            output_dir: output_dir.into(),
            state_dir: None,
            resume_interval: Duration::from_secs(5),
            torrent: TorrentConfig::default(),
        }
    }

    /// The state folder: [`AddOptions::state_dir`] or its default,
    /// `output_dir/.minibit`.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.output_dir.join(DEFAULT_STATE_DIR))
    }
}
