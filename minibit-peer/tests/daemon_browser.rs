//! The daemon's page in a real browser: Debian's `chromium` (headless)
//! driven through `chromedriver` (package `chromium-driver`) with the
//! `fantoccini` WebDriver client. Logs in through the login URL, adds a
//! torrent by URL through the page, watches it reach 100 %, pauses and
//! resumes it, opens its detail (files, piece map) and removes it.

mod common;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Proc, TOKEN, eventually, start_daemon, start_seeder};
use common::{make_single, start_stub, tools};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `chromedriver` on a free port of 127.0.0.1, ready for sessions.
fn start_chromedriver() -> (Proc, String) {
    tools::require(&tools::CHROMIUM);
    tools::require(&tools::CHROMEDRIVER);
    let port = free_port();
    let child = Command::new(tools::CHROMEDRIVER.program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium session with its own profile folder.
async fn browser(webdriver: &str, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1200,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .expect("a chromium session")
}

/// The text of the row's state cell, or `None` while the row is not there.
async fn state_of(page: &Client, info_hash: &str) -> Option<String> {
    let cell = page
        .find(Locator::Css(&format!(
            "tr[data-info-hash='{info_hash}'] td.state"
        )))
        .await
        .ok()?;
    cell.text().await.ok()
}

/// Clicks the row's button `class` (`pause`, `resume`, `remove`).
async fn click(page: &Client, info_hash: &str, class: &str) {
    let button = eventually(class, || async {
        page.find(Locator::Css(&format!(
            "tr[data-info-hash='{info_hash}'] button.{class}"
        )))
        .await
        .ok()
    })
    .await;
    // The list is redrawn every second: a button may go stale under us.
    if button.click().await.is_err() {
        page.find(Locator::Css(&format!(
            "tr[data-info-hash='{info_hash}'] button.{class}"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    }
}

/// Opens the page: without the token it offers no adding; logs in through
/// the login URL and adds the `.torrent` at `uri` with the URL form.
async fn log_in_and_add(page: &Client, api: &str, uri: &str) {
    // Without the token the page offers no adding.
    page.goto(&format!("{api}/")).await.unwrap();
    let form = page.find(Locator::Id("add-url")).await.unwrap();
    assert!(!form.is_displayed().await.unwrap(), "logged out: no form");

    page.goto(&format!("{api}/#token={TOKEN}")).await.unwrap();
    let form = eventually("the add form", || async {
        let form = page.find(Locator::Id("add-url")).await.ok()?;
        form.is_displayed().await.ok()?.then_some(form)
    })
    .await;
    assert!(!page.current_url().await.unwrap().as_str().contains(TOKEN));
    form.find(Locator::Css("input[name=uri]"))
        .await
        .unwrap()
        .send_keys(uri)
        .await
        .unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn add_watch_pause_resume_and_remove_through_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, state, profile) = (
        dir.path().join("seed"),
        dir.path().join("state"),
        dir.path().join("profile"),
    );
    std::fs::create_dir_all(&seed_dir).unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(&seed_dir, "holiday.bin", 700_000, &stub.announce_url());
    let torrent = dir.path().join("holiday.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    stub.publish(metainfo.clone());
    let info_hash = metainfo.info_hash().to_hex();

    let (_driver, webdriver) = start_chromedriver();
    let _seeder = start_seeder(&torrent, &seed_dir);
    let daemon = start_daemon(&state);
    let page = browser(&webdriver, &profile).await;

    log_in_and_add(
        &page,
        &daemon.api,
        &format!("{}/torrents/holiday.bin.torrent", stub.base),
    )
    .await;

    eventually("seeding at 100 %", || async {
        let state = state_of(&page, &info_hash).await?;
        let progress = page
            .find(Locator::Css(&format!(
                "tr[data-info-hash='{info_hash}'] td.progress"
            )))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (state == "seeding" && progress.contains("100.0 %")).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(state.join("downloads/holiday.bin")).unwrap(),
        std::fs::read(seed_dir.join("holiday.bin")).unwrap()
    );

    // The detail: its file and the piece map.
    page.find(Locator::Css(&format!(
        "tr[data-info-hash='{info_hash}'] a.name"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let pieces = metainfo.layout().piece_count();
    eventually("the detail", || async {
        let text = page
            .find(Locator::Id("detail-pieces"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (text == format!("{pieces} of {pieces} pieces")).then_some(())
    })
    .await;
    let file = page.find(Locator::Css("#files tbody tr")).await.unwrap();
    assert!(file.text().await.unwrap().contains("holiday.bin"));

    if let Some(dir) = std::env::var_os("MINIBIT_SCREENSHOTS") {
        let png = page.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join("daemon-page.png"), png).unwrap();
    }

    click(&page, &info_hash, "pause").await;
    eventually("paused", || async {
        (state_of(&page, &info_hash).await? == "paused").then_some(())
    })
    .await;
    click(&page, &info_hash, "resume").await;
    eventually("seeding again", || async {
        (state_of(&page, &info_hash).await? == "seeding").then_some(())
    })
    .await;

    // Remove, keeping the data (the confirm asks about deleting it).
    click(&page, &info_hash, "remove").await;
    page.dismiss_alert().await.unwrap();
    eventually("the row to go", || async {
        state_of(&page, &info_hash).await.is_none().then_some(())
    })
    .await;
    assert!(
        page.find(Locator::Id("empty"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    assert!(state.join("downloads/holiday.bin").exists(), "data kept");
    page.close().await.unwrap();
}
