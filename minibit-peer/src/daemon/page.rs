//! `GET /`: the daemon's page. Framework-free HTML ([`PAGE`]) and
//! JavaScript ([`SCRIPT`], served at `/index.js` after
//! [`crate::http_api::PAGE_COMMON_SCRIPT`] at `/common.js`), compiled into the
//! binary. The page lists the torrents with progress bars, rates, peers
//! and ETA (live from `/api/events`), adds a torrent by URL, magnet link
//! or `.torrent` file (chosen, or dropped anywhere on the page), pauses, resumes and removes, and shows a torrent's files (with
//! check boxes: un-checked files are skipped) and piece map, and lists the
//! subscriptions to trackers, adds and removes them. The API token
//! comes from the login URL (`http://ADDR/#token=...`, printed by the
//! daemon) and is kept in the browser's localStorage. Served with a
//! Content-Security-Policy that allows only this origin's scripts and no
//! framing.

/// The page.
pub const PAGE: &str = include_str!("page.html");

/// The page's script.
pub const SCRIPT: &str = include_str!("page.js");

/// The `Content-Security-Policy` the page is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
