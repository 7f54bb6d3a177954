//! The remote verbs (`add`, `list`, `pause`, `resume`, `remove`,
//! `subscribe`, `unsubscribe`, `subscriptions`): a client of a running
//! daemon's API, like `transmission-remote`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::HumanBytes;
use minibit_peer::daemon::api::TORRENT_TYPE;
use reqwest::{Method, RequestBuilder, Response};
use serde::Deserialize;

use minibit_peer::daemon::subscribe::Subscription;

use crate::cli::{AddArgs, RemoteArgs, SubscriptionArgs, TOKEN_VAR, TargetArgs};

/// One torrent as `GET /api/torrents` lists it (the fields printed).
#[derive(Deserialize)]
struct Listed {
    info_hash: String,
    name: String,
    state: String,
    progress: f64,
    download_rate: f64,
    upload_rate: f64,
    peers: usize,
    eta: Option<u64>,
}

/// A daemon's API.
struct Remote<'a> {
    client: reqwest::Client,
    args: &'a RemoteArgs,
}

impl<'a> Remote<'a> {
    fn new(args: &'a RemoteArgs) -> Result<Self> {
        Ok(Self {
            client: minibit_peer::http::client(Duration::from_secs(60))?,
            args,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.args.api.trim_end_matches('/'))
    }

    /// A request that changes state: carries the token.
    fn authorized(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        let Some(token) = &self.args.token else {
            bail!(
                "this needs the daemon's API token: --token TOKEN or {TOKEN_VAR} (the daemon's STATE/token file)"
            );
        };
        Ok(self
            .client
            .request(method, self.url(path))
            .bearer_auth(token.trim()))
    }

    /// Sends `request`; a refusal becomes an error with the daemon's message.
    async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the daemon at {}", self.args.api))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let message = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        bail!("the daemon refused: {message} (HTTP {})", status.as_u16())
    }

    async fn list(&self) -> Result<Vec<Listed>> {
        let response = self
            .send(self.client.get(self.url("/api/torrents")))
            .await?;
        response
            .json()
            .await
            .context("the daemon's list is not JSON")
    }

    /// The info-hashes of `torrents` (info-hashes, or names looked up).
    async fn resolve(&self, torrents: &[String]) -> Result<Vec<String>> {
        let is_hash = |t: &str| t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit());
        let list = if torrents.iter().all(|t| is_hash(t)) {
            Vec::new()
        } else {
            self.list().await?
        };
        torrents
            .iter()
            .map(|t| {
                if is_hash(t) {
                    return Ok(t.to_ascii_lowercase());
                }
                list.iter()
                    .find(|l| l.name == *t)
                    .map(|l| l.info_hash.clone())
                    .with_context(|| format!("the daemon has no torrent named {t:?}"))
            })
            .collect()
    }
}

/// `minibit-peer add`: prints the info-hash.
pub async fn add(args: &AddArgs) -> Result<()> {
    let remote = Remote::new(&args.remote)?;
    let request = remote.authorized(Method::POST, "/api/torrents")?;
    let by_uri = ["http://", "https://", "magnet:"]
        .iter()
        .any(|scheme| args.source.starts_with(scheme));
    let request = if by_uri {
        let only: Vec<serde_json::Value> = args
            .only
            .iter()
            .map(|o| {
                o.parse::<u64>()
                    .map_or_else(|_| o.clone().into(), Into::into)
            })
            .collect();
        request.json(&serde_json::json!({
            "uri": args.source,
            "save_dir": args.save_dir,
            "only": only,
            "paused": args.paused,
        }))
    } else {
        let bytes = minibit_peer::source::read_torrent_file(std::path::Path::new(&args.source))?;
        let mut query: Vec<(&str, String)> =
            args.only.iter().map(|o| ("only", o.clone())).collect();
        if let Some(dir) = &args.save_dir {
            query.push(("save_dir", dir.clone()));
        }
        query.push(("paused", args.paused.to_string()));
        request
            .query(&query)
            .header(reqwest::header::CONTENT_TYPE, TORRENT_TYPE)
            .body(bytes)
    };
    let answer: serde_json::Value = remote.send(request).await?.json().await?;
    println!("{}", answer["info_hash"].as_str().unwrap_or_default());
    Ok(())
}

