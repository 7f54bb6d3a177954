//! Test content: random files generated on the spot, deterministic
//! pseudo-random bytes, and the check that a download holds exactly the
//! source bytes.

use std::fs;
use std::path::{Path, PathBuf};

use rand::RngCore;

/// Writes `len` random bytes to `path` (creating parent folders).
pub fn random_file(path: &Path, len: usize) {
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    fs::create_dir_all(path.parent().expect("a parent folder")).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A multi-file folder `root` with files of awkward sizes (not multiples
/// of any piece length, one smaller than a block) in a sub-folder too.
pub fn random_folder(root: &Path) {
    random_file(&root.join("a.bin"), 1_500_003);
    random_file(&root.join("sub/b.bin"), 2_621_440 + 17);
    random_file(&root.join("sub/deeper/c.txt"), 5_000);
    random_file(&root.join("d.bin"), 700_001);
}

/// Relative paths of every file under `root`, sorted.
fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if root.is_file() {
        out.push(PathBuf::new());
    } else {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

/// Whether `copy` (a file or a folder) holds exactly the files and bytes
/// of `source`. Files a client keeps next to the content (partial-file
/// markers) make it differ, so this is only true once a download is done.
pub fn same_content(source: &Path, copy: &Path) -> bool {
    let names = files_under(source);
    if names != files_under(copy) {
        return false;
    }
    names.iter().all(
        |name| match (fs::read(at(source, name)), fs::read(at(copy, name))) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
    )
}

/// `root/name`, or `root` itself for the empty name of a single file.
fn at(root: &Path, name: &Path) -> PathBuf {
    if name.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(name)
    }
}

/// Deterministic pseudo-random bytes, `len` of them: the low byte of each
/// step of xorshift64 from `state` (the same state gives the same bytes;
/// a zero state gives zeros).
pub fn xorshift(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// [`xorshift`] bytes from `seed` mixed with a fixed odd constant, so that
/// every seed, 0 included, gives varied bytes and different seeds
/// different ones.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    xorshift(len, 0x9E37_79B9_7F4A_7C15 ^ seed)
}
