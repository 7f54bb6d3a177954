//! The daemon's page in a real browser: Debian's `chromium` (headless)
//! driven through `chromedriver` (package `chromium-driver`) with the
//! `fantoccini` WebDriver client. Logs in through the login URL, adds a
//! torrent by URL through the page, opens its detail, sets a download
//! limit with its form, sees the seeder (started only then) in the peers
//! table, the tracker's answer and pieces downloading in the piece map,
//! watches it reach 100 %, pauses and resumes it, and removes it; adds a
//! `.torrent` dropped on the page and removes it; then
//! subscribes to a tracker with a glob through the page (a second time is
//! refused with the daemon's 409) and unsubscribes with the row's button.

mod common;

use std::path::Path;

use common::daemon::{TOKEN, eventually, start_daemon, start_seeder};
use common::{make_single, start_stub};
use fantoccini::{Client, Locator};
use serde_json::json;
use test_support::webdriver::{
    assert_hidden, browser, log_in, screenshot_if_asked, start_chromedriver, text_of,
};

/// The text of the row's state cell, or `None` while the row is not there.
async fn state_of(page: &Client, info_hash: &str) -> Option<String> {
    text_of(page, &format!("tr[data-info-hash='{info_hash}'] td.state")).await
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
    assert_hidden(page, "add-url").await;
    assert_hidden(page, "subscribe").await;

    let form = log_in(page, api, TOKEN, "add-url").await;
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

/// Opens the torrent's detail before any seeder: the tracker answered and
/// the download limit set with the form (100 kB/s: 700 kB take seconds)
/// reaches the API.
async fn open_detail_and_limit(page: &Client, api: &str, info_hash: &str, announce: &str) {
    // The detail, before any seeder: the tracker answered, no peer yet.
    let name = eventually("the row", || async {
        page.find(Locator::Css(&format!(
            "tr[data-info-hash='{info_hash}'] a.name"
        )))
        .await
        .ok()
    })
    .await;
    name.click().await.unwrap();
    eventually("the tracker's answer", || async {
        let url = text_of(page, "#trackers td.url").await?;
        let error = text_of(page, "#trackers td.error").await?;
        let announced = text_of(page, "#trackers tbody tr td:nth-child(3)").await?;
        (url == announce && error.is_empty() && !announced.is_empty()).then_some(())
    })
    .await;
    // A download limit through the form (100 kB/s: 700 kB take seconds).
    let limits = eventually("the limits form", || async {
        let form = page.find(Locator::Id("limits")).await.ok()?;
        form.is_displayed().await.ok()?.then_some(form)
    })
    .await;
    let field = limits
        .find(Locator::Css("input[name=download_limit]"))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys("100000").await.unwrap();
    limits
        .find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let detail = format!("{api}/api/torrents/{info_hash}");
    eventually("the limit applied", || async {
        let detail: serde_json::Value = reqwest::get(&detail).await.ok()?.json().await.ok()?;
        (detail["download_limit"] == 100_000).then_some(())
    })
    .await;
}

/// The seeder is in the peers table while we download, with its client
/// name, and pieces show as downloading.
async fn see_the_seeder_downloading(page: &Client) {
    // The seeder joins: it is in the peers table while we download, with
    // its client name, and pieces show as downloading.
    eventually("the seeder in the peers table", || async {
        let address = text_of(page, "#peers td.address").await?;
        let client = text_of(page, "#peers td.client").await?;
        (address.starts_with("127.0.0.1:") && client.starts_with("minibit ")).then_some(())
    })
    .await;
    eventually("pieces downloading", || async {
        let text = text_of(page, "#detail-pieces").await?;
        let busy: u32 = text
            .split(", ")
            .nth(1)?
            .strip_suffix(" downloading")?
            .parse()
            .ok()?;
        (busy > 0).then_some(())
    })
    .await;
}

/// Drops `torrent` (the bytes of a `.torrent`) on the page as a file
/// named `name` (a synthetic drop event carrying it, as a file dragged
/// from the desktop would).
async fn drop_file(page: &Client, name: &str, torrent: &[u8]) {
    page.execute(
        "const file = new File([new Uint8Array(arguments[0])], arguments[1]);
         const data = new DataTransfer();
         data.items.add(file);
         document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
         return null;",
        vec![json!(torrent), json!(name)],
    )
    .await
    .unwrap();
}

/// Drops a `.torrent` (its tracker a closed port) on the page: its row
/// comes; removes it with the row's button.
async fn drop_a_torrent_and_remove_it(page: &Client, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let metainfo = make_single(dir, "dropped.bin", 40_000, "http://127.0.0.1:9/announce");
    let info_hash = metainfo.info_hash().to_hex();
    drop_file(page, "dropped.torrent", &metainfo.to_bytes()).await;
    eventually("the dropped torrent's row", || async {
        let name = text_of(page, &format!("tr[data-info-hash='{info_hash}'] a.name")).await?;
        (name == "dropped.bin").then_some(())
    })
    .await;
    assert_eq!(
        status_line(page).await.unwrap(),
        format!("added {info_hash}")
    );
    click(page, &info_hash, "remove").await;
    page.accept_alert().await.unwrap();
    eventually("the dropped torrent's row to go", || async {
        state_of(page, &info_hash).await.is_none().then_some(())
    })
    .await;
}

/// The text of the page's status line.
async fn status_line(page: &Client) -> Option<String> {
    text_of(page, "#status").await
}

/// The daemon's subscriptions as its API lists them.
async fn subscriptions(api: &str) -> serde_json::Value {
    reqwest::get(format!("{api}/api/subscriptions"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Fills the subscribe form with `tracker` and `glob` and sends it.
async fn submit_subscription(page: &Client, tracker: &str, glob: &str) {
    let form = page.find(Locator::Id("subscribe")).await.unwrap();
    for (name, value) in [("tracker", tracker), ("glob", glob)] {
        let field = form
            .find(Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Subscribes to `tracker` (nothing listens there: the daemon only keeps
/// retrying) for `*.jpg` with the form, sees the row, is refused a second
/// time, and unsubscribes with the row's button.
async fn subscribe_and_unsubscribe(page: &Client, api: &str) {
    const TRACKER: &str = "http://127.0.0.1:9";
    submit_subscription(page, TRACKER, "*.jpg").await;
    let row = "#subscriptions tbody tr";
    eventually("the subscription's row", || async {
        let tracker = text_of(page, &format!("{row} td.tracker")).await?;
        let glob = text_of(page, &format!("{row} td.glob")).await?;
        (tracker == TRACKER && glob == "*.jpg").then_some(())
    })
    .await;
    assert_eq!(
        subscriptions(api).await,
        json!([{"tracker": TRACKER, "glob": "*.jpg"}])
    );
    submit_subscription(page, TRACKER, "*.jpg").await;
    eventually("the refusal", || async {
        let status = status_line(page).await?;
        (status.starts_with("not subscribed: 409") && status.contains("already subscribed"))
            .then_some(())
    })
    .await;

    // The table is redrawn every 5 s: a button may go stale under us.
    let unsubscribe = format!("{row} button.unsubscribe");
    let clicked = page
        .find(Locator::Css(&unsubscribe))
        .await
        .unwrap()
        .click()
        .await;
    if clicked.is_err() {
        page.find(Locator::Css(&unsubscribe))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    eventually("the row to go", || async {
        let empty = page.find(Locator::Id("no-subscriptions")).await.ok()?;
        (page.find(Locator::Css(row)).await.is_err() && empty.is_displayed().await.ok()?)
            .then_some(())
    })
    .await;
    assert_eq!(subscriptions(api).await, json!([]));
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
    let daemon = start_daemon(&state);
    let page = browser(&webdriver, &profile).await;

    log_in_and_add(
        &page,
        &daemon.api,
        &format!("{}/torrents/holiday.bin.torrent", stub.base),
    )
    .await;

    open_detail_and_limit(&page, &daemon.api, &info_hash, &stub.announce_url()).await;
    let _seeder = start_seeder(&torrent, &seed_dir);
    see_the_seeder_downloading(&page).await;
    screenshot_if_asked(&page, "daemon-page.png").await;

    eventually("seeding at 100 %", || async {
        let state = state_of(&page, &info_hash).await?;
        let progress = text_of(
            &page,
            &format!("tr[data-info-hash='{info_hash}'] td.progress"),
        )
        .await?;
        (state == "seeding" && progress.contains("100.0 %")).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(state.join("downloads/holiday.bin")).unwrap(),
        std::fs::read(seed_dir.join("holiday.bin")).unwrap()
    );

    // The detail: its file and the piece map, every piece verified.
    let pieces = metainfo.layout().piece_count();
    eventually("the detail", || async {
        let text = text_of(&page, "#detail-pieces").await?;
        (text == format!("{pieces} of {pieces} pieces, 0 downloading")).then_some(())
    })
    .await;
    let file = page.find(Locator::Css("#files tbody tr")).await.unwrap();
    assert!(file.text().await.unwrap().contains("holiday.bin"));
    // Sizes for people, the exact figure in the title.
    let size = format!("tr[data-info-hash='{info_hash}'] td.size");
    assert_eq!(text_of(&page, &size).await.unwrap(), "683.59 KiB");
    let size = page.find(Locator::Css(&size)).await.unwrap();
    assert_eq!(
        size.attr("title").await.unwrap().as_deref(),
        Some("700000 bytes")
    );

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

    drop_a_torrent_and_remove_it(&page, &dir.path().join("dropped")).await;
    subscribe_and_unsubscribe(&page, &daemon.api).await;
    page.close().await.unwrap();
}
