//! Path sanitising: a torrent's `name` and file `path` components become
//! file names under the caller's output folder, so each must be one plain
//! name that cannot climb out of it on any platform.

use std::collections::HashSet;
use std::path::{Component, Path};

use super::error::PathError;

/// Checks one component given as raw bytes and returns it as a `String`.
///
/// # Errors
/// [`PathError::NotUtf8`], or any error of [`check_component`].
pub fn component_from_bytes(bytes: &[u8]) -> Result<String, PathError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;
    check_component(text)?;
    Ok(text.to_owned())
}

/// Checks that `component` is one plain file name: not empty, not `.` or
/// `..`, no `/`, `\` or NUL inside, no Windows drive prefix (`C:`), and read
/// by the host platform as a single normal component.
///
/// # Errors
/// The matching [`PathError`] variant.
pub fn check_component(component: &str) -> Result<(), PathError> {
    let owned = || component.to_owned();
    match component {
        "" => return Err(PathError::EmptyComponent),
        "." => return Err(PathError::CurrentDir),
        ".." => return Err(PathError::ParentDir),
        _ => {}
    }
    if component.starts_with(['/', '\\']) {
        return Err(PathError::Absolute(owned()));
    }
    if component.contains(['/', '\\']) {
        return Err(PathError::Separator(owned()));
    }
    if component.contains('\0') {
        return Err(PathError::Nul(owned()));
    }
    let bytes = component.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(PathError::DrivePrefix(owned()));
    }
    let mut parts = Path::new(component).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(PathError::NotPlain(owned())),
    }
}

/// Checks that no two file paths are equal and that no file's path is a
/// folder holding another file (`a` and `a/b`), which would make two files
/// fight over one place on disk.
///
/// # Errors
/// [`PathError::Clash`] naming the first clashing path.
pub fn check_no_clashes<'a>(
    paths: impl IntoIterator<Item = &'a [String]>,
) -> Result<(), PathError> {
    let paths: Vec<&[String]> = paths.into_iter().collect();
    let mut files = HashSet::with_capacity(paths.len());
    for &path in &paths {
        if !files.insert(path) {
            return Err(PathError::Clash(path.join("/")));
        }
    }
    for &path in &paths {
        if let Some(folder) = (1..path.len())
            .map(|n| &path[..n])
            .find(|p| files.contains(p))
        {
            return Err(PathError::Clash(folder.join("/")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_unsafe_component_has_its_error() {
        let cases: &[(&str, PathError)] = &[
            ("", PathError::EmptyComponent),
            (".", PathError::CurrentDir),
            ("..", PathError::ParentDir),
            ("/etc", PathError::Absolute("/etc".into())),
            ("\\Windows", PathError::Absolute("\\Windows".into())),
            ("a/b", PathError::Separator("a/b".into())),
            ("a\\b", PathError::Separator("a\\b".into())),
            ("..\\..\\x", PathError::Separator("..\\..\\x".into())),
            ("a\0b", PathError::Nul("a\0b".into())),
            ("C:", PathError::DrivePrefix("C:".into())),
            ("c:evil", PathError::DrivePrefix("c:evil".into())),
        ];
        for (component, error) in cases {
            assert_eq!(
                check_component(component).as_ref(),
                Err(error),
                "{component:?}"
            );
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "a",
            "IMG_0001.jpg",
            "...",
            "..a",
            "a..",
            "Film: part 2.mkv",
            "ü ñ 漢字",
            ".hidden",
        ] {
            assert_eq!(check_component(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn bytes_must_be_utf8() {
        assert_eq!(component_from_bytes(b"ok"), Ok("ok".to_owned()));
        assert_eq!(component_from_bytes(b"\xff\xfe"), Err(PathError::NotUtf8));
        assert_eq!(component_from_bytes(b".."), Err(PathError::ParentDir));
    }

    #[test]
    fn clashing_paths_are_refused() {
        let p = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        let same = [p("a/b"), p("a/b")];
        assert_eq!(
            check_no_clashes(same.iter().map(Vec::as_slice)),
            Err(PathError::Clash("a/b".into()))
        );
        let nested = [p("a/b/c"), p("a/b")];
        assert_eq!(
            check_no_clashes(nested.iter().map(Vec::as_slice)),
            Err(PathError::Clash("a/b".into()))
        );
        let fine = [p("a/b"), p("a/c"), p("ab")];
        assert_eq!(check_no_clashes(fine.iter().map(Vec::as_slice)), Ok(()));
    }

    proptest! {
        /// Whatever a component is, if it passes, joining it under a folder
        /// stays one level inside that folder.
        #[test]
        fn accepted_components_stay_inside(component in "\\PC{0,12}|[./\\\\:a-zA-Z]{0,6}") {
            if check_component(&component).is_ok() {
                let joined = Path::new("out").join(&component);
                prop_assert_eq!(joined.parent(), Some(Path::new("out")));
                prop_assert!(joined.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }
}
