//! The daemon's torrents kept in SQLite (`STATE/daemon.sqlite3`, readable
//! with `sqlite3`), one row per torrent: info-hash, name, the `.torrent`
//! bytes, the save folder, the file priorities and the paused flag. The
//! pieces already verified are not here: they are the resume data
//! ([`crate::resume_data`]) in `STATE/resume`. Also the subscriptions to
//! trackers' catalogues (`TRACKER_URL[#GLOB]`, see [`super::subscribe`])
//! and, for each, the publications it has added already.
//!
//! The schema version is SQLite's `user_version` ([`SCHEMA_VERSION`]); a
//! database from a newer minibit-peer is refused rather than misread.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use minibit_core::metainfo::InfoHash;
use minibit_core::priority::Priority;
use rusqlite::{Connection, params};

/// File name of the database in the state folder.
pub const DATABASE_FILE: &str = "daemon.sqlite3";

/// The schema this build reads and writes (SQLite `user_version`).
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA_V1: &str = "
CREATE TABLE torrent (
    info_hash  TEXT PRIMARY KEY NOT NULL, -- 40 lowercase hex digits
    name       TEXT NOT NULL,
    torrent    BLOB NOT NULL,             -- the .torrent file (a magnet link, `magnet:?...`, until its metadata arrives)
    save_dir   BLOB NOT NULL,             -- folder the content goes in
    priorities TEXT NOT NULL,             -- one letter per file: s(kip), n(ormal), h(igh)
    paused     INTEGER NOT NULL,          -- 0 or 1
    added      INTEGER NOT NULL           -- Unix time, seconds
);
";

/// Version 2: subscriptions to trackers' catalogues.
const SCHEMA_V2: &str = "
CREATE TABLE subscription (
    spec  TEXT PRIMARY KEY NOT NULL,      -- TRACKER_URL or TRACKER_URL#GLOB
    added INTEGER NOT NULL                -- Unix time, seconds
);
CREATE TABLE subscription_taken (         -- publications a subscription added
    spec      TEXT NOT NULL,
    info_hash TEXT NOT NULL,              -- 40 lowercase hex digits
    PRIMARY KEY (spec, info_hash)
);
";

/// Each torrent's own rate limits, apart from `torrent` so that a
/// database of an older build gains the table without a schema change
/// (older builds ignore it).
const LIMITS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS torrent_limits (
    info_hash TEXT PRIMARY KEY NOT NULL, -- as in torrent
    upload    INTEGER NOT NULL,          -- bytes/s, 0 = unlimited
    download  INTEGER NOT NULL           -- bytes/s, 0 = unlimited
);
";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("daemon database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer minibit-peer.
    #[error(
        "daemon database has schema version {0}, this build reads up to {SCHEMA_VERSION}: use a newer minibit-peer"
    )]
    TooNew(i64),
    /// A row does not hold a valid info-hash.
    #[error("daemon database: bad info-hash {0:?}")]
    BadInfoHash(String),
}

/// One torrent of the daemon as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its info-hash.
    pub info_hash: InfoHash,
    /// Its name (the metainfo's; a magnet link's `dn` until its metadata
    /// arrives).
    pub name: String,
    /// The `.torrent` file, or the text of the magnet link it was added
    /// from until its metadata arrives.
    pub torrent: Vec<u8>,
    /// The folder its content goes in.
    pub save_dir: PathBuf,
    /// Each file's priority, in torrent order.
    pub priorities: Vec<Priority>,
    /// Whether it is paused.
    pub paused: bool,
    /// When it was added, Unix time in seconds.
    pub added: i64,
}

