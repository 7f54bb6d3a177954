//! A published file on its way to disk: its name is checked to be one
//! plain file name inside the data folder, its bytes are streamed to a
//! hidden temporary file there (never held in memory whole), and it gets
//! its name only if no file has it yet (an existing file is never
//! overwritten).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use minibit_core::metainfo::PathError;
use minibit_core::metainfo::path::check_component;
use tokio::io::AsyncWriteExt as _;

/// Why a published file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The name is empty, hidden (starts with `.`), longer than 255 bytes
    /// or holds a control character.
    #[error(
        "bad name {0:?}: give one plain file name, not hidden, without control characters, at most 255 bytes"
    )]
    BadName(String),
    /// The name would leave the data folder (`..`, `/`, `\`, a drive prefix).
    #[error("name {0:?} is outside the data folder")]
    Escapes(String),
    /// A file of that name exists already.
    #[error("a file named {0:?} exists already in the data folder")]
    Exists(String),
    /// The request body broke off.
    #[error("upload broke off: {0}")]
    Body(String),
    /// Writing the file failed.
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks that `name` can be a published file's name: one plain file name
/// ([`check_component`]), not hidden, no control characters, 1-255 bytes.
///
/// # Errors
/// [`UploadError::Escapes`] for a name that climbs out or holds a path
/// separator, [`UploadError::BadName`] for the rest.
pub fn check_name(name: &str) -> Result<(), UploadError> {
    match check_component(name) {
        Ok(()) => {}
        Err(PathError::EmptyComponent | PathError::Nul(_) | PathError::NotUtf8) => {
            return Err(UploadError::BadName(name.to_owned()));
        }
        Err(_) => return Err(UploadError::Escapes(name.to_owned())),
    }
    if name.starts_with('.') || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(UploadError::BadName(name.to_owned()));
    }
    Ok(())
}

/// Removes the temporary file when the upload does not finish.
struct Temporary(PathBuf);

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams `body` into `root/name` and returns that path; `name` must
/// pass [`check_name`]. The bytes go to a hidden temporary file in `root`
/// first, which is linked to its name only if nothing has that name (so a
/// concurrent upload of the same name cannot overwrite either), then
/// removed; it is also removed when anything fails.
///
/// # Errors
/// [`UploadError`]: the name, an existing file, the body or the disk.
pub async fn receive<E: std::fmt::Display>(
    root: &Path,
    name: &str,
    body: impl Stream<Item = Result<Bytes, E>>,
) -> Result<PathBuf, UploadError> {
    check_name(name)?;
    let target = root.join(name);
    if tokio::fs::symlink_metadata(&target).await.is_ok() {
        return Err(UploadError::Exists(name.to_owned()));
    }
    let temporary = Temporary(root.join(format!(".upload-{:016x}.part", rand::random::<u64>())));
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary.0)
        .await?;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    drop(file);
    match tokio::fs::hard_link(&temporary.0, &target).await {
        Ok(()) => Ok(target),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(UploadError::Exists(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_that_climb_out_or_hide_are_refused() {
        for name in ["..", ".", "../x", "a/b", "/etc/passwd", "a\\b", "C:x"] {
            assert!(
                matches!(check_name(name), Err(UploadError::Escapes(_))),
                "{name}"
            );
        }
        for name in ["", ".hidden", "a\0b", "tab\there", &"x".repeat(256)] {
            assert!(
                matches!(check_name(name), Err(UploadError::BadName(_))),
                "{name}"
            );
        }
        for name in ["Holiday Movie.mkv", "photo (1).jpg", "ü.txt", "a..b"] {
            check_name(name).unwrap();
        }
    }

    #[tokio::test]
    async fn a_file_is_stored_under_its_name_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = receive(dir.path(), "a.bin", chunks(&[b"hello ", b"world"]))
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("a.bin"));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        let again = receive(dir.path(), "a.bin", chunks(&[b"other"])).await;
        assert!(matches!(again, Err(UploadError::Exists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert_eq!(names_in(dir.path()), ["a.bin"], "no temporary file left");
    }

    #[tokio::test]
    async fn a_broken_body_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err("reset".to_owned()),
        ]);
        let result = receive(dir.path(), "b.bin", body).await;
        assert!(matches!(result, Err(UploadError::Body(_))));
        assert!(names_in(dir.path()).is_empty());
        let escape = receive(dir.path(), "../b.bin", chunks(&[b"x"])).await;
        assert!(matches!(escape, Err(UploadError::Escapes(_))));
        assert!(!dir.path().parent().unwrap().join("b.bin").exists());
    }
}
