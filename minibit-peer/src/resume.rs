//! Resume: which pieces are already on disk. Every piece of existing files is
//! read back and hashed (in parallel on the blocking pool, at most one piece
//! per core in memory); a piece counts only if its SHA-1 matched, so a crash
//! can never leave an unverified piece marked as ours.

use std::io;
use std::sync::Arc;

use minibit_core::bitfield::Bitfield;
use minibit_core::piece::PieceIndex;
use tokio::task::JoinSet;

use crate::hasher::{PieceHash, verify_stored};
use crate::storage::Storage;

/// Verifies every piece in `storage` against `hashes` (one per piece) and
/// returns the bitfield of pieces whose hash matched.
///
/// # Errors
/// An I/O error reading the files, or `InvalidInput` if `hashes` does not
/// hold one hash per piece.
pub async fn verify_existing(storage: &Storage, hashes: Arc<[PieceHash]>) -> io::Result<Bitfield> {
    let all = Bitfield::full(storage.layout().piece_count());
    verify_pieces(storage, hashes, &all).await
}

/// Verifies the pieces set in `pieces` (fast resume: those of files whose
/// size or mtime changed) and returns those whose hash matched.
///
/// # Errors
/// As [`verify_existing`].
pub async fn verify_pieces(
    storage: &Storage,
    hashes: Arc<[PieceHash]>,
    pieces: &Bitfield,
) -> io::Result<Bitfield> {
    let layout = storage.layout();
    if hashes.len() != layout.piece_count() as usize || pieces.len() != layout.piece_count() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "one piece hash per piece expected",
        ));
    }
    let parallelism = std::thread::available_parallelism().map_or(2, usize::from);
    let mut have = Bitfield::new(layout.piece_count());
    let mut jobs: JoinSet<io::Result<(PieceIndex, bool)>> = JoinSet::new();
    let mut pieces = pieces.iter_set();
    loop {
        while jobs.len() < parallelism {
            let Some(piece) = pieces.next() else { break };
            let storage = storage.clone();
            let hashes = Arc::clone(&hashes);
            jobs.spawn_blocking(move || {
                let ok = verify_stored(&storage, piece, &hashes[piece.as_usize()])?;
                Ok((piece, ok))
            });
        }
        let Some(done) = jobs.join_next().await else {
            break;
        };
        let (piece, ok) = done.map_err(io::Error::other)??;
        if ok {
            have.set(piece);
        }
    }
    Ok(have)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hasher::digest;
    use crate::storage::FileEntry;
    use minibit_core::piece::Layout;
    use std::path::PathBuf;

    #[tokio::test]
    async fn only_pieces_whose_hash_matches_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let piece_length = 16_384;
        let hashes: Arc<[PieceHash]> = content.chunks(piece_length).map(|c| digest([c])).collect();
        // A partial download: pieces 0, 2 and the short last piece 6 are
        // good, piece 4 is corrupt, the rest was never written (zeros).
        let mut on_disk = vec![0u8; content.len()];
        for piece in [0usize, 2, 4, 6] {
            let range = piece * piece_length..((piece + 1) * piece_length).min(content.len());
            on_disk[range.clone()].copy_from_slice(&content[range]);
        }
        on_disk[4 * piece_length + 100] ^= 0xff;
        // Split the content over two files so pieces straddle a boundary.
        std::fs::write(dir.path().join("a"), &on_disk[..40_000]).unwrap();
        std::fs::write(dir.path().join("b"), &on_disk[40_000..]).unwrap();
        let files = vec![
            FileEntry {
                path: PathBuf::from("a"),
                length: 40_000,
            },
            FileEntry {
                path: PathBuf::from("b"),
                length: 60_000,
            },
        ];
        let layout = Layout::new(piece_length as u64, &[40_000, 60_000]).unwrap();
        let (storage, report) = Storage::open(dir.path(), &files, layout).unwrap();
        assert!(report.had_data);
        let have = verify_existing(&storage, hashes).await.unwrap();
        let got: Vec<u32> = have.iter_set().map(PieceIndex::get).collect();
        assert_eq!(got, vec![0, 2, 6]);
    }

    #[tokio::test]
    async fn wrong_hash_count_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![FileEntry {
            path: PathBuf::from("a"),
            length: 10,
        }];
        let layout = Layout::new(4, &[10]).unwrap();
        let (storage, _) = Storage::open(dir.path(), &files, layout).unwrap();
        let err = verify_existing(&storage, Arc::from(vec![[0u8; 20]; 2]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
