//! The torrent's files on disk: preallocated with `set_len`, read and written
//! with positional I/O (`pwrite` through [`FileExt`]; `pread` through
//! `rustix`, into buffers not zeroed first), never mapped.
//! A file is named `NAME.part` until all its pieces are verified
//! ([`crate::partial`]), and locked for as long as it is open
//! (an exclusive advisory `flock`): one torrent at a time writes it.
//!
//! Selective download: a skipped file is never created or written. Its
//! bytes that share a piece with a wanted file still have to be stored
//! (the piece is downloaded and verified whole), so a skipped file is
//! backed by a sparse part file in the state folder instead
//! ([`crate::skipped`], libtorrent's approach); wanting it again later
//! moves that part file to `NAME.part` when the files are opened.
//!
//! A torrent's content is the concatenation of its files (BEP 3); a piece or
//! a block may straddle file boundaries, so every access goes through
//! [`Layout::spans`]. The synchronous methods block; the `async` ones run the
//! same work on tokio's blocking pool so the event loop never waits for the
//! disk. [`Storage`] itself holds no data: memory use is only the buffers
//! the caller passes in. Writes are serialised by a lock (a whole piece's
//! blocks under one acquisition): parallel `pwrite`s to one file only spin
//! on the file system's inode lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::piece::{BlockRef, Layout, PieceIndex};
use rustix::buffer::spare_capacity;

use crate::file_lock::lock_exclusive;
use crate::partial::{PartFiles, part_path};
use crate::skipped;

/// One file of a torrent: where it goes below the output folder and its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path below the output folder, already sanitised (no `..`,
    /// no absolute components).
    pub path: PathBuf,
    /// Length in bytes.
    pub length: u64,
}

/// The open files of one torrent. Cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: Layout,
    files: Vec<File>,
    paths: Vec<PathBuf>,
    /// Which files are still `NAME.part`.
    parts: Mutex<PartFiles>,
    /// Held while writing (see the module docs).
    write_lock: Mutex<()>,
}

/// What [`Storage::open_selected`] found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// At least one file already existed with some content: pieces may be
    /// on disk and need verifying (resume).
    pub had_data: bool,
    /// Each file's size and modification time as found, before it was
    /// resized (`None`: created by this open). Compared with the resume
    /// data's ([`crate::resume_data`]).
    pub found: Vec<Option<FileStamp>>,
}

/// A file's size and modification time, as the resume data records them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    /// Length in bytes.
    pub size: u64,
    /// Modification time: seconds since the Unix epoch.
    pub mtime_s: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_ns: i64,
}

impl FileStamp {
    /// The stamp of `metadata`.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: metadata.len(),
            mtime_s: metadata.mtime(),
            mtime_ns: metadata.mtime_nsec(),
        }
    }
}

/// Which files of a torrent are skipped (selective download) and where
/// their part files go.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Per file, in torrent order: skipped (missing entries: wanted).
    pub skipped: Vec<bool>,
    /// Folder of the skipped files' part files (created when needed).
    pub parts_dir: PathBuf,
}

impl Selection {
    fn is_skipped(&self, file: usize) -> bool {
        self.skipped.get(file).copied().unwrap_or(false)
    }
}

impl Storage {
    /// [`Storage::open_selected`] with every file wanted (tests).
    #[cfg(test)]
    pub fn open(
        root: &Path,
        files: &[FileEntry],
        layout: Layout,
    ) -> io::Result<(Self, OpenReport)> {
        Self::open_selected(root, files, layout, &Selection::default())
    }

