//! Blocks of pieces still being downloaded, and their verification.
//!
//! Write ordering (the core's contract: every `WriteBlock` of a piece is
//! visible to its `VerifyPiece`): received blocks stay in memory until the
//! piece is complete; `VerifyPiece` hashes them from memory and writes the
//! piece to disk only once the SHA-1 matched, so unverified bytes normally
//! never reach the disk. Memory is bounded: past `limit` buffered bytes a
//! block is written ("spilled") to its place on disk straight away and read
//! back at verification; verification first waits for those writes. A
//! piece reported verified is on disk before the core hears about it, so a
//! request for it can be served at once.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use minibit_core::piece::{BlockRef, PieceIndex};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::hasher::{PieceHash, digest};
use crate::storage::{Storage, blocking};

/// One received block of an in-flight piece.
#[derive(Debug)]
enum Chunk {
    /// Still in memory.
    Memory(Bytes),
    /// Already written to disk (spilled).
    OnDisk,
}

#[derive(Debug, Default)]
struct Partial {
    /// Blocks by offset inside the piece.
    blocks: BTreeMap<u32, (BlockRef, Chunk)>,
    /// Writes of spilled blocks, awaited before verification.
    spills: Vec<JoinHandle<io::Result<()>>>,
}

/// The in-flight pieces of one torrent.
#[derive(Debug)]
pub struct InFlight {
    storage: Storage,
    pieces: HashMap<PieceIndex, Partial>,
    budget: Arc<MemoryBudget>,
}

/// The memory for block data shared by the [`InFlight`] buffers of every
/// torrent of a client: bytes buffered in memory (at most `limit`) and
/// bytes of spilled blocks whose disk write has not finished yet.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    buffered: AtomicUsize,
    spilling: AtomicUsize,
    written: Notify,
}

impl MemoryBudget {
    /// A budget of `limit` bytes of block data in memory.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            buffered: AtomicUsize::new(0),
            spilling: AtomicUsize::new(0),
            written: Notify::new(),
        })
    }

    /// Whether more blocks may come in: spilled blocks waiting for their
    /// disk write stay under a quarter of the budget. While this is
    /// `false` the driver stops taking frames from its connections, so a
    /// disk slower than the network slows the download instead of growing
    /// memory.
    pub fn accepts_blocks(&self) -> bool {
        self.spilling.load(Ordering::Relaxed) < self.limit / 4
    }

    /// Completes whenever a spilled block reached the disk.
    pub async fn spill_written(&self) {
        self.written.notified().await;
    }

    #[cfg(test)]
    /// Bytes of block data held in memory, including pieces being verified.
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    /// A [`PieceJob`] finished: its memory is free again (also once its
    /// torrent is gone).
    pub fn release(&self, memory_bytes: usize) {
        self.buffered.fetch_sub(memory_bytes, Ordering::Relaxed);
    }

    /// Takes `len` bytes if they fit.
    fn try_take(&self, len: usize) -> bool {
        self.buffered
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b + len <= self.limit).then_some(b + len)
            })
            .is_ok()
    }
}

/// A complete piece taken out of [`InFlight`] for verification.
#[derive(Debug)]
pub struct PieceJob {
    storage: Storage,
    piece: PieceIndex,
    partial: Partial,
    memory_bytes: usize,
}

impl InFlight {
    /// Buffers block data in memory within `budget` (shared with other
    /// torrents), spilling to disk past it.
    pub fn new(storage: Storage, budget: Arc<MemoryBudget>) -> Self {
        Self {
            storage,
            pieces: HashMap::new(),
            budget,
        }
    }

    /// The memory budget this buffer draws on.
    pub fn budget(&self) -> Arc<MemoryBudget> {
        Arc::clone(&self.budget)
    }

    /// Stores a received block (an `Action::WriteBlock`). A second copy of
    /// the same block replaces the first.
    pub fn insert(&mut self, block: BlockRef, data: Bytes) {
        let partial = self.pieces.entry(block.piece).or_default();
        let chunk = if self.budget.try_take(data.len()) {
            Chunk::Memory(data)
        } else {
            let storage = self.storage.clone();
            let offset = storage.block_offset(block);
            let budget = Arc::clone(&self.budget);
            budget.spilling.fetch_add(data.len(), Ordering::Relaxed);
            partial.spills.push(tokio::spawn(blocking(move || {
                let written = storage.write_at(offset, &data);
                budget.spilling.fetch_sub(data.len(), Ordering::Relaxed);
                budget.written.notify_one();
                written
            })));
            Chunk::OnDisk
        };
        if let Some((_, Chunk::Memory(old))) = partial.blocks.insert(block.offset, (block, chunk)) {
            self.budget.release(old.len());
        }
    }

    /// Takes `piece` out for verification (an `Action::VerifyPiece`). Its
    /// memory stays counted until [`MemoryBudget::release`] is called with
    /// the job's [`PieceJob::memory_bytes`].
    pub fn take(&mut self, piece: PieceIndex) -> PieceJob {
        let partial = self.pieces.remove(&piece).unwrap_or_default();
        let memory_bytes = partial
            .blocks
            .values()
            .map(|(_, chunk)| match chunk {
                Chunk::Memory(data) => data.len(),
                Chunk::OnDisk => 0,
            })
            .sum();
        PieceJob {
            storage: self.storage.clone(),
            piece,
            partial,
            memory_bytes,
        }
    }
}