/// `minibit-peer list`: one line per torrent.
pub async fn list(args: &RemoteArgs) -> Result<()> {
    let remote = Remote::new(args)?;
    let list = remote.list().await?;
    if list.is_empty() {
        println!("no torrent");
    }
    for t in list {
        let eta = t.eta.map_or_else(|| "-".to_owned(), |s| format!("{s}s"));
        println!(
            "{}  {:<11}  {:>5.1}%  down {}/s  up {}/s  peers {}  eta {}  {}",
            t.info_hash,
            t.state,
            t.progress * 100.0,
            HumanBytes(t.download_rate as u64),
            HumanBytes(t.upload_rate as u64),
            t.peers,
            eta,
            t.name
        );
    }
    Ok(())
}

/// `minibit-peer pause|resume`: `verb` is `pause` or `resume`.
pub async fn pause_or_resume(args: &TargetArgs, verb: &str) -> Result<()> {
    let remote = Remote::new(&args.remote)?;
    for info_hash in remote.resolve(&args.torrents).await? {
        let path = format!("/api/torrents/{info_hash}/{verb}");
        remote.send(remote.authorized(Method::POST, &path)?).await?;
        println!("{verb}d {info_hash}");
    }
    Ok(())
}

/// `minibit-peer remove`.
pub async fn remove(args: &TargetArgs, delete_data: bool) -> Result<()> {
    let remote = Remote::new(&args.remote)?;
    for info_hash in remote.resolve(&args.torrents).await? {
        let path = format!("/api/torrents/{info_hash}?delete_data={delete_data}");
        remote
            .send(remote.authorized(Method::DELETE, &path)?)
            .await?;
        println!(
            "removed {info_hash}{}",
            if delete_data { " and its data" } else { "" }
        );
    }
    Ok(())
}

/// `minibit-peer subscribe`: `POST /api/subscriptions`.
pub async fn subscribe(args: &SubscriptionArgs) -> Result<()> {
    let remote = Remote::new(&args.remote)?;
    let subscription = &args.subscription;
    let request = remote
        .authorized(Method::POST, "/api/subscriptions")?
        .json(&serde_json::json!({
            "tracker": subscription.tracker(),
            "glob": subscription.glob(),
        }));
    remote.send(request).await?;
    println!("subscribed to {subscription}");
    Ok(())
}

/// `minibit-peer unsubscribe`: `DELETE /api/subscriptions`.
pub async fn unsubscribe(args: &SubscriptionArgs) -> Result<()> {
    let remote = Remote::new(&args.remote)?;
    let subscription = &args.subscription;
    let mut query = vec![("tracker", subscription.tracker())];
    query.extend(subscription.glob().map(|glob| ("glob", glob)));
    let request = remote
        .authorized(Method::DELETE, "/api/subscriptions")?
        .query(&query);
    remote.send(request).await?;
    println!("unsubscribed from {subscription}");
    Ok(())
}

/// `minibit-peer subscriptions`: one `TRACKER_URL[#GLOB]` a line.
pub async fn subscriptions(args: &RemoteArgs) -> Result<()> {
    let remote = Remote::new(args)?;
    let response = remote
        .send(remote.client.get(remote.url("/api/subscriptions")))
        .await?;
    let list: Vec<Subscription> = response
        .json()
        .await
        .context("the daemon's subscriptions are not JSON")?;
    if list.is_empty() {
        println!("no subscription");
    }
    for subscription in list {
        println!("{subscription}");
    }
    Ok(())
}
