//! Read-ahead for serving blocks. Peers request 16 KiB blocks in order, so
//! each `ReadBlock` reads the whole aligned extent of [`ReadCache::EXTENT`]
//! bytes around its block in one positional read on the blocking pool and
//! keeps it; the next blocks of that extent are slices of the same buffer
//! (no copy, no further disk read or blocking-pool job). A few extents are
//! kept, least recently used evicted first, so memory stays bounded
//! whatever the torrent size. An extent may span pieces still missing when
//! it was read (a leecher serves while it downloads), so the driver calls
//! [`ReadCache::forget`] for each piece written before it may be served.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use minibit_core::piece::BlockRef;
use tokio::sync::OnceCell;

use crate::storage::Storage;

/// One extent, read at most once (concurrent readers wait for the first).
type Extent = Arc<OnceCell<Bytes>>;

/// The extents recently read to serve blocks of one torrent.
#[derive(Debug)]
pub struct ReadCache {
    storage: Storage,
    /// Extents by index (torrent byte offset / [`ReadCache::EXTENT`]).
    extents: HashMap<u64, Extent>,
    /// Extent indexes, least recently used first.
    order: VecDeque<u64>,
    /// Most extents kept.
    capacity: usize,
}

impl ReadCache {
    /// Bytes read at once to serve a block: the aligned extent of the
    /// torrent's content around it (512 KiB, 32 blocks of 16 KiB).
    pub const EXTENT: u64 = 512 * 1024;

    /// Keeps at most `max_bytes` of extents (at least one extent).
    pub fn new(storage: Storage, max_bytes: usize) -> Self {
        let capacity = (max_bytes as u64 / Self::EXTENT).max(1);
        Self {
            storage,
            extents: HashMap::new(),
            order: VecDeque::new(),
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
        }
    }

    #[cfg(test)]
    /// Extents held now.
    pub fn len(&self) -> usize {
        self.extents.len()
    }

    #[cfg(test)]
    /// Whether no extent is held.
    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// A future giving the data of `block`: a slice of its extent, read
    /// from disk the first time it is asked for. A block that straddles two
    /// extents is read on its own.
    ///
    /// # Errors
    /// The future fails with the I/O error of the read (a failed extent
    /// read is retried by the next request).
    pub fn read(&mut self, block: BlockRef) -> impl Future<Output = io::Result<Bytes>> + use<> {
        let storage = self.storage.clone();
        let (offset, index) = self.locate(block);
        let extent = index.map(|index| (index, self.extent(index)));
        async move {
            let Some((index, extent)) = extent else {
                return storage.read_range(offset, block.length.into()).await;
            };
            let start = index * Self::EXTENT;
            let data = extent
                .get_or_try_init(|| {
                    let end = (start + Self::EXTENT).min(storage.layout().total_length());
                    storage.read_range(start, end - start)
                })
                .await?;
            slice(data, offset - start, block)
        }
    }

    /// The data of `block` if its extent is already in memory, at once
    /// (no disk read, no waiting), marked most recently used; `None` when
    /// [`ReadCache::read`] has to read it (or another read of its extent
    /// is still under way).
    pub fn cached(&mut self, block: BlockRef) -> Option<Bytes> {
        let (offset, index) = self.locate(block);
        let index = index?;
        let data = self.extents.get(&index)?.get()?.clone();
        self.touch(index);
        slice(&data, offset - index * Self::EXTENT, block).ok()
    }

    /// The torrent byte offset of `block`, and the index of the extent
    /// holding it whole (`None`: it straddles two, or is empty).
    fn locate(&self, block: BlockRef) -> (u64, Option<u64>) {
        let offset = self.storage.block_offset(block);
        let length = u64::from(block.length);
        let index = offset / Self::EXTENT;
        let whole = length > 0 && (offset + length - 1) / Self::EXTENT == index;
        (offset, whole.then_some(index))
    }

    /// Drops the extents overlapping `length` bytes from torrent byte
    /// `offset` (just written): the next request reads them again.
    /// Requests already under way keep their old copy.
    pub fn forget(&mut self, offset: u64, length: u64) {
        if length == 0 {
            return;
        }
        let (first, last) = (offset / Self::EXTENT, (offset + length - 1) / Self::EXTENT);
        self.order.retain(|index| !(first..=last).contains(index));
        self.extents
            .retain(|index, _| !(first..=last).contains(index));
    }

    /// Marks extent `index` most recently used.
    fn touch(&mut self, index: u64) {
        if self.order.back() == Some(&index) {
            return;
        }
        if let Some(at) = self.order.iter().position(|&i| i == index) {
            self.order.remove(at);
        }
        self.order.push_back(index);
    }

    /// The extent `index`, marked most recently used; inserted (evicting
    /// the least recently used one when full) if absent.
    fn extent(&mut self, index: u64) -> Extent {
        if let Some(extent) = self.extents.get(&index) {
            let extent = Arc::clone(extent);
            self.touch(index);
            return extent;
        }
        if self.extents.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.extents.remove(&oldest);
        }
        let extent = Extent::default();
        self.extents.insert(index, Arc::clone(&extent));
        self.order.push_back(index);
        extent
    }
}