/// The daemon's database. Every call is one short statement under a lock.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating it if needed) `DIR/daemon.sqlite3` and brings its
    /// schema to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`StoreError`]: SQLite failed, or the schema is newer than this build's.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::with_connection(Connection::open(dir.join(DATABASE_FILE))?)
    }

    fn with_connection(conn: Connection) -> Result<Self, StoreError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew(version));
        }
        if version < SCHEMA_VERSION {
            let tx = conn.unchecked_transaction()?;
            if version < 1 {
                tx.execute_batch(SCHEMA_V1)?;
            }
            tx.execute_batch(SCHEMA_V2)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        conn.execute_batch(LIMITS_TABLE)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `record` (replacing the row of the same info-hash).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn put(&self, record: &Record) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO torrent (info_hash, name, torrent, save_dir, priorities, paused, added)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                record.info_hash.to_hex(),
                record.name,
                record.torrent,
                record.save_dir.as_os_str().as_bytes(),
                encode_priorities(&record.priorities),
                record.paused,
                record.added,
            ],
        )?;
        Ok(())
    }

    /// Sets the paused flag of `info_hash` (no row: nothing happens).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_paused(&self, info_hash: &InfoHash, paused: bool) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE torrent SET paused = ?2 WHERE info_hash = ?1",
            params![info_hash.to_hex(), paused],
        )?;
        Ok(())
    }

    /// Sets the file priorities of `info_hash` (no row: nothing happens).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_priorities(
        &self,
        info_hash: &InfoHash,
        priorities: &[Priority],
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE torrent SET priorities = ?2 WHERE info_hash = ?1",
            params![info_hash.to_hex(), encode_priorities(priorities)],
        )?;
        Ok(())
    }

    /// Forgets `info_hash` (and its limits).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn delete(&self, info_hash: &InfoHash) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM torrent WHERE info_hash = ?1",
            params![info_hash.to_hex()],
        )?;
        conn.execute(
            "DELETE FROM torrent_limits WHERE info_hash = ?1",
            params![info_hash.to_hex()],
        )?;
        Ok(())
    }

    /// The rate limits of `info_hash`, bytes/s: `(upload, download)`, 0 =
    /// unlimited (also when none were set).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn limits(&self, info_hash: &InfoHash) -> Result<(u64, u64), StoreError> {
        let row = self.conn().query_row(
            "SELECT upload, download FROM torrent_limits WHERE info_hash = ?1",
            params![info_hash.to_hex()],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
        );
        let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
        match row {
            Ok((upload, download)) => Ok((unsigned(upload), unsigned(download))),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok((0, 0)),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the rate limits of `info_hash`, bytes/s: `(upload, download)`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn set_limits(&self, info_hash: &InfoHash, limits: (u64, u64)) -> Result<(), StoreError> {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.conn().execute(
            "INSERT OR REPLACE INTO torrent_limits (info_hash, upload, download) VALUES (?1, ?2, ?3)",
            params![info_hash.to_hex(), signed(limits.0), signed(limits.1)],
        )?;
        Ok(())
    }

    /// Every stored torrent, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn all(&self) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT info_hash, name, torrent, save_dir, priorities, paused, added
             FROM torrent ORDER BY added, rowid",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, bool>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?;
        let mut records = Vec::new();
        for row in rows {
            let (hex, name, torrent, save_dir, priorities, paused, added) = row?;
            records.push(Record {
                info_hash: InfoHash::from_hex(&hex).ok_or(StoreError::BadInfoHash(hex))?,
                name,
                torrent,
                save_dir: PathBuf::from(OsStr::from_bytes(&save_dir)),
                priorities: decode_priorities(&priorities),
                paused,
                added,
            });
        }
        Ok(records)
    }
}

impl Store {
    /// Stores the subscription `spec` (`TRACKER_URL[#GLOB]`); `false` when
    /// it was stored already.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn add_subscription(&self, spec: &str, added: i64) -> Result<bool, StoreError> {
        let rows = self.conn().execute(
            "INSERT OR IGNORE INTO subscription (spec, added) VALUES (?1, ?2)",
            params![spec, added],
        )?;
        Ok(rows == 1)
    }

    /// Forgets the subscription `spec` and what it added; `false` when
    /// there was none.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn remove_subscription(&self, spec: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM subscription_taken WHERE spec = ?1",
            params![spec],
        )?;
        let rows = tx.execute("DELETE FROM subscription WHERE spec = ?1", params![spec])?;
        tx.commit()?;
        Ok(rows == 1)
    }

    /// Every subscription's spec, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn subscriptions(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT spec FROM subscription ORDER BY added, rowid")?;
        let specs = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(specs)
    }

    /// Records that the subscription `spec` added (or found) `info_hash`:
    /// it is not added again, even once removed from the daemon.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn mark_taken(&self, spec: &str, info_hash: &InfoHash) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO subscription_taken (spec, info_hash) VALUES (?1, ?2)",
            params![spec, info_hash.to_hex()],
        )?;
        Ok(())
    }

    /// Whether the subscription `spec` added `info_hash` before.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn is_taken(&self, spec: &str, info_hash: &InfoHash) -> Result<bool, StoreError> {
        let found = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM subscription_taken WHERE spec = ?1 AND info_hash = ?2)",
            params![spec, info_hash.to_hex()],
            |row| row.get(0),
        )?;
        Ok(found)
    }
}