    /// Opens (creating as needed) every file of the torrent below `root`,
    /// creating parent folders, locking each file (one torrent at a time
    /// writes it) and then setting each file's length to the torrent's
    /// (sparse preallocation). A file found as NAME is opened as NAME
    /// (complete or partial data); else `NAME.part` is opened, or created
    /// (empty files are created as NAME: they have no piece to wait for).
    ///
    /// The files `selection` skips are backed by part files in
    /// `selection.parts_dir` (nothing is created under `root` for them). A
    /// wanted file with no data under `root` whose part file exists (it was
    /// skipped before) gets that part file moved to `NAME.part`, keeping
    /// the bytes already downloaded.
    ///
    /// # Errors
    /// `InvalidInput` when `files` does not match `layout` (count or total
    /// length) or a path is not relative; `ResourceBusy` naming the file
    /// when another session or process holds one of the files (the files
    /// this call created are removed again, nothing is resized); any I/O
    /// error from creating the folders or files, from creating
    /// `parts_dir` or from moving a part file.
    pub fn open_selected(
        root: &Path,
        files: &[FileEntry],
        layout: Layout,
        selection: &Selection,
    ) -> io::Result<(Self, OpenReport)> {
        let total: u64 = files.iter().map(|f| f.length).sum();
        if files.len() != layout.file_count() || total != layout.total_length() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file list does not match the torrent layout",
            ));
        }
        if let Some(entry) = files.iter().find(|f| !f.path.is_relative()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file path {} is not relative", entry.path.display()),
            ));
        }
        let mut opened: Vec<Opened> = Vec::with_capacity(files.len());
        for (index, entry) in files.iter().enumerate() {
            let path = root.join(&entry.path);
            let parts = skipped::part_file(&selection.parts_dir, index);
            let result = if selection.is_skipped(index) {
                open_skipped(&parts, &path)
            } else {
                skipped::unskip(&parts, &path, entry.length)
                    .and_then(|()| open_locked(&path, entry.length))
            };
            match result {
                Ok(file) => opened.push(file),
                Err(e) => {
                    for file in opened.iter().filter(|f| f.created) {
                        let _ = std::fs::remove_file(&file.path);
                    }
                    return Err(e);
                }
            }
        }
        let mut had_data = false;
        let mut found = Vec::with_capacity(files.len());
        for (file, entry) in opened.iter().zip(files) {
            let metadata = file.file.metadata()?;
            let current = metadata.len();
            found.push((!file.created).then(|| FileStamp::of(&metadata)));
            had_data |= current > 0;
            if current != entry.length {
                file.file.set_len(entry.length)?;
            }
        }
        let partial = opened.iter().map(|f| f.partial).collect();
        let paths: Vec<PathBuf> = files.iter().map(|f| root.join(&f.path)).collect();
        let parts = PartFiles::new(&layout, paths.clone(), partial);
        let storage = Self {
            inner: Arc::new(Inner {
                layout,
                files: opened.into_iter().map(|f| f.file).collect(),
                paths,
                parts: Mutex::new(parts),
                write_lock: Mutex::new(()),
            }),
        };
        Ok((storage, OpenReport { had_data, found }))
    }

    /// Each open file's size and modification time now (through the open
    /// handles, so a rename from `NAME.part` changes nothing).
    ///
    /// # Errors
    /// I/O errors from `fstat`.
    pub fn stamps(&self) -> io::Result<Vec<FileStamp>> {
        self.inner
            .files
            .iter()
            .map(|file| Ok(FileStamp::of(&file.metadata()?)))
            .collect()
    }

    /// `have` holds the verified pieces (after resume): renames every
    /// `NAME.part` file whose pieces are all in it (blocking).
    ///
    /// # Errors
    /// A failed rename.
    pub fn complete_files(&self, have: &Bitfield) -> io::Result<()> {
        self.lock_parts().reset(&self.inner.layout, have)
    }

    /// `piece` was verified: renames the `NAME.part` files it completes
    /// (blocking, a rename per completed file).
    ///
    /// # Errors
    /// A failed rename (the file stays `NAME.part`).
    pub fn piece_verified(&self, piece: PieceIndex) -> io::Result<()> {
        self.lock_parts().piece_verified(&self.inner.layout, piece)
    }

    #[cfg(test)]
    /// Whether file `index` (torrent order) is still named `NAME.part`.
    pub fn is_partial(&self, index: usize) -> bool {
        self.lock_parts().is_partial(index)
    }

    fn lock_parts(&self) -> std::sync::MutexGuard<'_, PartFiles> {
        // Every update leaves the state consistent before it can fail.
        self.inner
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The torrent's geometry.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Full paths of the files, in torrent order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.inner.paths
    }

    /// Writes `data` starting at torrent byte `offset` (blocking).
    ///
    /// # Errors
    /// I/O errors, `WriteZero` past the end of the torrent.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let _writing = self.lock_writes();
        self.write_at_locked(offset, data)
    }

    /// Writes each `(block, data)` pair in turn under one acquisition of
    /// the write lock (blocking). One `pwrite` per block on purpose: on
    /// Linux 6.18 / ext4 a page-cache write of 16 KiB cost a fifth of the
    /// kernel time per byte of one of 1 MiB (`dd` into a new file, 0.43-0.51
    /// s against 2.2-2.5 s of system time per GiB, 2026-12-07), so one
    /// vectored write per piece was slower.
    ///
    /// # Errors
    /// I/O errors, `WriteZero` past the end of the torrent.
    pub fn write_blocks_at(&self, blocks: &[(BlockRef, Bytes)]) -> io::Result<()> {
        let _writing = self.lock_writes();
        for (block, data) in blocks {
            self.write_at_locked(self.block_offset(*block), data)?;
        }
        Ok(())
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        // The lock guards no data, so a panicked writer leaves nothing broken.
        self.inner
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_at_locked(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut pos = 0usize;
        for span in self.inner.layout.spans(offset, data.len() as u64) {
            let end = pos + span.length as usize;
            self.inner.files[span.file].write_all_at(&data[pos..end], span.offset)?;
            pos = end;
        }
        if pos == data.len() {
            Ok(())
        } else {
            Err(io::ErrorKind::WriteZero.into())
        }
    }

    /// Torrent byte offset of the first byte of `block`.
    pub fn block_offset(&self, block: BlockRef) -> u64 {
        self.inner.layout.piece_offset(block.piece) + u64::from(block.offset)
    }

    /// Reads the whole of `piece` (blocking; `piece_size` bytes of memory).
    ///
    /// # Errors
    /// I/O errors, `UnexpectedEof` when a file is shorter than the layout.
    pub fn read_piece(&self, piece: PieceIndex) -> io::Result<Vec<u8>> {
        let layout = &self.inner.layout;
        self.read_vec(
            layout.piece_offset(piece),
            layout.piece_size(piece) as usize,
        )
    }

    /// Reads `length` bytes from torrent byte `offset` into a new buffer
    /// (blocking). The bytes are read straight into the buffer's unused
    /// capacity: nothing is zeroed first (on a seeder, zeroing every
    /// 512 KiB read-ahead buffer cost a tenth of its CPU).
    ///
    /// # Errors
    /// I/O errors, `UnexpectedEof` past the end of the torrent or of a file.
    pub fn read_vec(&self, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(length);
        for span in self.inner.layout.spans(offset, length as u64) {
            let file = &self.inner.files[span.file];
            let end = buf.len() + span.length as usize;
            let mut at = span.offset;
            while buf.len() < end {
                let before = buf.len();
                // Fills the whole spare capacity at most; a span that is not
                // the last one ends at its file's end, and anything read past
                // the span is cut off again below.
                let read = match rustix::io::pread(file, spare_capacity(&mut buf), at) {
                    Ok(read) => read,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                };
                if read == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.truncate(end);
                at += (buf.len() - before) as u64;
            }
        }
        if buf.len() == length {
            Ok(buf)
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    /// Reads `length` bytes from torrent byte `offset` on the blocking pool.
    ///
    /// # Errors
    /// I/O errors, `UnexpectedEof` past the end of the torrent.
    pub async fn read_range(&self, offset: u64, length: u64) -> io::Result<Bytes> {
        let this = self.clone();
        let length = usize::try_from(length).map_err(|_| io::ErrorKind::OutOfMemory)?;
        blocking(move || this.read_vec(offset, length).map(Bytes::from)).await
    }

    #[cfg(test)]
    /// Writes each `(block, data)` pair on the blocking pool, in one job.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn write_blocks(&self, blocks: Vec<(BlockRef, Bytes)>) -> io::Result<()> {
        let this = self.clone();
        blocking(move || this.write_blocks_at(&blocks)).await
    }
}

/// A file of the torrent, opened and locked by [`Storage::open_selected`].
struct Opened {
    file: File,
    /// The path it was opened at (NAME or `NAME.part`).
    path: PathBuf,
    /// Named `NAME.part`.
    partial: bool,
    /// Created by this open (removed again if a later file is refused).
    created: bool,
}

/// Opens (creating) and locks the part file `parts` of a skipped file
/// whose final path is `path` (named in errors).
fn open_skipped(parts: &Path, path: &Path) -> io::Result<Opened> {
    if let Some(parent) = parts.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let created = !parts.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(parts)?;
    lock_exclusive(&file, path)?;
    Ok(Opened {
        file,
        path: parts.to_owned(),
        partial: false,
        created,
    })
}

/// Opens and locks the file at `path` (final name), preferring an existing
/// NAME, then an existing `NAME.part`, else creating `NAME.part` (NAME for
/// an empty file).
fn open_locked(path: &Path, length: u64) -> io::Result<Opened> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let part = part_path(path);
    let (at, partial) = if path.exists() || (length == 0 && !part.exists()) {
        (path.to_owned(), false)
    } else {
        (part, true)
    };
    let created = !at.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&at)?;
    // Refused: the holder opened the same file, which stays.
    lock_exclusive(&file, path)?;
    Ok(Opened {
        file,
        path: at,
        partial,
        created,
    })
}

