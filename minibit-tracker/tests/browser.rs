//! The tracker's page in a real browser: Debian's `chromium` (headless)
//! driven through `chromedriver` (package `chromium-driver`) with the
//! `fantoccini` WebDriver client. Logs in through the login URL, publishes
//! a file through the page's form, sees it appear in the catalogue with its
//! magnet link, sees the embedded seeder's upload rate and the availability
//! of its pieces among its peers while a (rate-limited) leecher downloads
//! it, sees the row's seeders, leechers, completed downloads and announces
//! per minute follow the leecher (downloading, finished, gone) without a
//! reload, and removes it with the page's button.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::net::SocketAddr;

use fantoccini::{Client, Locator};
use minibit_core::metainfo::Metainfo;
use minibit_peer::{Session, SessionConfig, SessionHandle};
use serde_json::{Value, json};
use test_support::process::{Killed, first_line_after};
use test_support::webdriver::{
    assert_hidden, browser, log_in, screenshot_if_asked, start_chromedriver, text_of,
};

const BIN: &str = env!("CARGO_BIN_EXE_minibit-tracker");
const TOKEN: &str = "browser-test-token-0123456789";

/// `minibit-tracker --state STATE --data DATA --api-token TOKEN` on
/// 127.0.0.1 and its base URL.
fn start_tracker(state: &Path, data: &Path) -> (Killed, String) {
    let mut child = Command::new(BIN)
        .args([
            "--bind",
            "127.0.0.1:0",
            "-q",
            "--api-token",
            TOKEN,
            "--state",
        ])
        .arg(state)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = first_line_after(&mut child, "tracker listening on ");
    (Killed(child), base)
}

/// Polls `find` every 100 ms until it gives `Some`, at most 30 s.
async fn eventually<T, F, Fut>(what: &str, find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    test_support::wait::eventually(Duration::from_secs(30), what, find).await
}

