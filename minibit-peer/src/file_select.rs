//! `--only GLOB`: which files of a torrent to download (selective
//! download). Each glob is matched against every file's path inside the
//! torrent (components joined by `/`, without the torrent's folder name;
//! a single-file torrent's path is its name), with `globset`'s syntax
//! (`*` and `?` also match `/`, `**`, `{a,b}`, `[ab]`).

use globset::{Glob, GlobSetBuilder};
use minibit_core::metainfo::Metainfo;
use minibit_core::priority::Priority;
use thiserror::Error;

/// Why a selection could not be made.
#[derive(Debug, Error)]
pub enum SelectError {
    /// A glob does not parse.
    #[error("--only {glob:?} is not a valid glob")]
    BadGlob {
        /// The glob as given.
        glob: String,
        /// Why.
        source: globset::Error,
    },
    /// A glob matches no file of the torrent (a typo would otherwise
    /// download nothing).
    #[error(
        "--only {glob:?} matches no file of the torrent (`minibit-peer files SOURCE` lists them)"
    )]
    NoMatch {
        /// The glob as given.
        glob: String,
    },
}

/// A file's path inside the torrent, components joined by `/`.
pub fn path_in_torrent(metainfo: &Metainfo, file: usize) -> String {
    metainfo.info().files()[file].path.join("/")
}

/// The file priorities for `--only globs`: [`Priority::Normal`] for every
/// file that some glob matches, [`Priority::Skip`] for the others; no glob
/// at all selects every file.
///
/// # Errors
/// [`SelectError`] for a glob that does not parse or matches no file.
pub fn only(metainfo: &Metainfo, globs: &[String]) -> Result<Vec<Priority>, SelectError> {
    let files = metainfo.info().files().len();
    if globs.is_empty() {
        return Ok(vec![Priority::Normal; files]);
    }
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        let parsed = Glob::new(glob).map_err(|source| SelectError::BadGlob {
            glob: glob.clone(),
            source,
        })?;
        set.add(parsed);
    }
    let set = set.build().map_err(|source| SelectError::BadGlob {
        glob: globs.join(" "),
        source,
    })?;
    let mut matched = vec![false; globs.len()];
    let priorities = (0..files)
        .map(|file| {
            let hits = set.matches(path_in_torrent(metainfo, file));
            for &glob in &hits {
                matched[glob] = true;
            }
            if hits.is_empty() {
                Priority::Skip
            } else {
                Priority::Normal
            }
        })
        .collect();
    if let Some(unused) = matched.iter().position(|m| !m) {
        return Err(SelectError::NoMatch {
            glob: globs[unused].clone(),
        });
    }
    Ok(priorities)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minibit_core::metainfo::MetainfoBuilder;

    fn album() -> (tempfile::TempDir, Metainfo) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024")).unwrap();
        for name in ["a.jpg", "b.png", "2024/c.jpg", "notes.txt"] {
            std::fs::write(root.join(name), name.as_bytes()).unwrap();
        }
        let metainfo = MetainfoBuilder::new(&root)
            .piece_length(Some(16_384))
            .build()
            .unwrap();
        (dir, metainfo)
    }

    fn selected(metainfo: &Metainfo, priorities: &[Priority]) -> Vec<String> {
        (0..priorities.len())
            .filter(|&i| priorities[i] == Priority::Normal)
            .map(|i| path_in_torrent(metainfo, i))
            .collect()
    }

    #[test]
    fn globs_select_files_by_their_path_inside_the_torrent() {
        let (_dir, metainfo) = album();
        let all = only(&metainfo, &[]).unwrap();
        assert_eq!(selected(&metainfo, &all).len(), 4);
        let jpg = only(&metainfo, &["*.jpg".into()]).unwrap();
        assert_eq!(selected(&metainfo, &jpg), ["2024/c.jpg", "a.jpg"]);
        let two = only(&metainfo, &["a.jpg".into(), "notes.txt".into()]).unwrap();
        assert_eq!(selected(&metainfo, &two), ["a.jpg", "notes.txt"]);
        let folder = only(&metainfo, &["2024/**".into()]).unwrap();
        assert_eq!(selected(&metainfo, &folder), ["2024/c.jpg"]);
    }

    #[test]
    fn a_bad_or_unmatched_glob_is_an_error_naming_it() {
        let (_dir, metainfo) = album();
        let err = only(&metainfo, &["a.jpg".into(), "*.gif".into()]).unwrap_err();
        assert!(
            matches!(&err, SelectError::NoMatch { glob } if glob == "*.gif"),
            "{err}"
        );
        let err = only(&metainfo, &["[".into()]).unwrap_err();
        assert!(err.to_string().contains("not a valid glob"), "{err}");
    }
}