/// Runs `job` on tokio's blocking pool; a panicked job becomes an I/O error.
pub(crate) async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(job)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(lengths: &[(&str, u64)]) -> Vec<FileEntry> {
        lengths
            .iter()
            .map(|&(p, length)| FileEntry {
                path: PathBuf::from(p),
                length,
            })
            .collect()
    }

    fn layout_of(piece_length: u64, files: &[FileEntry]) -> Layout {
        let lengths: Vec<u64> = files.iter().map(|f| f.length).collect();
        Layout::new(piece_length, &lengths).unwrap()
    }

    #[test]
    fn open_preallocates_every_file_as_part_and_creates_folders() {
        let dir = tempfile::tempdir().unwrap();
        let files = entries(&[("t/a.bin", 1000), ("t/sub/b.bin", 0), ("t/c.bin", 70_000)]);
        let (storage, report) =
            Storage::open(dir.path(), &files, layout_of(32_768, &files)).unwrap();
        assert!(!report.had_data);
        for (i, (entry, path)) in files.iter().zip(storage.paths()).enumerate() {
            let at = if entry.length == 0 {
                path.clone()
            } else {
                part_path(path)
            };
            assert_eq!(std::fs::metadata(at).unwrap().len(), entry.length);
            assert_eq!(storage.is_partial(i), entry.length > 0);
            assert_eq!(
                path.exists(),
                entry.length == 0,
                "nothing named NAME at 0 %"
            );
        }
        assert!(dir.path().join("t/sub/b.bin").exists());
        drop(storage);
        let (_, again) = Storage::open(dir.path(), &files, layout_of(32_768, &files)).unwrap();
        assert!(again.had_data);
    }

    #[test]
    fn a_file_is_renamed_once_every_piece_holding_its_bytes_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        // 8-byte pieces: piece 1 spans a (8..10) and b (0..6), piece 2 spans b and c.
        let files = entries(&[("a", 10), ("b", 7), ("c", 15)]);
        let layout = layout_of(8, &files);
        let (storage, _) = Storage::open(dir.path(), &files, layout.clone()).unwrap();
        let piece = |i| layout.piece_index(i).unwrap();
        let named = |name: &str| dir.path().join(name).exists();
        storage.piece_verified(piece(0)).unwrap();
        assert!(!named("a"), "a still misses piece 1");
        storage.piece_verified(piece(2)).unwrap();
        assert!(!named("b") && !named("c"));
        storage.piece_verified(piece(1)).unwrap();
        assert!(named("a") && named("b") && !named("a.part") && !named("b.part"));
        assert!(!named("c"), "c still misses piece 3");
        storage
            .write_at(0, b"written through the renamed file")
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"written th");
        drop(storage);

        // Resume: a and b are found as NAME, c as c.part; a bitfield with
        // every piece completes c.
        let (storage, report) = Storage::open(dir.path(), &files, layout.clone()).unwrap();
        assert!(report.had_data);
        assert!(!storage.is_partial(0) && storage.is_partial(2));
        storage.complete_files(&Bitfield::full(4)).unwrap();
        assert!(named("c") && !named("c.part"));
    }

    #[test]
    fn a_locked_file_refuses_a_second_open_which_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let first = entries(&[("shared.bin", 100)]);
        let (held, _) = Storage::open(dir.path(), &first, layout_of(32, &first)).unwrap();
        // Another torrent: a new file first, then the clashing one.
        let second = entries(&[("new.bin", 50), ("shared.bin", 100)]);
        let err = Storage::open(dir.path(), &second, layout_of(32, &second)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
        assert!(err.to_string().contains("shared.bin"), "{err}");
        assert!(
            !dir.path().join("new.bin.part").exists(),
            "created file removed"
        );
        let err = Storage::open(dir.path(), &first, layout_of(32, &first)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "same torrent too");
        drop(held);
        Storage::open(dir.path(), &second, layout_of(32, &second)).unwrap();
    }

    #[test]
    fn writes_across_file_boundaries_land_in_the_right_files() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let files = entries(&[("a", 10), ("empty", 0), ("b", 7), ("c", 15)]);
        let (storage, _) = Storage::open(dir.path(), &files, layout_of(8, &files)).unwrap();
        let data: Vec<u8> = (0..32u8).collect();
        // Write the torrent in three uneven chunks that straddle files.
        storage.write_at(0, &data[..9]).unwrap();
        storage.write_at(9, &data[9..20]).unwrap();
        storage.write_at(20, &data[20..]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a.part")).unwrap(),
            &data[..10]
        );
        assert_eq!(
            std::fs::read(dir.path().join("b.part")).unwrap(),
            &data[10..17]
        );
        assert_eq!(
            std::fs::read(dir.path().join("c.part")).unwrap(),
            &data[17..]
        );
        assert_eq!(std::fs::read(dir.path().join("empty")).unwrap(), b"");
        let piece = storage.layout().piece_index(1).unwrap();
        assert_eq!(storage.read_piece(piece).unwrap(), &data[8..16]);
        let last = storage.layout().piece_index(3).unwrap();
        assert_eq!(storage.read_piece(last).unwrap(), &data[24..]);
        // One read over every file, and again once the first file grew
        // past its length behind our back: its extra bytes are not read.
        assert_eq!(storage.read_vec(3, 25).unwrap(), &data[3..28]);
        std::fs::File::options()
            .append(true)
            .open(dir.path().join("a.part"))
            .unwrap()
            .write_all(&[0xff; 40])
            .unwrap();
        assert_eq!(storage.read_vec(0, 32).unwrap(), data);
    }

    #[test]
    fn many_blocks_with_a_gap_across_a_file_boundary_write_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let files = entries(&[("a", 1500), ("b", 1700)]);
        let (storage, _) = Storage::open(dir.path(), &files, layout_of(4096, &files)).unwrap();
        let piece = storage.layout().piece_index(0).unwrap();
        let byte = |i: u32| (i % 251) as u8 + 1;
        // 3000 one-byte blocks: 2000 across the file boundary at 1500, a
        // gap of 100, then 900 more.
        let blocks: Vec<(BlockRef, Bytes)> = (0..2000)
            .chain(2100..3000)
            .map(|offset| {
                let block = BlockRef {
                    piece,
                    offset,
                    length: 1,
                };
                (block, Bytes::from(vec![byte(offset)]))
            })
            .collect();
        storage.write_blocks_at(&blocks).unwrap();
        let on_disk = storage.read_vec(0, 3200).unwrap();
        for (i, &got) in on_disk.iter().enumerate() {
            let i = i as u32;
            let want = if (2000..2100).contains(&i) || i >= 3000 {
                0
            } else {
                byte(i)
            };
            assert_eq!(got, want, "byte {i}");
        }
    }

    #[test]
    fn access_past_the_end_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = entries(&[("a", 10)]);
        let (storage, _) = Storage::open(dir.path(), &files, layout_of(8, &files)).unwrap();
        assert_eq!(
            storage.write_at(8, &[0; 4]).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
        assert_eq!(
            storage.read_vec(9, 4).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A file cut short behind our back: the read stops at its end.
        storage.write_at(0, &[7; 10]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("a.part"))
            .unwrap()
            .set_len(6)
            .unwrap();
        assert_eq!(storage.read_vec(0, 6).unwrap(), [7; 6]);
        assert_eq!(
            storage.read_vec(4, 4).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn mismatched_file_list_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = entries(&[("a", 10)]);
        let other = entries(&[("a", 11)]);
        let err = Storage::open(dir.path(), &files, layout_of(8, &other)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let absolute = entries(&[("/tmp/a", 10)]);
        let err = Storage::open(dir.path(), &absolute, layout_of(8, &absolute)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn async_block_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let files = entries(&[("a", 20_000), ("b", 20_000)]);
        let layout = layout_of(32_768, &files);
        let (storage, _) = Storage::open(dir.path(), &files, layout.clone()).unwrap();
        let piece = layout.piece_index(0).unwrap();
        let blocks: Vec<(BlockRef, Bytes)> = layout
            .blocks(piece)
            .map(|b| {
                (
                    b,
                    Bytes::from(vec![b.index_in_piece() as u8 + 1; b.length as usize]),
                )
            })
            .collect();
        storage.write_blocks(blocks.clone()).await.unwrap();
        for (block, data) in blocks {
            let read = storage
                .read_range(storage.block_offset(block), block.length.into())
                .await;
            assert_eq!(read.unwrap(), data);
        }
    }
}