async fn catalogue(base: &str) -> Vec<Value> {
    let body = reqwest::get(format!("{base}/torrents"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

/// A `minibit-peer` session downloading the published file at 30 kB/s
/// (10 s for 300 kB), into `dir/leecher`.
async fn start_leecher(base: &str, dir: &Path) -> SessionHandle {
    let torrent = reqwest::get(format!("{base}/torrents/holiday%20photos.bin.torrent"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    let mut config = SessionConfig::new(metainfo, dir.join("leecher"));
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.download_limit = 30_000;
    Session::start(config).await.unwrap()
}

/// The row's seeder upload cell shows a rate above 0 (for people, the
/// exact bytes/s in its `data-bytes`) with one peer, and
/// its availability heat map's title some piece with one copy among the
/// seeder's peers.
async fn see_the_seeder_upload(page: &Client, info_hash: &str) {
    eventually("the seeder's upload and the leecher's pieces", || async {
        let cell = format!("td.upload[data-info-hash='{info_hash}']");
        let upload = text_of(page, &cell).await?;
        let rate: u64 = page
            .find(Locator::Css(&cell))
            .await
            .ok()?
            .attr("data-bytes")
            .await
            .ok()??
            .parse()
            .ok()?;
        let heat = page
            .find(Locator::Css(&format!(
                "canvas.availability[data-info-hash='{info_hash}']"
            )))
            .await
            .ok()?
            .attr("title")
            .await
            .ok()??;
        (rate > 0
            && upload.ends_with("B/s (1 peer)")
            && heat.ends_with(" to 1 copies among the seeder's peers"))
        .then_some(())
    })
    .await;
}

/// The row's seeders, leechers and completed cells come to read
/// `counts`, with some announces per minute.
async fn see_the_counts(page: &Client, info_hash: &str, counts: [&str; 3], what: &str) {
    eventually(what, || async {
        let row = page
            .find(Locator::Css(&format!("tr[data-info-hash='{info_hash}']")))
            .await
            .ok()?;
        let mut shown = Vec::new();
        for class in ["seeders", "leechers", "completed", "announces"] {
            let cell = row.find(Locator::Css(&format!("td.{class}"))).await.ok()?;
            shown.push(cell.text().await.ok()?);
        }
        let announces: f64 = shown[3].parse().ok()?;
        (shown[..3] == counts && announces > 0.0).then_some(())
    })
    .await;
}

/// Whether the page is still the one marked by [`mark_the_page`].
async fn still_the_marked_page(page: &Client) -> bool {
    page.execute("return window.markedByTheTest === true;", vec![])
        .await
        .unwrap()
        == json!(true)
}

/// Marks the page's window: a reload would lose the mark.
async fn mark_the_page(page: &Client) {
    page.execute("window.markedByTheTest = true; return null;", vec![])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_and_remove_through_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (state, data, profile) = (
        dir.path().join("state"),
        dir.path().join("data"),
        dir.path().join("profile"),
    );
    std::fs::create_dir_all(&data).unwrap();
    let upload = dir.path().join("holiday photos.bin");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&upload, &bytes).unwrap();

    let (_driver, webdriver) = start_chromedriver();
    let (_tracker, base) = start_tracker(&state, &data);
    let page = browser(&webdriver, &profile).await;

    // Without the token the page offers no publishing.
    page.goto(&format!("{base}/")).await.unwrap();
    assert_hidden(&page, "publish").await;

    // The login URL keeps the token and drops it from the address bar.
    let form = log_in(&page, &base, TOKEN, "publish").await;

    let input = form.find(Locator::Css("input[type=file]")).await.unwrap();
    input.send_keys(upload.to_str().unwrap()).await.unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The catalogue event reloads the page with the new row.
    let link = eventually("the published row", || async {
        page.find(Locator::Css("a[href^='/torrents/holiday']"))
            .await
            .ok()
    })
    .await;
    assert_eq!(link.text().await.unwrap(), "holiday photos.bin");
    let magnet = page
        .find(Locator::Css("a[href^='magnet:?xt=urn:btih:']"))
        .await
        .expect("a magnet link per entry");
    let href = magnet.attr("href").await.unwrap().unwrap();
    let listed = catalogue(&base).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let info_hash = listed[0]["info_hash"].as_str().unwrap().to_owned();
    assert!(href.contains(&info_hash), "{href} vs {info_hash}");
    // The file landed in the data folder, byte for byte.
    assert_eq!(
        std::fs::read(data.join("holiday photos.bin")).unwrap(),
        bytes
    );
    // From here the counts change without a reload (no catalogue event).
    mark_the_page(&page).await;
    let leecher = start_leecher(&base, dir.path()).await;
    see_the_seeder_upload(&page, &info_hash).await;
    see_the_counts(&page, &info_hash, ["1", "1", "0"], "the leecher counted").await;

    screenshot_if_asked(&page, "tracker-page.png").await;
    assert!(leecher.wait_complete().await, "the leecher finishes");
    see_the_counts(
        &page,
        &info_hash,
        ["2", "0", "1"],
        "the leecher as a seeder",
    )
    .await;
    leecher.shutdown().await.unwrap();
    see_the_counts(&page, &info_hash, ["1", "0", "1"], "the leecher gone").await;
    assert!(still_the_marked_page(&page).await, "no reload");

    // Remove with the row's button, confirming the dialog.
    page.find(Locator::Css(&format!(
        "button.remove[data-info-hash='{info_hash}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    page.accept_alert().await.unwrap();
    eventually("the row to go", || async {
        let gone = page
            .find(Locator::Css("a[href^='/torrents/holiday']"))
            .await
            .is_err();
        gone.then_some(())
    })
    .await;
    assert!(catalogue(&base).await.is_empty());
    assert!(
        data.join("holiday photos.bin").exists(),
        "removing from the page keeps the data"
    );
    page.close().await.unwrap();
}
