//! The torrents a tracker lists and serves as `.torrent` files, so a peer
//! can join knowing only the tracker address and a name.

use std::collections::BTreeMap;

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

    /// Adds a torrent.
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
        let name = name.into();
        if name.is_empty() || name.contains('/') {
            return Err(CatalogueError::BadName(name));
        }
        if self.by_name.contains_key(&name) {
            return Err(CatalogueError::DuplicateName(name));
        }
        if let Some(other) = self.by_name.values().find(|e| e.info_hash == info_hash) {
            return Err(CatalogueError::DuplicateInfoHash(
                info_hash,
                other.name.clone(),
            ));
        }
        let entry = CatalogueEntry {
            name: name.clone(),
            info_hash,
            size,
            piece_length,
            torrent: torrent.into(),
        };
        self.by_name.insert(name, entry);
        Ok(())
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
}
