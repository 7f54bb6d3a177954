//! `--state DIR`: the catalogue kept in SQLite (`DIR/catalogue.sqlite3`,
//! readable with `sqlite3`), one row per torrent: name, info-hash, the
//! `.torrent` bytes, the folder holding its data, publication time,
//! completed downloads and the data's fingerprint (file sizes and
//! modification times at publication, see [`crate::fingerprint`]).
//!
//! The schema version is SQLite's `user_version` ([`SCHEMA_VERSION`]); a
//! database from a newer minibit-tracker is refused rather than misread.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use minibit_core::metainfo::InfoHash;
use rusqlite::{Connection, params};

use crate::catalogue::CatalogueEntry;

/// File name of the database in the state folder.
pub const DATABASE_FILE: &str = "catalogue.sqlite3";

/// The schema this build reads and writes (SQLite `user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE torrent (
    info_hash    TEXT PRIMARY KEY NOT NULL,  -- 40 lowercase hex digits
    name         TEXT NOT NULL UNIQUE,
    size         INTEGER NOT NULL,           -- bytes
    piece_length INTEGER NOT NULL,           -- bytes
    torrent      BLOB NOT NULL,              -- the .torrent file
    data_dir     BLOB,                       -- folder holding the content; NULL: tracked only
    published    INTEGER NOT NULL,           -- Unix time, seconds
    completed    INTEGER NOT NULL DEFAULT 0, -- completed downloads
    fingerprint  TEXT                        -- data sizes and mtimes at publication
);
";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("catalogue database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer minibit-tracker.
    #[error(
        "catalogue database has schema version {0}, this build reads up to {SCHEMA_VERSION}: use a newer minibit-tracker"
    )]
    TooNew(i64),
    /// A row does not hold a valid info-hash.
    #[error("catalogue database: bad info-hash {0:?}")]
    BadInfoHash(String),
}

/// A catalogue entry as stored, with the fingerprint of its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: CatalogueEntry,
    /// The data's fingerprint at publication (`None`: no data).
    pub fingerprint: Option<String>,
}

/// The catalogue database. Every call is one short statement under a lock.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it if needed) `DIR/catalogue.sqlite3` and brings
    /// its schema to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`StoreError`]: SQLite failed, or the schema is newer than this build's.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(DATABASE_FILE);
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                conn.execute_batch(SCHEMA_V1)?;
                conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            SCHEMA_VERSION => {}
            newer => return Err(StoreError::TooNew(newer)),
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every stored entry, by name.
    ///
    /// # Errors
    /// [`StoreError`]: SQLite failed or a row is corrupt.
    pub fn load(&self) -> Result<Vec<StoredEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT info_hash, name, size, piece_length, torrent, data_dir, published, completed, fingerprint
             FROM torrent ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                CatalogueEntry {
                    name: r.get(1)?,
                    info_hash: InfoHash([0; 20]),
                    size: r.get(2)?,
                    piece_length: r.get(3)?,
                    torrent: Bytes::from(r.get::<_, Vec<u8>>(4)?),
                    data: r
                        .get::<_, Option<Vec<u8>>>(5)?
                        .map(|b| PathBuf::from(OsStr::from_bytes(&b))),
                    published: r.get(6)?,
                    completed: r.get(7)?,
                },
                r.get::<_, Option<String>>(8)?,
            ))
        })?;
        rows.map(|row| {
            let (hex, mut entry, fingerprint) = row?;
            entry.info_hash = InfoHash::from_hex(&hex).ok_or(StoreError::BadInfoHash(hex))?;
            Ok(StoredEntry { entry, fingerprint })
        })
        .collect()
    }

    /// Stores `entry` with the `fingerprint` of its data.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`], e.g. the name or info-hash is already stored.
    pub fn insert(
        &self,
        entry: &CatalogueEntry,
        fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO torrent (info_hash, name, size, piece_length, torrent, data_dir, published, completed, fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.info_hash.to_hex(),
                entry.name,
                entry.size,
                entry.piece_length,
                entry.torrent.as_ref(),
                entry.data.as_ref().map(|p| p.as_os_str().as_bytes()),
                entry.published,
                entry.completed,
                fingerprint,
            ],
        )?;
        Ok(())
    }

    /// Forgets the entry of `info_hash`; returns whether there was one.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn remove(&self, info_hash: &InfoHash) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM torrent WHERE info_hash = ?1",
            [info_hash.to_hex()],
        )?;
        Ok(n > 0)
    }

    /// Records `completed` downloads for `info_hash`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_completed(&self, info_hash: &InfoHash, completed: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE torrent SET completed = ?2 WHERE info_hash = ?1",
            params![info_hash.to_hex(), completed],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, hash: u8, data: Option<&str>) -> CatalogueEntry {
        CatalogueEntry {
            name: name.into(),
            info_hash: InfoHash([hash; 20]),
            size: 1234,
            piece_length: 16_384,
            torrent: Bytes::from_static(b"d4:infodee"),
            data: data.map(PathBuf::from),
            published: 1_700_000_000,
            completed: 0,
        }
    }

    #[test]
    fn entries_survive_reopening_and_removal_and_counts_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .insert(&entry("b", 2, Some("/srv/data")), Some("fp"))
                .unwrap();
            store.insert(&entry("a", 1, None), None).unwrap();
            store.insert(&entry("c", 3, None), None).unwrap();
            assert!(
                store.insert(&entry("a", 9, None), None).is_err(),
                "duplicate name"
            );
            store.set_completed(&InfoHash([2; 20]), 7).unwrap();
            assert!(store.remove(&InfoHash([3; 20])).unwrap());
            assert!(!store.remove(&InfoHash([3; 20])).unwrap());
        }
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        let mut b = entry("b", 2, Some("/srv/data"));
        b.completed = 7;
        assert_eq!(
            loaded,
            [
                StoredEntry {
                    entry: entry("a", 1, None),
                    fingerprint: None
                },
                StoredEntry {
                    entry: b,
                    fingerprint: Some("fp".into())
                },
            ]
        );
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::TooNew(v)) if v == SCHEMA_VERSION + 1
        ));
    }
}
