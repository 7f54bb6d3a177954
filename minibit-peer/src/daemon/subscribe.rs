//! Subscriptions to minibit trackers' catalogues:
//! `minibit-peer daemon --subscribe TRACKER_URL[#GLOB]`.
//!
//! A subscription names a tracker (its base URL) and optionally a glob
//! over torrent names (`globset` syntax, case-sensitive; none: every
//! torrent). Every publication of that tracker whose name matches is
//! added to the daemon (its `.torrent` fetched from the tracker's
//! catalogue), downloaded into the download root, then seeded like any
//! other torrent. A removal on the tracker keeps the subscriber's copy.
//!
//! Following a tracker ([`Daemon::follow_subscriptions`]): open its
//! `/api/catalogue/events` stream, list the catalogue (`/torrents`) to
//! catch up on what was published before (or while disconnected), then
//! take each `publish` event as it comes; on `lagged`, list again. When
//! the tracker goes away the stream is opened again after 1 s, doubling
//! up to 30 s, and the catalogue listed again, so nothing published
//! meanwhile is missed.
//!
//! Subscriptions are kept in the daemon's database ([`super::store`]),
//! each with the info-hashes of the publications it took: a torrent
//! already in the daemon is not added twice, and one the user removed
//! from the daemon is not added back.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::{AbortHandle, abortable};
use futures::stream::FuturesUnordered;
use globset::{Glob, GlobMatcher};
use minibit_core::metainfo::{InfoHash, Metainfo};
use serde::{Deserialize, Deserializer, Serialize};

use super::store::{Store, StoreError};
use super::{AddRequest, Daemon, DaemonError, MAX_TORRENT_BYTES, unix_now};
use crate::catalogue::{self, CatalogueChange, CatalogueError, CatalogueEvents, Publication};
use crate::http::get_bounded;

/// Wait before the first reconnection to a tracker that went away.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two reconnections (the wait doubles from
/// [`FIRST_RETRY`]).
const LAST_RETRY: Duration = Duration::from_secs(30);
/// Longest wait to connect, or for the next bytes of a response; a
/// tracker's event stream sends a keep-alive every 15 s.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a subscription is not valid.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The tracker is not an http(s) URL without a query.
    #[error("{0:?} is not a tracker's http(s):// base URL (without ?query)")]
    BadTracker(String),
    /// The glob does not parse.
    #[error("bad glob {glob:?}")]
    BadGlob {
        /// The glob.
        glob: String,
        /// Why.
        source: globset::Error,
    },
}

/// A tracker's catalogue followed by the daemon, all of it or the names
/// matching a glob. Written `TRACKER_URL[#GLOB]`; serialized as
/// `{"tracker": URL, "glob": GLOB or null}` and read back from that shape
/// (`glob` may be left out; other fields are refused), checked as
/// [`Subscription::new`] checks it.
#[derive(Clone, Debug, Serialize)]
pub struct Subscription {
    tracker: String,
    glob: Option<String>,
    #[serde(skip)]
    matcher: Option<GlobMatcher>,
}

impl Subscription {
    /// The subscription to `tracker` (its base URL, a trailing `/`
    /// dropped) for the names matching `glob` (`None` or empty: every name).
    ///
    /// # Errors
    /// [`SubscriptionError`].
    pub fn new(tracker: &str, glob: Option<&str>) -> Result<Self, SubscriptionError> {
        let bad = || SubscriptionError::BadTracker(tracker.to_owned());
        let url = reqwest::Url::parse(tracker).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(bad());
        }
        let glob = glob.filter(|g| !g.is_empty());
        let matcher = glob
            .map(|g| {
                Glob::new(g).map(|g| g.compile_matcher()).map_err(|source| {
                    SubscriptionError::BadGlob {
                        glob: g.to_owned(),
                        source,
                    }
                })
            })
            .transpose()?;
        Ok(Self {
            tracker: tracker.trim_end_matches('/').to_owned(),
            glob: glob.map(str::to_owned),
            matcher,
        })
    }

    /// The tracker's base URL.
    pub fn tracker(&self) -> &str {
        &self.tracker
    }

    /// The glob names must match (`None`: every name).
    pub fn glob(&self) -> Option<&str> {
        self.glob.as_deref()
    }

    /// Whether the torrent `name` is one this subscription takes.
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.as_ref().is_none_or(|m| m.is_match(name))
    }
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        (&self.tracker, &self.glob) == (&other.tracker, &other.glob)
    }
}

impl Eq for Subscription {}

impl FromStr for Subscription {
    type Err = SubscriptionError;

    /// Parses `TRACKER_URL[#GLOB]`.
    fn from_str(text: &str) -> Result<Self, SubscriptionError> {
        match text.split_once('#') {
            Some((tracker, glob)) => Self::new(tracker, Some(glob)),
            None => Self::new(text, None),
        }
    }
}

