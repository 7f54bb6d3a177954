//! Torrents started from a magnet link (BEP 9): what the link gives the
//! client (its `tr` trackers, its `x.pe` peers, a name to show), and the
//! turn from magnet to torrent once the core reports
//! [`minibit_core::torrent::Event::MetadataReceived`]: the link's trackers
//! go into the metainfo, the `.torrent` is saved in the state folder, the
//! files are opened and checked (resume data, file priorities) like a
//! `.torrent`'s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use minibit_core::magnet::{Magnet, MagnetPeer};
use minibit_core::metainfo::Metainfo;
use minibit_core::torrent::TorrentConfig;
use minibit_core::tracker::Tiers;
use tokio::sync::watch;
use tracing::{info, warn};

use super::PeerSink;
use super::add_options::AddOptions;
use super::open::{self, AddTorrent, Context, OpenedFiles};
use super::types::{ClientError, Progress};
use crate::resume_data::{torrent_path, write_atomic};
use crate::storage::blocking;
use crate::tracker_client::TrackerClient;
use crate::tracker_status::TrackerStatus;

/// A torrent to add to a [`crate::Client`] from a magnet link.
#[derive(Clone, Debug)]
pub struct AddMagnet {
    /// The link: info-hash, `dn`, `tr` trackers, `x.pe` peers.
    pub magnet: Magnet,
    /// Output and state folders (the `.torrent` is saved in the state
    /// folder once the metadata arrives), resume interval, the core's
    /// tunables (`file_priorities` apply once the metadata tells the
    /// files).
    pub options: AddOptions,
}

impl AddMagnet {
    /// Defaults: [`AddOptions::new`].
    pub fn new(magnet: Magnet, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            magnet,
            options: AddOptions::new(output_dir),
        }
    }

    /// Where the `.torrent` is saved once the metadata arrives:
    /// `INFOHASH.torrent` in the state folder.
    pub fn torrent_path(&self) -> PathBuf {
        torrent_path(&self.options.state_dir(), &self.magnet.info_hash)
    }

    /// The `.torrent` an earlier run saved for this link, if it is there
    /// and valid (then the torrent need not fetch the metadata again).
    pub fn saved_metainfo(&self) -> Option<Metainfo> {
        let bytes = crate::source::read_torrent_file(&self.torrent_path()).ok()?;
        Metainfo::from_bytes(&bytes)
            .ok()
            .filter(|metainfo| metainfo.info_hash() == self.magnet.info_hash)
    }

    /// The torrent to open once `metainfo` is known.
    pub(crate) fn into_add_torrent(self, metainfo: Metainfo) -> AddTorrent {
        let mut options = self.options;
        options.state_dir = Some(options.state_dir());
        AddTorrent::with_options(metainfo, options)
    }
}

/// A magnet link ready for the driver: its tracker client (each `tr` in a
/// tier of its own, in link order, as libtorrent does).
#[derive(Debug)]
pub(crate) struct PreparedMagnet {
    /// `dn`, or the info-hash in hex, until the metadata tells the name.
    pub name: String,
    pub add: AddMagnet,
    pub config: TorrentConfig,
    pub tracker: Option<TrackerClient>,
    pub tracker_status: TrackerStatus,
    pub progress: watch::Sender<Progress>,
    pub error: Arc<Mutex<Option<ClientError>>>,
}

/// Builds `add`'s tracker client.
pub(crate) fn prepare(mut add: AddMagnet, context: Context) -> Result<PreparedMagnet, ClientError> {
    let mut config = add.options.torrent.clone();
    // `None` means: seed from OS entropy (the core never reads it).
    let rng_seed = *config.rng_seed.get_or_insert_with(rand::random);
    add.options.torrent.rng_seed = Some(rng_seed);
    let tiers = Tiers::new(
        add.magnet.trackers.iter().map(|url| vec![url.clone()]),
        rng_seed,
    );
    let (tracker, tracker_status) = open::tracker_client(tiers, add.magnet.info_hash, context)?;
    let name = add
        .magnet
        .name
        .clone()
        .unwrap_or_else(|| add.magnet.info_hash.to_hex());
    let (progress, _) = watch::channel(Progress::default());
    Ok(PreparedMagnet {
        name,
        add,
        config,
        tracker,
        tracker_status,
        progress,
        error: Arc::default(),
    })
}

/// Resolves the link's `x.pe` host names (in the background) and hands
/// the addresses to the torrent; a name that does not resolve is a
/// warning. The `x.pe` addresses the core dials itself.
pub(crate) fn resolve_peers(magnet: &Magnet, peers: PeerSink) {
    let hosts: Vec<(String, u16)> = magnet
        .peers
        .iter()
        .filter_map(|peer| match peer {
            MagnetPeer::Host { host, port } => Some((host.clone(), *port)),
            MagnetPeer::Addr(_) => None,
        })
        .collect();
    if hosts.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for (host, port) in hosts {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => peers.add_peers(addrs.collect::<Vec<SocketAddr>>()),
                Err(e) => warn!("x.pe peer {host}:{port}: {e}"),
            }
        }
    });
}

/// The metadata of `add`'s link arrived: the link's trackers go into
/// `metainfo` (`announce` and one `announce-list` tier each, BEP 12), the
/// `.torrent` is saved in the state folder (a failure is a warning: the
/// download goes on), then the files are opened and checked.
///
/// # Errors
/// [`ClientError`] from opening the files or checking what is on disk.
pub(crate) async fn open(
    add: AddMagnet,
    mut metainfo: Metainfo,
) -> Result<(Metainfo, OpenedFiles), ClientError> {
    let trackers = &add.magnet.trackers;
    if !trackers.is_empty() && metainfo.announce().is_none() {
        let extras = metainfo.extras_mut();
        extras.announce = trackers.first().cloned();
        extras.announce_list = trackers.iter().map(|url| vec![url.clone()]).collect();
    }
    let path = add.torrent_path();
    let bytes = metainfo.to_bytes();
    let saved = path.clone();
    match blocking(move || write_atomic(&saved, &bytes)).await {
        Ok(()) => info!(path = %path.display(), "metadata received; .torrent saved"),
        Err(e) => warn!("cannot save {}: {e}", path.display()),
    }
    let add = add.into_add_torrent(metainfo);
    let files = open::open_files(&add).await?;
    Ok((add.metainfo, files))
}
