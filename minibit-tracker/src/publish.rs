//! Changing the catalogue of a running tracker: publish a file (stored in
//! the data folder, hashed, catalogued, seeded) or a `.torrent` alone
//! (catalogued; seeded only if its data is in the data folder), remove an
//! entry, and bring the catalogue back from the database at start.
//!
//! Every change goes to the catalogue, the database (with `--state`) and
//! the subscribers of `/api/catalogue/events`, in that order; a change
//! that fails half-way is undone.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::Stream;
use minibit_core::metainfo::{BuildError, InfoHash, Metainfo, MetainfoBuilder, MetainfoError};
use serde::{Deserialize, Serialize};

use crate::catalogue::{CatalogueEntry, CatalogueError, unix_now};
use crate::fingerprint;
use crate::seed::SeedError;
use crate::service::{CatalogueEvent, EventKind, torrent_path};
use crate::state::TrackerState;
use crate::store::StoreError;
use crate::upload::{self, UploadError};

/// Largest `.torrent` accepted by [`publish_torrent`], bytes (10 MiB).
pub const MAX_TORRENT_BYTES: usize = 10 * 1024 * 1024;

/// Why a change of the catalogue was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Files can only be published with a data folder.
    #[error(
        "this tracker has no data folder: start it with --state DIR or --data DIR to publish files"
    )]
    NoDataFolder,
    /// The name, the body or the disk (see [`UploadError`]).
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The `.torrent` is larger than [`MAX_TORRENT_BYTES`].
    #[error("a .torrent may be at most {MAX_TORRENT_BYTES} bytes")]
    TooLarge,
    /// The `.torrent` does not parse.
    #[error("not a valid .torrent: {0}")]
    Malformed(#[from] MetainfoError),
    /// The published file cannot be made into a torrent (e.g. it is empty).
    #[error("cannot build a torrent: {0}")]
    Build(#[from] BuildError),
    /// The name or the info-hash is catalogued already.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// No catalogued torrent has this info-hash.
    #[error("no torrent with info-hash {0} is catalogued")]
    Unknown(InfoHash),
    /// The data to delete is not inside the data folder (it is never deleted).
    #[error("the data of {0:?} is not in the data folder: it is never deleted")]
    DataOutside(String),
    /// The tracker's address is not set up ([`crate::ServiceConfig::tracker_addr`]).
    #[error("the tracker's address is not set up")]
    NoAddress,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The embedded seeder could not start or refused the torrent.
    #[error("cannot seed: {0}")]
    Seed(#[from] SeedError),
    /// A file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The hashing task panicked.
    #[error("hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a publication did (the JSON answer of `POST /api/publish`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The catalogue name.
    pub name: String,
    /// The info-hash, 40 hex digits.
    pub info_hash: String,
    /// Total content size, bytes.
    pub size: u64,
    /// URL path of its `.torrent`.
    pub torrent: String,
    /// Whether the embedded seeder seeds it.
    pub seeded: bool,
}

/// What a removal did (the JSON answer of `DELETE /api/torrents/{info_hash}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The catalogue name it had.
    pub name: String,
    /// The info-hash, 40 hex digits.
    pub info_hash: String,
    /// Whether its data was deleted.
    pub data_deleted: bool,
}

/// The one place a torrent starts seeding at run time: added to the
/// embedded seeder (one client, one peer port on the tracker's IP,
/// announcing to this tracker), its peer sink registered; returns once its
/// first announce reached the registry (or after 5 s). `verified`: the data
/// was hashed or fingerprinted already, so it is not read back first.
///
/// # Errors
/// [`PublishError::Seed`]: no tracker address, the seeder's port, or the
/// torrent's files.
pub async fn start_seeding(
    state: &TrackerState,
    metainfo: Metainfo,
    folder: PathBuf,
    verified: bool,
) -> Result<(), PublishError> {
    let seeder = state.service().seeder().await?;
    seeder.seed(state, metainfo, folder, verified).await?;
    Ok(())
}

/// Publishes a file: streams `body` to `DATA/name` (see
/// [`upload::receive`]), hashes it into a torrent announcing to this
/// tracker, catalogues and seeds it. The file is removed again when a
/// later step fails.
///
/// # Errors
/// [`PublishError`]: no data folder, a bad or taken name, a broken body,
/// an empty file, a duplicate info-hash, the database or the session.
pub async fn publish_file<E: std::fmt::Display>(
    state: &TrackerState,
    name: &str,
    body: impl Stream<Item = Result<Bytes, E>>,
) -> Result<Published, PublishError> {
    let root = state
        .service()
        .data_root()
        .ok_or(PublishError::NoDataFolder)?;
    let addr = state
        .service()
        .tracker_addr()
        .ok_or(PublishError::NoAddress)?;
    upload::check_name(name)?;
    if state.catalogue().get(name).is_some() {
        return Err(CatalogueError::DuplicateName(name.to_owned()).into());
    }
    let path = upload::receive(root, name, body).await?;
    let builder = MetainfoBuilder::new(&path)
        .announce(format!("http://{addr}/announce"))
        .created_by(concat!("minibit-tracker/", env!("CARGO_PKG_VERSION")));
    let built = match tokio::task::spawn_blocking(move || builder.build()).await {
        Ok(Ok(metainfo)) => Ok(metainfo),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    };
    let result = match built {
        Ok(metainfo) => {
            let torrent = Bytes::from(metainfo.to_bytes());
            catalogue(state, metainfo, torrent, Some(root.to_owned()), true).await
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    result
}

/// Publishes a `.torrent` alone: catalogued as given; seeded (after
/// verifying every piece) only if its content is in the data folder, every
/// file with its exact length.
///
/// # Errors
/// [`PublishError`]: too large, malformed, a duplicate, the database or
/// the session.
pub async fn publish_torrent(
    state: &TrackerState,
    torrent: Bytes,
) -> Result<Published, PublishError> {
    if torrent.len() > MAX_TORRENT_BYTES {
        return Err(PublishError::TooLarge);
    }
    let metainfo = Metainfo::from_bytes(&torrent)?;
    // Only data of the torrent's exact sizes counts: a file that merely
    // has its name is not this torrent's (and would be written to).
    let data = state
        .service()
        .data_root()
        .filter(|root| fingerprint::sizes_match(&metainfo, root))
        .map(Path::to_owned);
    catalogue(state, metainfo, torrent, data, false).await
}

/// Catalogues `metainfo` (served as `torrent`), stores it, seeds it when
/// `data` names the folder holding its content, and tells the subscribers.
async fn catalogue(
    state: &TrackerState,
    metainfo: Metainfo,
    torrent: Bytes,
    data: Option<PathBuf>,
    verified: bool,
) -> Result<Published, PublishError> {
    let entry = CatalogueEntry {
        name: metainfo.info().name().to_owned(),
        info_hash: metainfo.info_hash(),
        size: metainfo.total_length(),
        piece_length: metainfo.info().piece_length().into(),
        torrent,
        data: data.clone(),
        published: unix_now(),
        completed: 0,
    };
    let info_hash = entry.info_hash;
    state.catalogue_mut().insert(entry.clone())?;
    let undo = |state: &TrackerState| {
        state.catalogue_mut().remove(&info_hash);
        if let Some(store) = state.service().store() {
            let _ = store.remove(&info_hash);
        }
    };
    if let Some(store) = state.service().store() {
        let fingerprint = data
            .as_ref()
            .and_then(|d| fingerprint::of(&metainfo, d).ok());
        if let Err(e) = store.insert(&entry, fingerprint.as_deref()) {
            undo(state);
            return Err(e.into());
        }
    }
    if let Some(folder) = data.clone() {
        if let Err(e) = start_seeding(state, metainfo, folder, verified).await {
            undo(state);
            return Err(e);
        }
    }
    tracing::info!(name = %entry.name, %info_hash, seeded = data.is_some(), "published");
    state
        .service()
        .notify(CatalogueEvent::new(EventKind::Publish, &entry));
    Ok(Published {
        torrent: torrent_path(&entry.name),
        info_hash: info_hash.to_hex(),
        size: entry.size,
        seeded: data.is_some(),
        name: entry.name,
    })
}

/// Removes the torrent of `info_hash`: out of the catalogue and the
/// database, its seeder stopped (it announces `stopped`), its swarm
/// forgotten, and with `delete_data` its content deleted, which must be in
/// the data folder (checked before anything is removed).
///
/// # Errors
/// [`PublishError::Unknown`], [`PublishError::DataOutside`], or the
/// database or the file system failed.
pub async fn remove(
    state: &TrackerState,
    info_hash: InfoHash,
    delete_data: bool,
) -> Result<Removed, PublishError> {
    let entry = state
        .catalogue()
        .get_by_hash(&info_hash)
        .cloned()
        .ok_or(PublishError::Unknown(info_hash))?;
    let content = match (&entry.data, delete_data) {
        (Some(folder), true) => {
            let inside = state
                .service()
                .data_root()
                .is_some_and(|root| root == folder);
            if !inside {
                return Err(PublishError::DataOutside(entry.name));
            }
            Some(folder.join(&entry.name))
        }
        _ => None,
    };
    if state.catalogue_mut().remove(&info_hash).is_none() {
        return Err(PublishError::Unknown(info_hash));
    }
    if let Some(store) = state.service().store() {
        store.remove(&info_hash)?;
    }
    state.remove_seeder(&info_hash);
    state.service().stop_seeding(&info_hash).await;
    state.registry().forget(&info_hash);
    if let Some(content) = &content {
        if tokio::fs::metadata(content).await?.is_dir() {
            tokio::fs::remove_dir_all(content).await?;
        } else {
            tokio::fs::remove_file(content).await?;
        }
    }
    tracing::info!(name = %entry.name, %info_hash, data_deleted = content.is_some(), "removed");
    state
        .service()
        .notify(CatalogueEvent::new(EventKind::Remove, &entry));
    Ok(Removed {
        name: entry.name,
        info_hash: info_hash.to_hex(),
        data_deleted: content.is_some(),
    })
}

/// How a stored entry came back at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Seeded; its data's sizes and mtimes are unchanged, so it was not read again.
    Unchanged,
    /// Seeded after verifying every piece: its data changed since publication.
    Verified,
    /// Tracked only: its data is missing.
    DataMissing,
    /// Tracked only: it was published as a `.torrent` without data.
    TrackedOnly,
}

/// Brings every entry of the database back into the catalogue and seeds
/// those with data (see [`Restored`]); returns each name with what
/// happened. An entry that cannot come back (a corrupt `.torrent`, a name
/// taken meanwhile, a session that does not start) is logged and skipped.
///
/// # Errors
/// [`StoreError`] when the database cannot be read.
pub async fn restore(
    state: &TrackerState,
) -> Result<Vec<(String, InfoHash, Restored)>, StoreError> {
    let Some(store) = state.service().store() else {
        return Ok(Vec::new());
    };
    let mut restored = Vec::new();
    for stored in store.load()? {
        let entry = stored.entry;
        let metainfo = match Metainfo::from_bytes(&entry.torrent) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(name = %entry.name, error = %e, "stored .torrent is corrupt: skipped");
                continue;
            }
        };
        let (name, info_hash, data) = (entry.name.clone(), entry.info_hash, entry.data.clone());
        if let Err(e) = state.catalogue_mut().insert(entry) {
            tracing::warn!(%name, error = %e, "cannot restore: skipped");
            continue;
        }
        let how = match data {
            None => Restored::TrackedOnly,
            Some(folder) => match fingerprint::of(&metainfo, &folder) {
                Err(_) => Restored::DataMissing,
                Ok(now) => {
                    let unchanged = stored.fingerprint.as_deref() == Some(now.as_str());
                    if let Err(e) = start_seeding(state, metainfo, folder, unchanged).await {
                        tracing::warn!(%name, error = %e, "cannot seed a restored torrent: tracked only");
                        restored.push((name, info_hash, Restored::DataMissing));
                        continue;
                    }
                    if unchanged {
                        Restored::Unchanged
                    } else {
                        Restored::Verified
                    }
                }
            },
        };
        restored.push((name, info_hash, how));
    }
    Ok(restored)
}
