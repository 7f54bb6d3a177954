//! `minibit-tracker publish`: the HTTP client side of `POST /api/publish`.
//! A file is streamed from disk (never read into memory whole); a file
//! named `*.torrent` is sent as a `.torrent` (`application/x-bittorrent`).

use std::path::Path;

use anyhow::Context as _;
use tokio_util::io::ReaderStream;

use crate::api::TORRENT_TYPE;
use crate::publish::{MAX_TORRENT_BYTES, Published};

/// Publishes `file` into the tracker at `tracker` (`http://HOST:PORT`)
/// with the API `token`, and returns the tracker's answer.
///
/// # Errors
/// The file cannot be read, the tracker cannot be reached, or it refused
/// the publication (its JSON error is in the message).
pub async fn publish(tracker: &str, token: &str, file: &Path) -> anyhow::Result<Published> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name in UTF-8", file.display()))?;
    let meta = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("{}: cannot publish it", file.display()))?;
    anyhow::ensure!(
        meta.is_file(),
        "{}: only a file can be published (for a folder, make a .torrent with `minibit-peer create` and publish that)",
        file.display()
    );
    let url = format!("{}/api/publish", tracker.trim_end_matches('/'));
    let request = reqwest::Client::new().post(&url).bearer_auth(token);
    let is_torrent = name.ends_with(".torrent");
    let request = if is_torrent {
        anyhow::ensure!(
            meta.len() <= MAX_TORRENT_BYTES as u64,
            "{}: a .torrent may be at most {MAX_TORRENT_BYTES} bytes",
            file.display()
        );
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("{}: cannot read it", file.display()))?;
        request
            .header(reqwest::header::CONTENT_TYPE, TORRENT_TYPE)
            .body(bytes)
    } else {
        let reader = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("{}: cannot read it", file.display()))?;
        request
            .query(&[("name", name)])
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, meta.len())
            .body(reqwest::Body::wrap_stream(ReaderStream::new(reader)))
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the tracker at {url}"))?;
    let status = response.status();
    if status.is_success() {
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{url}: answer broke off"))?;
        return serde_json::from_slice(&body).with_context(|| format!("{url}: unexpected answer"));
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or(body);
    anyhow::bail!(
        "the tracker refused {}: {status}: {message}",
        file.display()
    )
}
