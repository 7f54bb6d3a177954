//! Where the `.torrent` comes from: a file, an `http(s)://` URL of a
//! `.torrent`, or a tracker's base URL plus a name from its catalogue.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::catalogue::{self, CatalogueError, MAX_TORRENT_BYTES};
use crate::http::{FetchError, get_bounded};

/// A parsed `SOURCE [NAME]` command-line pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `.torrent` file on disk.
    File(PathBuf),
    /// The URL of a `.torrent`.
    Url(String),
    /// A tracker's base URL and the exact name of a torrent in its catalogue.
    Catalogue {
        /// The tracker's base URL.
        tracker: String,
        /// The torrent's name.
        name: String,
    },
}

/// Why a source could not be used.
#[derive(Debug, Error)]
pub enum SourceError {
    /// A URL that does not end in `.torrent` needs a NAME.
    #[error("{0} is not a .torrent URL: give a NAME to pick a torrent from that tracker")]
    NameNeeded(String),
    /// A NAME was given with a `.torrent` file or URL.
    #[error("NAME {0:?} only goes with a tracker URL")]
    UnexpectedName(String),
    /// Reading the file failed.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is larger than any `.torrent` we accept.
    #[error("{}: larger than the {limit}-byte limit for a .torrent", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, bytes.
        limit: usize,
    },
    /// Fetching the URL failed.
    #[error("{url}")]
    Fetch {
        /// The URL.
        url: String,
        /// The failure.
        source: FetchError,
    },
    /// The catalogue lookup failed.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

impl Source {
    /// Classifies `source` (and the optional `name`).
    ///
    /// # Errors
    /// [`SourceError::NameNeeded`] for a tracker URL without a name,
    /// [`SourceError::UnexpectedName`] for a file or `.torrent` URL with one.
    pub fn parse(source: &str, name: Option<&str>) -> Result<Self, SourceError> {
        let torrent_url = is_url(source) && {
            let path = source.split(['?', '#']).next().unwrap_or(source);
            path.ends_with(".torrent")
        };
        match (is_url(source), torrent_url, name) {
            (true, false, Some(name)) => Ok(Self::Catalogue {
                tracker: source.to_owned(),
                name: name.to_owned(),
            }),
            (true, false, None) => Err(SourceError::NameNeeded(source.to_owned())),
            (_, _, Some(name)) => Err(SourceError::UnexpectedName(name.to_owned())),
            (true, true, None) => Ok(Self::Url(source.to_owned())),
            (false, _, None) => Ok(Self::File(PathBuf::from(source))),
        }
    }

    /// The `.torrent` bytes.
    ///
    /// # Errors
    /// [`SourceError`] from reading, fetching or the catalogue lookup.
    pub async fn load(&self, client: &reqwest::Client) -> Result<Vec<u8>, SourceError> {
        match self {
            // A bounded read of a local file: short enough to do in place.
            Self::File(path) => read_torrent_file(path),
            Self::Url(url) => get_bounded(client, url, MAX_TORRENT_BYTES)
                .await
                .map_err(|source| SourceError::Fetch {
                    url: url.clone(),
                    source,
                }),
            Self::Catalogue { tracker, name } => {
                Ok(catalogue::fetch_torrent(client, tracker, name).await?)
            }
        }
    }
}

/// Reads a `.torrent` file, refusing (without reading it whole) one
/// larger than [`MAX_TORRENT_BYTES`].
///
/// # Errors
/// [`SourceError::Read`] when reading fails, [`SourceError::TooLarge`].
pub fn read_torrent_file(path: &Path) -> Result<Vec<u8>, SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_TORRENT_BYTES {
        return Err(SourceError::TooLarge {
            path: path.to_owned(),
            limit: MAX_TORRENT_BYTES,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_kind_is_recognised() {
        assert_eq!(
            Source::parse("movie.torrent", None).unwrap(),
            Source::File(PathBuf::from("movie.torrent"))
        );
        assert_eq!(
            Source::parse("http://t:6969/torrents/a.torrent", None).unwrap(),
            Source::Url("http://t:6969/torrents/a.torrent".into())
        );
        assert_eq!(
            Source::parse("https://t/x.torrent?key=1", None).unwrap(),
            Source::Url("https://t/x.torrent?key=1".into())
        );
        assert_eq!(
            Source::parse("http://t:6969", Some("a.mkv")).unwrap(),
            Source::Catalogue {
                tracker: "http://t:6969".into(),
                name: "a.mkv".into()
            }
        );
    }

    #[test]
    fn inconsistent_pairs_are_refused() {
        assert!(matches!(
            Source::parse("http://t:6969", None),
            Err(SourceError::NameNeeded(_))
        ));
        assert!(matches!(
            Source::parse("a.torrent", Some("x")),
            Err(SourceError::UnexpectedName(_))
        ));
        assert!(matches!(
            Source::parse("http://t/a.torrent", Some("x")),
            Err(SourceError::UnexpectedName(_))
        ));
    }

    #[tokio::test]
    async fn a_missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source::File(dir.path().join("nope.torrent"));
        let err = source.load(&reqwest::Client::new()).await.unwrap_err();
        assert!(matches!(err, SourceError::Read { .. }));
    }
}
