//! What an add request asks for, checked before anything touches the
//! disk: the save folder (inside the download root, never outside) and the
//! file selection (globs or file indices). A leaf module.

use std::path::{Component, Path, PathBuf};

use minibit_core::metainfo::Metainfo;
use minibit_core::priority::Priority;
use serde::Deserialize;

use super::error::DaemonError;
use crate::file_select;

/// One entry of an add request's file selection.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FileSelector {
    /// A file's index in the torrent (what `minibit-peer files` prints).
    Index(usize),
    /// A glob over the paths inside the torrent (see [`crate::file_select`]).
    Glob(String),
}

/// A torrent to add to a [`super::Daemon`].
#[derive(Clone, Debug, Default)]
pub struct AddRequest {
    /// The `.torrent` file, or the text of a magnet link (`magnet:?...`,
    /// BEP 9: the metadata is fetched from peers).
    pub torrent: Vec<u8>,
    /// Folder under the download root the content goes in (relative;
    /// `None`: the root itself).
    pub save_dir: Option<String>,
    /// Files to download (empty: every file).
    pub only: Vec<FileSelector>,
    /// Add it paused.
    pub paused: bool,
}

/// The folder `save_dir` names under `root`: a relative path without `..`.
///
/// # Errors
/// [`DaemonError::SaveDirOutside`] for an absolute path or one with `..`.
pub fn save_dir(root: &Path, save_dir: Option<&str>) -> Result<PathBuf, DaemonError> {
    let Some(relative) = save_dir else {
        return Ok(root.to_owned());
    };
    let mut dir = root.to_owned();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => dir.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(DaemonError::SaveDirOutside(relative.to_owned()));
            }
        }
    }
    Ok(dir)
}

/// The file priorities for `only`: every file some selector names is
/// [`Priority::Normal`], the others [`Priority::Skip`]; an empty `only`
/// selects every file.
///
/// # Errors
/// [`DaemonError::Selection`] for a glob that does not parse or matches
/// nothing, or an index past the last file.
pub fn priorities(
    metainfo: &Metainfo,
    only: &[FileSelector],
) -> Result<Vec<Priority>, DaemonError> {
    let files = metainfo.info().files().len();
    if only.is_empty() {
        return Ok(vec![Priority::Normal; files]);
    }
    let mut priorities = vec![Priority::Skip; files];
    let mut globs = Vec::new();
    for selector in only {
        match selector {
            FileSelector::Index(i) if *i < files => priorities[*i] = Priority::Normal,
            FileSelector::Index(i) => {
                return Err(DaemonError::Selection(format!(
                    "file index {i} is past the last file ({files} files)"
                )));
            }
            FileSelector::Glob(glob) => globs.push(glob.clone()),
        }
    }
    if !globs.is_empty() {
        let matched = file_select::only(metainfo, &globs)
            .map_err(|e| DaemonError::Selection(e.to_string()))?;
        for (priority, glob) in priorities.iter_mut().zip(matched) {
            if glob.is_wanted() {
                *priority = Priority::Normal;
            }
        }
    }
    Ok(priorities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_dirs_stay_inside_the_root() {
        let root = Path::new("/srv/dl");
        assert_eq!(save_dir(root, None).unwrap(), root);
        assert_eq!(
            save_dir(root, Some("films/./2024")).unwrap(),
            Path::new("/srv/dl/films/2024")
        );
        for escape in ["../x", "a/../../x", "/etc", "a/.."] {
            assert!(
                matches!(
                    save_dir(root, Some(escape)),
                    Err(DaemonError::SaveDirOutside(_))
                ),
                "{escape}"
            );
        }
    }

    #[test]
    fn globs_and_indices_select_files() {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("album");
        std::fs::create_dir(&content).unwrap();
        for name in ["a.jpg", "b.jpg", "c.txt"] {
            std::fs::write(content.join(name), name).unwrap();
        }
        let metainfo = minibit_core::metainfo::MetainfoBuilder::new(&content)
            .build()
            .unwrap();
        let all = priorities(&metainfo, &[]).unwrap();
        assert_eq!(all, [Priority::Normal; 3]);
        let some = priorities(
            &metainfo,
            &[FileSelector::Glob("a.*".into()), FileSelector::Index(2)],
        )
        .unwrap();
        assert_eq!(some, [Priority::Normal, Priority::Skip, Priority::Normal]);
        assert!(priorities(&metainfo, &[FileSelector::Index(3)]).is_err());
        assert!(priorities(&metainfo, &[FileSelector::Glob("*.mkv".into())]).is_err());
    }
}