fn encode_priorities(priorities: &[Priority]) -> String {
    priorities
        .iter()
        .map(|p| match p {
            Priority::Skip => 's',
            Priority::Normal => 'n',
            Priority::High => 'h',
        })
        .collect()
}

/// The priorities of `text`; an unknown letter is [`Priority::Normal`].
fn decode_priorities(text: &str) -> Vec<Priority> {
    text.chars()
        .map(|c| match c {
            's' => Priority::Skip,
            'h' => Priority::High,
            _ => Priority::Normal,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(byte: u8, added: i64) -> Record {
        Record {
            info_hash: InfoHash([byte; 20]),
            name: format!("t{byte}"),
            torrent: vec![b'd', byte, b'e'],
            save_dir: PathBuf::from(format!("/data/d{byte}")),
            priorities: vec![Priority::Normal, Priority::Skip, Priority::High],
            paused: false,
            added,
        }
    }

    #[test]
    fn records_survive_a_reopen_with_their_changes_and_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b, c) = (record(1, 10), record(2, 5), record(3, 20));
        for r in [&a, &b, &c] {
            store.put(r).unwrap();
        }
        store.set_paused(&a.info_hash, true).unwrap();
        store
            .set_priorities(&c.info_hash, &[Priority::Skip; 3])
            .unwrap();
        store.delete(&b.info_hash).unwrap();
        store.set_limits(&a.info_hash, (1000, 0)).unwrap();
        store.set_limits(&b.info_hash, (5, 5)).unwrap();
        store.delete(&b.info_hash).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let all = store.all().unwrap();
        let expected_a = Record { paused: true, ..a };
        let expected_c = Record {
            priorities: vec![Priority::Skip; 3],
            ..c
        };
        assert_eq!(all, [expected_a, expected_c]);
        assert_eq!(store.limits(&a.info_hash).unwrap(), (1000, 0));
        assert_eq!(
            store.limits(&b.info_hash).unwrap(),
            (0, 0),
            "deleted with it"
        );
        assert_eq!(store.limits(&c.info_hash).unwrap(), (0, 0), "never set");
    }

    #[test]
    fn subscriptions_and_what_they_took_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = ("http://t:1#*.jpg", "http://t:2");
        assert!(store.add_subscription(a, 5).unwrap());
        assert!(store.add_subscription(b, 6).unwrap());
        assert!(!store.add_subscription(a, 7).unwrap(), "stored once");
        store.mark_taken(a, &InfoHash([1; 20])).unwrap();
        store.mark_taken(b, &InfoHash([2; 20])).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.subscriptions().unwrap(), [a, b]);
        assert!(store.is_taken(a, &InfoHash([1; 20])).unwrap());
        assert!(!store.is_taken(a, &InfoHash([2; 20])).unwrap());
        assert!(store.remove_subscription(b).unwrap());
        assert!(!store.remove_subscription(b).unwrap());
        assert_eq!(store.subscriptions().unwrap(), [a]);
        // Subscribing again starts afresh.
        store.add_subscription(b, 8).unwrap();
        assert!(!store.is_taken(b, &InfoHash([2; 20])).unwrap());
    }

    #[test]
    fn a_version_1_database_gains_the_subscriptions_and_keeps_its_torrents() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO torrent VALUES (?1, 'old', x'6465', x'2f64', 'ns', 1, 3)",
            params![InfoHash([7; 20]).to_hex()],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        let all = store.all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].info_hash, all[0].name.as_str(), all[0].paused),
            (InfoHash([7; 20]), "old", true)
        );
        assert!(store.add_subscription("http://t:1", 1).unwrap());
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::TooNew(99))
        ));
    }
}
