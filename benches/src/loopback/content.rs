//! The file a benchmark moves (pseudo-random bytes from a fixed seed, so
//! nothing compresses or deduplicates it) and the check of every copy.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bytes generated or compared per step.
const CHUNK: usize = 1 << 20;

/// Writes `size` pseudo-random bytes to `path`.
///
/// # Errors
/// When the file cannot be written.
pub fn generate(path: &Path, size: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(size);
    let mut out =
        BufWriter::new(File::create(path).with_context(|| format!("{}", path.display()))?);
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).expect("chunk fits usize");
        rng.fill_bytes(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Makes `work/seed/bench.bin`, the file a bench seeds, of `size`
/// pseudo-random bytes ([`generate`]), and returns its path.
///
/// # Errors
/// When the folder or the file cannot be written.
pub fn seed_file(work: &Path, size: u64) -> Result<PathBuf> {
    let seed_dir = work.join("seed");
    std::fs::create_dir_all(&seed_dir)?;
    let file = seed_dir.join("bench.bin");
    generate(&file, size)?;
    Ok(file)
}

/// Checks that `copy` holds exactly the bytes of `original`.
///
/// # Errors
/// When either cannot be read or they differ.
pub fn check_copy(original: &Path, copy: &Path) -> Result<()> {
    let open = |p: &Path| File::open(p).with_context(|| format!("{}", p.display()));
    let (mut theirs, mut ours) = (open(original)?, open(copy)?);
    ensure!(
        theirs.metadata()?.len() == ours.metadata()?.len(),
        "{} has the wrong length",
        copy.display()
    );
    let (mut want, mut got) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut theirs, &mut want)?;
        let m = read_full(&mut ours, &mut got)?;
        ensure!(
            n == m && want[..n] == got[..m],
            "{} differs from the original near byte {offset}",
            copy.display()
        );
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_matches_and_a_changed_byte_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        generate(&a, 3 * CHUNK as u64 + 5).unwrap();
        std::fs::copy(&a, &b).unwrap();
        check_copy(&a, &b).unwrap();
        let mut bytes = std::fs::read(&b).unwrap();
        bytes[CHUNK + 7] ^= 1;
        std::fs::write(&b, &bytes).unwrap();
        assert!(check_copy(&a, &b).is_err());
        bytes.pop();
        std::fs::write(&b, &bytes).unwrap();
        assert!(check_copy(&a, &b).is_err());
    }
}
