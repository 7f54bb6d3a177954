//! The torrents a tracker lists and serves as `.torrent` files, so a peer
//! can join knowing only the tracker address and a name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use minibit_core::metainfo::InfoHash;

/// One catalogued torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The torrent's name (the `info.name` of its metainfo), unique in the catalogue.
    pub name: String,
    /// Its info-hash.
    pub info_hash: InfoHash,
    /// Total content size, bytes.
    pub size: u64,
    /// Piece length, bytes.
    pub piece_length: u64,
    /// The exact `.torrent` file bytes served at `/torrents/{name}.torrent`.
    pub torrent: Bytes,
    /// The folder holding the content (`data/NAME` is the file or the
    /// torrent's folder), `None` when this tracker only tracks it.
    pub data: Option<PathBuf>,
    /// When it was catalogued, Unix time in seconds.
    pub published: u64,
    /// Downloads completed (`completed` announces that turned a leecher
    /// into a seeder), counted since publication, across restarts with
    /// `--state`.
    pub completed: u64,
}

/// Now as Unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a torrent could not be added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// The name is empty or contains `/` (it must fit in one URL path segment).
    #[error("invalid catalogue name {0:?}")]
    BadName(String),
    /// Another torrent already has this name.
    #[error("a torrent named {0:?} is already catalogued")]
    DuplicateName(String),
    /// This info-hash is already catalogued (under the given name).
    #[error("info-hash {0} is already catalogued as {1:?}")]
    DuplicateInfoHash(InfoHash, String),
}

/// Catalogued torrents, ordered by name.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    by_name: BTreeMap<String, CatalogueEntry>,
}

impl Catalogue {
    /// An empty catalogue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a torrent published now, with no data folder recorded and no
    /// completed download (see [`Catalogue::insert`]).
    ///
    /// # Errors
    /// The name is empty or contains `/`, or the name or the info-hash is
    /// already catalogued.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        info_hash: InfoHash,
        size: u64,
        piece_length: u64,
        torrent: impl Into<Bytes>,
    ) -> Result<(), CatalogueError> {
        self.insert(CatalogueEntry {
            name: name.into(),
            info_hash,
            size,
            piece_length,
            torrent: torrent.into(),
            data: None,
            published: unix_now(),
            completed: 0,
        })
    }

    /// Checks that `entry` could be inserted, without inserting it.
    ///
    /// # Errors
    /// As [`Catalogue::insert`].
    pub fn check(&self, name: &str, info_hash: InfoHash) -> Result<(), CatalogueError> {
        if name.is_empty() || name.contains('/') {
            return Err(CatalogueError::BadName(name.to_owned()));
        }
        if self.by_name.contains_key(name) {
            return Err(CatalogueError::DuplicateName(name.to_owned()));
        }
        if let Some(other) = self.get_by_hash(&info_hash) {
            return Err(CatalogueError::DuplicateInfoHash(
                info_hash,
                other.name.clone(),
            ));
        }
        Ok(())
    }

    /// Adds `entry`.
    ///
    /// # Errors
    /// The name is empty or contains `/`, or the name or the info-hash is
    /// already catalogued.
    pub fn insert(&mut self, entry: CatalogueEntry) -> Result<(), CatalogueError> {
        self.check(&entry.name, entry.info_hash)?;
        self.by_name.insert(entry.name.clone(), entry);
        Ok(())
    }

    /// Removes the torrent of `info_hash` and returns it (`None`: unknown).
    pub fn remove(&mut self, info_hash: &InfoHash) -> Option<CatalogueEntry> {
        let name = self.get_by_hash(info_hash)?.name.clone();
        self.by_name.remove(&name)
    }

    /// The torrent of `info_hash`.
    pub fn get_by_hash(&self, info_hash: &InfoHash) -> Option<&CatalogueEntry> {
        self.by_name.values().find(|e| e.info_hash == *info_hash)
    }

    /// Counts one completed download of `info_hash` and returns the new
    /// count (`None`: not catalogued).
    pub fn count_completed(&mut self, info_hash: &InfoHash) -> Option<u64> {
        let entry = self
            .by_name
            .values_mut()
            .find(|e| e.info_hash == *info_hash)?;
        entry.completed += 1;
        Some(entry.completed)
    }

    /// Number of torrents catalogued.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether nothing is catalogued.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The torrent called exactly `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogueEntry> {
        self.by_name.get(name)
    }

    /// The torrents whose name contains `query`, ignoring case, by name;
    /// an empty query matches all.
    pub fn search<'a>(&'a self, query: &str) -> impl Iterator<Item = &'a CatalogueEntry> + 'a {
        let needle = query.to_lowercase();
        self.by_name
            .values()
            .filter(move |e| e.name.to_lowercase().contains(&needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(cat: &mut Catalogue, name: &str, hash: u8) -> Result<(), CatalogueError> {
        cat.add(name, InfoHash([hash; 20]), 10, 4, &b"d4:infodee"[..])
    }

    #[test]
    fn search_is_case_insensitive_substring() {
        let mut cat = Catalogue::new();
        add(&mut cat, "Holiday Photos", 1).unwrap();
        add(&mut cat, "ubuntu.iso", 2).unwrap();
        add(&mut cat, "PHOTOSHOP.zip", 3).unwrap();
        let names = |q: &str| cat.search(q).map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("photo"), ["Holiday Photos", "PHOTOSHOP.zip"]);
        assert_eq!(names("ISO"), ["ubuntu.iso"]);
        assert_eq!(names("").len(), 3);
        assert!(names("nothing").is_empty());
    }

    #[test]
    fn duplicates_and_bad_names_are_refused() {
        let mut cat = Catalogue::new();
        add(&mut cat, "a", 1).unwrap();
        assert_eq!(
            add(&mut cat, "a", 2),
            Err(CatalogueError::DuplicateName("a".into()))
        );
        assert_eq!(
            add(&mut cat, "b", 1),
            Err(CatalogueError::DuplicateInfoHash(
                InfoHash([1; 20]),
                "a".into()
            ))
        );
        assert_eq!(
            add(&mut cat, "x/y", 3),
            Err(CatalogueError::BadName("x/y".into()))
        );
        assert_eq!(
            add(&mut cat, "", 3),
            Err(CatalogueError::BadName(String::new()))
        );
        assert_eq!(cat.get("a").unwrap().info_hash, InfoHash([1; 20]));
        assert!(cat.get("b").is_none());
    }

    #[test]
    fn remove_and_completed_counts_go_by_info_hash() {
        let mut cat = Catalogue::new();
        add(&mut cat, "a", 1).unwrap();
        add(&mut cat, "b", 2).unwrap();
        assert_eq!(cat.count_completed(&InfoHash([2; 20])), Some(1));
        assert_eq!(cat.count_completed(&InfoHash([2; 20])), Some(2));
        assert_eq!(cat.count_completed(&InfoHash([9; 20])), None);
        assert_eq!(cat.get("b").unwrap().completed, 2);
        assert_eq!(cat.remove(&InfoHash([1; 20])).unwrap().name, "a");
        assert!(cat.remove(&InfoHash([1; 20])).is_none());
        assert_eq!(cat.len(), 1);
        // The name is free again.
        add(&mut cat, "a", 3).unwrap();
    }
}