impl<'de> Deserialize<'de> for Subscription {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The serialized shape.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Shape {
            tracker: String,
            glob: Option<String>,
        }
        let shape = Shape::deserialize(deserializer)?;
        Self::new(&shape.tracker, shape.glob.as_deref()).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Subscription {
    /// `TRACKER_URL` or `TRACKER_URL#GLOB`, as stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.glob {
            Some(glob) => write!(f, "{}#{glob}", self.tracker),
            None => f.write_str(&self.tracker),
        }
    }
}

/// The subscriptions stored in `store`; one that no longer parses is
/// logged and left out.
///
/// # Errors
/// [`StoreError`].
pub(super) fn stored(store: &Store) -> Result<Vec<Subscription>, StoreError> {
    Ok(store
        .subscriptions()?
        .into_iter()
        .filter_map(|spec| {
            spec.parse()
                .map_err(|e| tracing::error!(%spec, error = %e, "ignoring a stored subscription"))
                .ok()
        })
        .collect())
}

impl Daemon {
    /// Every subscription, oldest first.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.subscriptions.borrow().clone()
    }

    /// Subscribes to `subscription` (kept across restarts); `false` when
    /// it is there already. A running [`Daemon::follow_subscriptions`]
    /// starts following it.
    ///
    /// # Errors
    /// [`DaemonError::Store`].
    pub fn add_subscription(&self, subscription: Subscription) -> Result<bool, DaemonError> {
        if !self
            .store
            .add_subscription(&subscription.to_string(), unix_now())?
        {
            return Ok(false);
        }
        tracing::info!(%subscription, "subscribed");
        self.subscriptions
            .send_modify(|list| list.push(subscription));
        Ok(true)
    }

    /// Unsubscribes; the torrents it added stay.
    ///
    /// # Errors
    /// [`DaemonError::UnknownSubscription`] (404), [`DaemonError::Store`].
    pub fn remove_subscription(&self, subscription: &Subscription) -> Result<(), DaemonError> {
        let spec = subscription.to_string();
        if !self.store.remove_subscription(&spec)? {
            return Err(DaemonError::UnknownSubscription(spec));
        }
        tracing::info!(%subscription, "unsubscribed");
        self.subscriptions
            .send_modify(|list| list.retain(|s| s != subscription));
        Ok(())
    }

    /// Follows every subscription, those added later too, until dropped
    /// (see the module docs). Run it once, next to the API.
    ///
    /// # Errors
    /// [`crate::http::ClientError`] at once when the HTTP client cannot
    /// be built (bad extra root certificates).
    pub async fn follow_subscriptions(&self) -> Result<Infallible, crate::http::ClientError> {
        let http = crate::http::streaming_client(TIMEOUT)?;
        let mut changes = self.subscriptions.subscribe();
        let mut running: HashMap<String, AbortHandle> = HashMap::new();
        let mut followers = FuturesUnordered::new();
        loop {
            let wanted = changes.borrow_and_update().clone();
            running.retain(|spec, follower| {
                let keep = wanted.iter().any(|s| s.to_string() == *spec);
                if !keep {
                    follower.abort();
                }
                keep
            });
            for subscription in wanted {
                if let Entry::Vacant(slot) = running.entry(subscription.to_string()) {
                    let (follower, handle) = abortable(self.follow(subscription, &http));
                    slot.insert(handle);
                    followers.push(follower);
                }
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        // The daemon holds the sender: never happens.
                        std::future::pending::<()>().await;
                    }
                }
                // Unsubscribed followers end here.
                Some(_) = followers.next() => {}
            }
        }
    }

    /// Follows one subscription for ever, reconnecting with back-off.
    async fn follow(&self, subscription: Subscription, http: &reqwest::Client) {
        let mut retry = FIRST_RETRY;
        loop {
            match CatalogueEvents::open(http, subscription.tracker()).await {
                Ok(events) => {
                    tracing::info!(%subscription, "following the tracker's catalogue");
                    retry = FIRST_RETRY;
                    match self.follow_events(&subscription, http, events).await {
                        Ok(()) => {
                            tracing::info!(%subscription, "the tracker ended its event stream");
                        }
                        Err(e) => tracing::warn!(%subscription, error = %e, "lost the tracker"),
                    }
                }
                Err(e) => tracing::warn!(
                    %subscription,
                    error = %e,
                    retry_in_s = retry.as_secs(),
                    "cannot reach the tracker"
                ),
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    }

    /// Catches up with the catalogue, then takes the publications of
    /// `events` until it ends.
    async fn follow_events(
        &self,
        subscription: &Subscription,
        http: &reqwest::Client,
        mut events: CatalogueEvents,
    ) -> Result<(), CatalogueError> {
        self.catch_up(subscription, http).await?;
        while let Some(change) = events.next().await? {
            match change {
                CatalogueChange::Published(publication) => {
                    self.take(subscription, http, &publication).await;
                }
                CatalogueChange::Removed(publication) => tracing::info!(
                    %subscription,
                    name = %publication.name,
                    "removed from the tracker; the copy here stays"
                ),
                CatalogueChange::Lagged => self.catch_up(subscription, http).await?,
            }
        }
        Ok(())
    }

    /// Takes every matching publication of the catalogue.
    async fn catch_up(
        &self,
        subscription: &Subscription,
        http: &reqwest::Client,
    ) -> Result<(), CatalogueError> {
        for entry in catalogue::search(http, subscription.tracker(), "").await? {
            let publication = Publication {
                name: entry.name,
                info_hash: entry.info_hash,
            };
            self.take(subscription, http, &publication).await;
        }
        Ok(())
    }

    /// Adds `publication` if it matches, was not taken before and is not
    /// here yet; a failure is logged (the next catch-up tries again).
    async fn take(
        &self,
        subscription: &Subscription,
        http: &reqwest::Client,
        publication: &Publication,
    ) {
        if !subscription.matches(&publication.name) {
            return;
        }
        match self.try_take(subscription, http, publication).await {
            Ok(false) => {}
            Ok(true) => tracing::info!(
                %subscription,
                name = %publication.name,
                info_hash = %publication.info_hash,
                "added a publication"
            ),
            Err(e) => tracing::warn!(
                %subscription,
                name = %publication.name,
                error = %e,
                "cannot add a publication"
            ),
        }
    }

    /// [`Daemon::take`]; `true` when the torrent was added.
    async fn try_take(
        &self,
        subscription: &Subscription,
        http: &reqwest::Client,
        publication: &Publication,
    ) -> Result<bool, DaemonError> {
        let info_hash = InfoHash::from_hex(&publication.info_hash).ok_or_else(|| {
            DaemonError::BadRequest(format!(
                "the tracker lists {:?} with info-hash {:?}",
                publication.name, publication.info_hash
            ))
        })?;
        let spec = subscription.to_string();
        if self.store.is_taken(&spec, &info_hash)? {
            return Ok(false);
        }
        let here = self
            .torrents
            .lock()
            .await
            .iter()
            .any(|(ih, _)| *ih == info_hash);
        let added = if here {
            false
        } else {
            let url = catalogue::torrent_url(subscription.tracker(), &publication.name);
            let torrent = get_bounded(http, &url, MAX_TORRENT_BYTES)
                .await
                .map_err(|e| DaemonError::Fetch {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            let found = Metainfo::from_bytes(&torrent)
                .map_err(DaemonError::BadTorrent)?
                .info_hash();
            if found != info_hash {
                return Err(DaemonError::Fetch {
                    url,
                    reason: format!("its info-hash is {found}, the catalogue says {info_hash}"),
                });
            }
            let request = AddRequest {
                torrent,
                ..AddRequest::default()
            };
            match self.add(request).await {
                Ok(_) => true,
                Err(DaemonError::Duplicate(_)) => false,
                Err(e) => return Err(e),
            }
        };
        self.store.mark_taken(&spec, &info_hash)?;
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_from_url_and_glob() {
        let all: Subscription = "http://127.0.0.1:6969/".parse().unwrap();
        assert_eq!(all.tracker(), "http://127.0.0.1:6969");
        assert_eq!(all.glob(), None);
        assert_eq!(all.to_string(), "http://127.0.0.1:6969");
        assert!(all.matches("anything.bin"));

        let photos: Subscription = "https://t.example/tracker#*.jpg".parse().unwrap();
        assert_eq!(photos.tracker(), "https://t.example/tracker");
        assert_eq!(photos.glob(), Some("*.jpg"));
        assert_eq!(photos.to_string(), "https://t.example/tracker#*.jpg");
        assert!(photos.matches("beach.jpg"));
        assert!(!photos.matches("beach.JPG"), "case-sensitive");
        assert!(!photos.matches("notes.txt"));
        assert_eq!(photos.to_string().parse::<Subscription>().unwrap(), photos);

        let empty: Subscription = "http://t:1#".parse().unwrap();
        assert_eq!(empty, all_of("http://t:1"));
    }

    fn all_of(tracker: &str) -> Subscription {
        Subscription::new(tracker, None).unwrap()
    }

    #[test]
    fn bad_subscriptions_are_refused_with_the_reason() {
        for bad in [
            "127.0.0.1:6969",
            "ftp://t/",
            "http://t/?q=x",
            "not a url",
            "file:///etc",
        ] {
            assert!(
                matches!(
                    bad.parse::<Subscription>(),
                    Err(SubscriptionError::BadTracker(_))
                ),
                "{bad}"
            );
        }
        let error = "http://t#[a".parse::<Subscription>().unwrap_err();
        assert!(
            matches!(error, SubscriptionError::BadGlob { .. }),
            "{error}"
        );
    }

    #[test]
    fn subscriptions_are_kept_in_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.add_subscription("http://t:1#*.jpg", 1).unwrap();
        store.add_subscription("http://t:2", 2).unwrap();
        store.add_subscription("garbage", 3).unwrap();
        let specs: Vec<String> = stored(&store)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(specs, ["http://t:1#*.jpg", "http://t:2"]);
    }
}