impl Drop for InFlight {
    /// Blocks still buffered (the torrent was paused or removed) give
    /// their memory back to the budget.
    fn drop(&mut self) {
        let held: usize = self
            .pieces
            .values()
            .flat_map(|partial| partial.blocks.values())
            .map(|(_, chunk)| match chunk {
                Chunk::Memory(data) => data.len(),
                Chunk::OnDisk => 0,
            })
            .sum();
        self.budget.release(held);
    }
}

impl PieceJob {
    /// Bytes of memory the job holds, for [`MemoryBudget::release`].
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Waits for spilled writes, checks the blocks cover the piece exactly,
    /// hashes them against `expected` on the blocking pool and, on a match,
    /// writes the in-memory blocks to disk. `Ok(true)` means the piece is
    /// verified and stored.
    ///
    /// # Errors
    /// I/O errors from the spilled writes, the read-back or the final write.
    pub async fn verify_and_store(self, expected: PieceHash) -> io::Result<bool> {
        let Self {
            storage,
            piece,
            partial,
            ..
        } = self;
        for spill in partial.spills {
            spill.await.map_err(io::Error::other)??;
        }
        blocking(move || {
            let piece_size = storage.layout().piece_size(piece);
            let mut end = 0u32;
            let mut chunks = Vec::with_capacity(partial.blocks.len());
            for (block, chunk) in partial.blocks.into_values() {
                if block.offset != end {
                    return Ok(false);
                }
                end += block.length;
                let data = match chunk {
                    Chunk::Memory(data) => data,
                    Chunk::OnDisk => Bytes::from(
                        storage.read_vec(storage.block_offset(block), block.length as usize)?,
                    ),
                };
                chunks.push((block, data));
            }
            if end != piece_size || digest(chunks.iter().map(|(_, d)| d.as_ref())) != expected {
                return Ok(false);
            }
            storage.write_blocks_at(&chunks)?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FileEntry;
    use minibit_core::piece::Layout;
    use std::path::PathBuf;

    const PIECE: u64 = 65_536;

    fn setup(dir: &std::path::Path) -> (Storage, Vec<u8>) {
        let content: Vec<u8> = (0..2 * PIECE as u32).map(|i| (i % 253) as u8).collect();
        let files = vec![FileEntry {
            path: PathBuf::from("f"),
            length: content.len() as u64,
        }];
        let layout = Layout::new(PIECE, &[content.len() as u64]).unwrap();
        (Storage::open(dir, &files, layout).unwrap().0, content)
    }

    fn feed(inflight: &mut InFlight, piece: PieceIndex, content: &[u8]) {
        let layout = inflight.storage.layout().clone();
        let base = layout.piece_offset(piece) as usize;
        for block in layout.blocks(piece) {
            let start = base + block.offset as usize;
            let data = Bytes::copy_from_slice(&content[start..start + block.length as usize]);
            inflight.insert(block, data);
        }
    }

    fn on_disk(storage: &Storage, piece: PieceIndex) -> Vec<u8> {
        storage.read_piece(piece).unwrap()
    }

    #[tokio::test]
    async fn good_piece_is_written_only_after_it_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let piece = storage.layout().piece_index(1).unwrap();
        let expected = digest([&content[PIECE as usize..]]);
        let budget = MemoryBudget::new(usize::MAX);
        let mut inflight = InFlight::new(storage.clone(), Arc::clone(&budget));
        feed(&mut inflight, piece, &content);
        assert_eq!(budget.buffered(), PIECE as usize);
        assert_eq!(on_disk(&storage, piece), vec![0; PIECE as usize]);
        let job = inflight.take(piece);
        let bytes = job.memory_bytes();
        assert!(job.verify_and_store(expected).await.unwrap());
        budget.release(bytes);
        assert_eq!(budget.buffered(), 0);
        assert_eq!(on_disk(&storage, piece), &content[PIECE as usize..]);
    }

    #[tokio::test]
    async fn corrupt_or_incomplete_piece_fails_and_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, mut content) = setup(dir.path());
        let piece = storage.layout().piece_index(0).unwrap();
        let expected = digest([&content[..PIECE as usize]]);
        content[5] ^= 1;
        let mut inflight = InFlight::new(storage.clone(), MemoryBudget::new(usize::MAX));
        feed(&mut inflight, piece, &content);
        assert!(
            !inflight
                .take(piece)
                .verify_and_store(expected)
                .await
                .unwrap()
        );
        assert_eq!(on_disk(&storage, piece), vec![0; PIECE as usize]);
        // Only the first block: the piece is not covered.
        content[5] ^= 1;
        let first = storage.layout().block(piece, 0).unwrap();
        inflight.insert(
            first,
            Bytes::copy_from_slice(&content[..first.length as usize]),
        );
        assert!(
            !inflight
                .take(piece)
                .verify_and_store(expected)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn blocks_past_the_memory_limit_spill_to_disk_and_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let limit = 20_000;
        let budget = MemoryBudget::new(limit);
        let mut inflight = InFlight::new(storage.clone(), Arc::clone(&budget));
        for piece in storage.layout().pieces() {
            feed(&mut inflight, piece, &content);
            assert!(budget.buffered() <= limit);
        }
        for piece in storage.layout().pieces() {
            let start = storage.layout().piece_offset(piece) as usize;
            let expected = digest([&content[start..start + PIECE as usize]]);
            let job = inflight.take(piece);
            let bytes = job.memory_bytes();
            assert!(job.verify_and_store(expected).await.unwrap());
            budget.release(bytes);
        }
        assert_eq!(budget.buffered(), 0);
        // Renaming a completed file is the session's job: still f.part.
        let part = crate::partial::part_path(&dir.path().join("f"));
        assert_eq!(std::fs::read(part).unwrap(), content);
    }
}