/// `block`'s bytes, `from` bytes into the extent `data`.
fn slice(data: &Bytes, from: u64, block: BlockRef) -> io::Result<Bytes> {
    // In bounds of an extent (512 KiB), so it fits a usize.
    let from = from as usize;
    let to = from + block.length as usize;
    if to > data.len() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(data.slice(from..to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FileEntry;
    use minibit_core::piece::Layout;
    use std::path::PathBuf;

    /// A torrent of two files (so extents straddle a file boundary) whose
    /// length is not a multiple of the extent; byte `i` is `i % 251`.
    fn setup(dir: &std::path::Path) -> (Storage, Vec<u8>) {
        let lengths = [700_000u64, 1_000_000];
        let total: u64 = lengths.iter().sum();
        let content: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let files: Vec<FileEntry> = lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| FileEntry {
                path: PathBuf::from(format!("f{i}")),
                length,
            })
            .collect();
        let layout = Layout::new(1_048_576, &lengths).unwrap();
        let (storage, _) = Storage::open(dir, &files, layout).unwrap();
        storage.write_at(0, &content).unwrap();
        (storage, content)
    }

    fn expected(storage: &Storage, content: &[u8], block: BlockRef) -> Vec<u8> {
        let start = storage.block_offset(block) as usize;
        content[start..start + block.length as usize].to_vec()
    }

    #[tokio::test]
    async fn every_block_reads_back_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let mut cache = ReadCache::new(storage.clone(), 2 * ReadCache::EXTENT as usize);
        let layout = storage.layout().clone();
        for piece in layout.pieces() {
            for block in layout.blocks(piece) {
                let data = cache.read(block).await.unwrap();
                assert_eq!(data, expected(&storage, &content, block));
                assert!(cache.len() <= 2, "the cache holds at most its capacity");
            }
        }
    }

    #[tokio::test]
    async fn blocks_straddling_extents_and_odd_requests_read_right() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let mut cache = ReadCache::new(storage.clone(), 0);
        let layout = storage.layout().clone();
        let piece = layout.piece_index(0).unwrap();
        // Pieces are 1 MiB: a block across 512 KiB straddles the first two
        // extents; the last block of the torrent ends a short extent.
        let last = layout.piece_index(1).unwrap();
        let tail = BlockRef {
            piece: last,
            offset: 651_424 - 1000,
            length: 1000,
        };
        assert_eq!(
            cache.read(tail).await.unwrap(),
            expected(&storage, &content, tail)
        );
        for (offset, length) in [(524_288 - 100, 16_384), (1, 100), (0, 16_384)] {
            let block = BlockRef {
                piece,
                offset,
                length,
            };
            assert_eq!(
                cache.read(block).await.unwrap(),
                expected(&storage, &content, block)
            );
        }
        assert!(cache.len() <= 1);
    }

    #[tokio::test]
    async fn a_rewritten_piece_is_read_again_once_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let mut cache = ReadCache::new(storage.clone(), 8 * ReadCache::EXTENT as usize);
        let layout = storage.layout().clone();
        let piece = layout.piece_index(1).unwrap();
        let first = layout.block(piece, 0).unwrap();
        let last = layout.blocks(piece).last().unwrap();
        assert_eq!(
            cache.read(first).await.unwrap(),
            expected(&storage, &content, first)
        );
        // The piece is downloaded and written while its extent is cached.
        let start = layout.piece_offset(piece);
        let fresh = vec![7u8; layout.piece_size(piece) as usize];
        storage.write_at(start, &fresh).unwrap();
        cache.forget(start, fresh.len() as u64);
        assert!(cache.is_empty());
        for block in [first, last] {
            assert_eq!(
                cache.read(block).await.unwrap(),
                vec![7u8; block.length as usize]
            );
        }
    }

    #[tokio::test]
    async fn cached_serves_only_extents_already_read() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let mut cache = ReadCache::new(storage.clone(), 8 * ReadCache::EXTENT as usize);
        let layout = storage.layout().clone();
        let piece = layout.piece_index(0).unwrap();
        let first = layout.block(piece, 0).unwrap();
        let second = layout.block(piece, 1).unwrap();
        assert_eq!(cache.cached(second), None, "nothing read yet");
        cache.read(first).await.unwrap();
        assert_eq!(
            cache.cached(second).unwrap(),
            expected(&storage, &content, second)
        );
        // Straddling extents 0 and 1: never from the cache.
        let straddling = BlockRef {
            piece,
            offset: 524_288 - 100,
            length: 16_384,
        };
        assert_eq!(cache.cached(straddling), None);
        cache.forget(0, 1);
        assert_eq!(cache.cached(second), None, "forgotten");
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_extent() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, content) = setup(dir.path());
        let mut cache = ReadCache::new(storage.clone(), 8 * ReadCache::EXTENT as usize);
        let layout = storage.layout().clone();
        let piece = layout.piece_index(0).unwrap();
        let blocks: Vec<BlockRef> = layout
            .blocks(piece)
            .filter(|b| u64::from(b.offset) < ReadCache::EXTENT)
            .collect();
        let reads: Vec<_> = blocks.iter().map(|&b| cache.read(b)).collect();
        assert_eq!(cache.len(), 1, "the first 512 KiB of piece 0 are extent 0");
        let results = futures::future::join_all(reads).await;
        let mut base = None;
        for (block, data) in blocks.iter().zip(results) {
            let data = data.unwrap();
            assert_eq!(data, expected(&storage, &content, *block));
            // Slices of one buffer: each block's pointer is the first's plus its offset.
            let first = *base.get_or_insert(data.as_ptr() as usize);
            assert_eq!(data.as_ptr() as usize, first + block.offset as usize);
        }
    }
}
