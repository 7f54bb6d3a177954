//! One torrent at a time per output file: each file a session opens is
//! held under an exclusive advisory lock (`flock(LOCK_EX | LOCK_NB)`,
//! through `rustix`; std's `File::try_lock` needs Rust 1.89, above the
//! workspace's MSRV) for as long as the session runs, so a second
//! process (or session) writing the same file is refused instead of mixing
//! two torrents' bytes. The lock goes with the open file: it is released
//! when the session's handles close, also when the process dies.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

/// Takes the exclusive lock of `file` (opened from `path`) without waiting.
///
/// # Errors
/// `ResourceBusy` naming `path` when another open handle (another
/// `minibit-peer`, or another session of this process) holds it; other
/// I/O errors from `flock`.
pub(crate) fn lock_exclusive(file: &File, path: &Path) -> io::Result<()> {
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "{} is in use by another torrent (another minibit-peer or minibit-tracker \
                 writes or seeds it); stop that one first, or download into another folder",
                path.display()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let first = File::create(&path).unwrap();
        lock_exclusive(&first, &path).unwrap();
        let second = File::open(&path).unwrap();
        let err = lock_exclusive(&second, &path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
        assert!(err.to_string().contains(&path.display().to_string()));
        drop(first);
        lock_exclusive(&second, &path).unwrap();
    }
}
