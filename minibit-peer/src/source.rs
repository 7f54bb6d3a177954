//! Where the torrent comes from: a `.torrent` file, an `http(s)://` URL
//! of a `.torrent`, a tracker's base URL plus a name from its catalogue,
//! or a magnet link (BEP 9: no `.torrent`, the metadata comes from peers).

use std::io::Read;
use std::path::{Path, PathBuf};

use minibit_core::magnet::{Magnet, MagnetError};
use thiserror::Error;

use crate::catalogue::{self, CatalogueError, MAX_TORRENT_BYTES};
use crate::http::{FetchError, get_bounded};

/// A parsed `SOURCE [NAME]` command-line pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `.torrent` file on disk.
    File(PathBuf),
    /// The URL of a `.torrent` (`http://` or `https://`, whatever its path ends with).
    Url(String),
    /// A tracker's base URL and the exact name of a torrent in its catalogue.
    Catalogue {
        /// The tracker's base URL.
        tracker: String,
        /// The torrent's name.
        name: String,
    },
    /// A magnet link (`magnet:?xt=urn:btih:...`).
    Magnet(Magnet),
}

/// Why a source could not be used.
#[derive(Debug, Error)]
pub enum SourceError {
    /// A NAME was given with a `.torrent` file.
    #[error(
        "NAME {0:?} only goes with a tracker URL (http:// or https://), not with a .torrent file or a magnet link"
    )]
    UnexpectedName(String),
    /// Reading the file failed.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is larger than any `.torrent` we accept (most likely the
    /// data itself, given where its `.torrent` was expected).
    #[error(
        "{}: larger than the {limit}-byte limit for a .torrent{}",
        path.display(),
        share_hint(path)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, bytes.
        limit: usize,
    },
    /// A folder was given where a `.torrent` was expected.
    #[error("{}: a folder, not a .torrent{}", .0.display(), share_hint(.0))]
    Folder(PathBuf),
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
    /// A `magnet:` link that does not parse.
    #[error("bad magnet link")]
    Magnet(#[from] MagnetError),
    /// A `.torrent` was asked of a magnet link (it has none until its
    /// metadata is fetched from peers).
    #[error(
        "a magnet link has no .torrent to read (its metadata comes from peers once it downloads)"
    )]
    NoTorrentFile,
}

/// The error line for a file at `path` that does not parse as a
/// `.torrent`, with what to do instead if it is the data itself.
pub fn not_a_torrent_file(path: &Path) -> String {
    format!(
        "{}: not a valid .torrent{}",
        path.display(),
        share_hint(path)
    )
}

/// What to do with data given where its `.torrent` was expected.
fn share_hint(path: &Path) -> String {
    format!(
        " (to share it, make a .torrent of it: minibit-peer create {})",
        path.display()
    )
}

fn is_magnet(source: &str) -> bool {
    source
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

impl Source {
    /// Classifies `source` (and the optional `name`): a URL with a NAME
    /// is a tracker and a name in its catalogue, a URL alone is a
    /// `.torrent` URL (`https://host/download?id=7` as well as
    /// `http://host/a.torrent`), `magnet:...` a magnet link, anything else
    /// a `.torrent` file.
    ///
    /// # Errors
    /// [`SourceError::UnexpectedName`] for a file or a magnet link with a
    /// NAME; [`SourceError::Magnet`] for a magnet link that does not parse.
    pub fn parse(source: &str, name: Option<&str>) -> Result<Self, SourceError> {
        if is_magnet(source) {
            if let Some(name) = name {
                return Err(SourceError::UnexpectedName(name.to_owned()));
            }
            return Ok(Self::Magnet(Magnet::parse(source)?));
        }
        match (is_url(source), name) {
            (true, Some(name)) => Ok(Self::Catalogue {
                tracker: source.to_owned(),
                name: name.to_owned(),
            }),
            (true, None) => Ok(Self::Url(source.to_owned())),
            (false, Some(name)) => Err(SourceError::UnexpectedName(name.to_owned())),
            (false, None) => Ok(Self::File(PathBuf::from(source))),
        }
    }

    /// How to name this source in a message: the path or the URL (with the
    /// NAME for a catalogue entry).
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.clone(),
            Self::Catalogue { tracker, name } => format!("{name:?} from {tracker}"),
            Self::Magnet(magnet) => magnet.to_string(),
        }
    }

    /// The `.torrent` bytes.
    ///
    /// # Errors
    /// [`SourceError`] from reading, fetching or the catalogue lookup;
    /// [`SourceError::NoTorrentFile`] for a magnet link.
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
            Self::Magnet(_) => Err(SourceError::NoTorrentFile),
        }
    }
}

/// Reads a `.torrent` file, refusing (without reading it whole) one
/// larger than [`MAX_TORRENT_BYTES`].
///
/// # Errors
/// [`SourceError::Read`] when reading fails, [`SourceError::Folder`] for a
/// folder, [`SourceError::TooLarge`].
pub fn read_torrent_file(path: &Path) -> Result<Vec<u8>, SourceError> {
    if path.is_dir() {
        return Err(SourceError::Folder(path.to_owned()));
    }
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
    fn a_torrent_url_need_not_end_in_torrent() {
        assert_eq!(
            Source::parse("https://t/download.php?id=7", None).unwrap(),
            Source::Url("https://t/download.php?id=7".into())
        );
    }

    #[test]
    fn a_magnet_link_is_parsed_and_its_errors_are_typed() {
        let hex = "0123456789abcdef0123456789abcdef01234567";
        let link = format!("magnet:?xt=urn:btih:{hex}&dn=a&tr=http%3A%2F%2Ft%3A1%2Fannounce");
        let Source::Magnet(magnet) = Source::parse(&link, None).unwrap() else {
            panic!("not a magnet source");
        };
        assert_eq!(magnet.info_hash.to_hex(), hex);
        assert_eq!(magnet.trackers, ["http://t:1/announce"]);
        assert!(matches!(
            Source::parse("MAGNET:?xt=urn:btih:zz", None),
            Err(SourceError::Magnet(MagnetError::BadInfoHash(_)))
        ));
        assert!(matches!(
            Source::parse(&link, Some("x")),
            Err(SourceError::UnexpectedName(_))
        ));
    }

    #[test]
    fn a_name_with_a_file_is_refused() {
        assert!(matches!(
            Source::parse("a.torrent", Some("x")),
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
