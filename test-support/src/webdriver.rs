//! A real browser for the web pages' tests: Debian's `chromium` (headless)
//! driven through `chromedriver` (package `chromium-driver`) with the
//! `fantoccini` WebDriver client, everything on 127.0.0.1.

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::process::{Killed, free_port};
use crate::tools;

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
