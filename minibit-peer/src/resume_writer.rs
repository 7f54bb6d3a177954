//! Writes a running torrent's resume data ([`crate::resume_data`]): at most
//! once per interval while pieces get verified, and once at shutdown.
//!
//! A save runs on the blocking pool, off the event loop: it reads the
//! files' sizes and mtimes (through the open handles), then writes the
//! resume data atomically. The verified pieces it records are a snapshot
//! taken before that, and each of them was written (`pwrite` returned)
//! before it counted as verified, so the recorded mtimes are never older
//! than those pieces' bytes: a restart that finds the same mtimes finds
//! those bytes, also after `kill -9` (the bytes are in the page cache).
//! The data files are not flushed first: at 1 GiB that would add seconds
//! of write-back to every exit. After a power loss, a file whose mtime
//! update did not reach the disk is re-verified; on ext4 (`data=ordered`)
//! an mtime that did reach it implies the data blocks written before it.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::priority::Priority;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::resume_data::ResumeData;
use crate::storage::{Storage, blocking};

/// Saves one torrent's resume data.
#[derive(Debug)]
pub(crate) struct ResumeWriter {
    path: PathBuf,
    info_hash: InfoHash,
    storage: Storage,
    /// Least time between two saves while downloading.
    interval: Duration,
    /// Pieces were verified (or priorities changed) since the last save.
    dirty: bool,
    /// No save before this.
    next_save: Instant,
    /// The save under way.
    saving: Option<JoinHandle<io::Result<()>>>,
}

impl ResumeWriter {
    /// A writer of `info_hash`'s resume data at `path`, for the files of
    /// `storage`, saving at most every `interval`. The first save waits
    /// for a first change.
    pub(crate) fn new(
        path: PathBuf,
        info_hash: InfoHash,
        storage: Storage,
        interval: Duration,
        now: Instant,
    ) -> Self {
        Self {
            path,
            info_hash,
            storage,
            interval,
            dirty: false,
            next_save: now + interval,
            saving: None,
        }
    }

    /// Something the resume data records changed (a piece verified).
    pub(crate) fn changed(&mut self) {
        self.dirty = true;
    }

    /// Call often (e.g. on every progress tick): starts a background save
    /// when something changed, the interval has passed and no save is
    /// under way.
    pub(crate) fn tick(&mut self, now: Instant, have: &Bitfield, priorities: &[Priority]) {
        if self.saving.as_ref().is_some_and(|s| !s.is_finished()) {
            return;
        }
        if let Some(done) = self.saving.take() {
            report(futures::FutureExt::now_or_never(done));
        }
        if self.dirty && now >= self.next_save {
            self.dirty = false;
            self.next_save = now + self.interval;
            self.saving = Some(tokio::spawn(self.save(have.clone(), priorities.to_vec())));
        }
    }

    /// The last save, at shutdown: waits for the save under way, then
    /// saves `have` (always, so the recorded mtimes are the final ones).
    pub(crate) async fn flush(&mut self, have: &Bitfield, priorities: &[Priority]) {
        if let Some(saving) = self.saving.take() {
            report(Some(saving.await));
        }
        report(Some(Ok(self.save(have.clone(), priorities.to_vec()).await)));
    }

    /// The last save of a torrent being removed, handed to whoever
    /// removes it (the save, or the deletion of the resume data, must not
    /// block the client's task).
    pub(crate) fn finish(self, have: Bitfield, priorities: Vec<Priority>) -> FinalSave {
        FinalSave {
            writer: self,
            have,
            priorities,
        }
    }

    fn save(
        &self,
        have: Bitfield,
        priorities: Vec<Priority>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let (path, info_hash, storage) = (self.path.clone(), self.info_hash, self.storage.clone());
        blocking(move || {
            let stamps = storage.stamps()?;
            ResumeData::new(&info_hash, &have, stamps, &priorities).save(&path)?;
            debug!(pieces = have.count(), path = %path.display(), "resume data saved");
            Ok(())
        })
    }
}

/// A removed torrent's last resume data save; see [`ResumeWriter::finish`].
#[derive(Debug)]
pub(crate) struct FinalSave {
    writer: ResumeWriter,
    have: Bitfield,
    priorities: Vec<Priority>,
}

impl FinalSave {
    /// Saves the resume data (the torrent keeps its place on a later add).
    pub(crate) async fn save(mut self) {
        self.writer.flush(&self.have, &self.priorities).await;
    }

    /// Waits for the save under way, saves nothing more, and returns the
    /// resume data file's path (to delete it with the torrent's data).
    pub(crate) async fn discard(mut self) -> PathBuf {
        if let Some(saving) = self.writer.saving.take() {
            report(Some(saving.await));
        }
        self.writer.path
    }
}

/// Logs the outcome of a finished save (a failed save is not fatal: the
/// next restart verifies more).
fn report(done: Option<Result<io::Result<()>, tokio::task::JoinError>>) {
    match done {
        Some(Ok(Err(e))) => warn!("cannot save resume data: {e}"),
        Some(Err(e)) => warn!("resume data save failed: {e}"),
        _ => {}
    }
}
