//! A real browser for the web pages' tests: Debian's `chromium` (headless)
//! driven through `chromedriver` (package `chromium-driver`) with the
//! `fantoccini` WebDriver client, everything on 127.0.0.1.

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::process::{Killed, free_port};
use crate::tools;
use crate::wait::eventually;

/// The longest a page may take to show what a test waits for.
const PAGE: Duration = Duration::from_secs(60);

/// `chromedriver` on a free port of 127.0.0.1, ready for sessions (it
/// listens within 30 s), and its URL `http://127.0.0.1:PORT`.
///
/// # Panics
/// When `chromium` or `chromedriver` is missing (naming their Debian
/// packages), or chromedriver does not start or listen.
pub fn start_chromedriver() -> (Killed, String) {
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
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium session (1200 x 800 pixels) of the `webdriver` at
/// its URL, with its own profile folder `profile`.
pub async fn browser(webdriver: &str, profile: &Path) -> Client {
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

/// The text of the page's first element matching the CSS selector `css`,
/// or `None` while there is none.
pub async fn text_of(page: &Client, css: &str) -> Option<String> {
    page.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Asserts that the element with id `id` of the page is not displayed
/// (e.g. a form the page offers only once logged in).
pub async fn assert_hidden(page: &Client, id: &str) {
    let element = page.find(Locator::Id(id)).await.unwrap();
    assert!(!element.is_displayed().await.unwrap(), "#{id} is displayed");
}

/// Logs in through the pages' login URL `BASE/#token=TOKEN` and returns the
/// form with id `form` once it is displayed (at most 60 s), after checking
/// that the page dropped the token from the address bar.
pub async fn log_in(page: &Client, base: &str, token: &str, form: &str) -> Element {
    page.goto(&format!("{base}/#token={token}")).await.unwrap();
    let shown = eventually(PAGE, &format!("the form #{form}"), || async {
        let shown = page.find(Locator::Id(form)).await.ok()?;
        shown.is_displayed().await.ok()?.then_some(shown)
    })
    .await;
    assert!(!page.current_url().await.unwrap().as_str().contains(token));
    shown
}

/// Saves a screenshot of the page as `DIR/name` (PNG) when the environment
/// variable `MINIBIT_SCREENSHOTS` names a folder DIR; does nothing otherwise.
pub async fn screenshot_if_asked(page: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("MINIBIT_SCREENSHOTS") {
        let png = page.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}
