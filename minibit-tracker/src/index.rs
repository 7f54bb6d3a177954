//! `GET /`: the tracker's page. The catalogue (searchable with `?q=`) with
//! links to each `.torrent` and per torrent its seeders, leechers,
//! completed downloads and announces per minute (refreshed every 2 s by
//! the script from `/torrents`), and (filled in by the script from
//! `/api/torrents/{info_hash}`) the embedded seeder's upload rate and the
//! availability of each piece among its peers as a small heat map, then
//! the other swarms that announce here, which have no `.torrent` on this
//! tracker (their counts refreshed from `/swarms`), and each torrent's
//! magnet link.
//! With the API token (opened once
//! through the login URL `http://ADDR/#token=...`, then kept in the
//! browser's localStorage) it also publishes files and removes entries;
//! it reloads itself on every catalogue event. Framework-free HTML and
//! JavaScript ([`SCRIPT`], served at `/index.js` after
//! [`minibit_peer::http_api::PAGE_COMMON_SCRIPT`] at `/common.js`),
//! compiled into the binary;
//! the page is served with a Content-Security-Policy that allows only
//! this origin's scripts and no framing.

use indicatif::HumanBytes;
use minibit_core::magnet::Magnet;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::tracker::ScrapeStats;
use minibit_peer::catalogue::URL_ESCAPE;
use percent_encoding::utf8_percent_encode;
use std::fmt::Write as _;

use crate::catalogue::CatalogueEntry;

/// The page's script (token login, publish, remove, live reload).
pub const SCRIPT: &str = include_str!("index.js");

/// The `Content-Security-Policy` the page is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One catalogued torrent as the page shows it.
#[derive(Debug)]
pub struct Row<'a> {
    /// The catalogue's entry.
    pub entry: &'a CatalogueEntry,
    /// Its swarm's seeders and leechers; `downloaded`: the completed
    /// downloads.
    pub stats: ScrapeStats,
    /// Announces received in the last 60 s (estimated).
    pub announces_per_minute: f64,
}

/// The page: a search form holding `query`, the publish form, the
/// `catalogued` torrents (those matching `query`) with their swarm counts
/// and remove buttons, then the `uncatalogued` swarms (info-hash and counts).
pub fn render(
    catalogued: &[Row<'_>],
    uncatalogued: &[(InfoHash, ScrapeStats)],
    query: &str,
) -> String {
    let mut page = String::from(
        "<!doctype html>\n<html data-token-key=\"minibit-tracker-token\"><head><meta charset=\"utf-8\"><title>minibit tracker</title>\n<script src=\"/common.js\" defer></script>\n<script src=\"/index.js\" defer></script></head>\n<body>\n<h1>minibit tracker</h1>\n",
    );
    page.push_str(
        "<p id=\"login\">Not logged in: open the login URL the tracker printed at its first start (or <code>http://ADDR/#token=TOKEN</code> with its <code>STATE/token</code>) to publish and remove.</p>\n\
         <form id=\"publish\" hidden><label>Publish a file: <input type=\"file\" name=\"file\" required></label> <button>publish</button> <span id=\"status\"></span> <button type=\"button\" id=\"logout\">log out</button></form>\n",
    );
    let _ = writeln!(
        page,
        "<h2>Torrents</h2>\n<form method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"part of a name\"> <button>search</button></form>",
        escape(query)
    );
    if catalogued.is_empty() && query.is_empty() {
        page.push_str("<p>No torrent is catalogued here.</p>\n");
    } else if catalogued.is_empty() {
        let _ = writeln!(
            page,
            "<p>No torrent name contains &quot;{}&quot;.</p>",
            escape(query)
        );
    } else {
        page.push_str("<table id=\"torrents\">\n<tr><th>name</th><th>size</th><th>info-hash</th><th>seeders</th><th>leechers</th><th>completed</th><th>announces per minute</th><th>seeder upload</th><th>availability among the seeder's peers</th><th>magnet</th><th></th></tr>\n");
        for Row {
            entry,
            stats,
            announces_per_minute,
        } in catalogued
        {
            let info_hash = entry.info_hash;
            let name = escape(&entry.name);
            let _ = writeln!(
                page,
                "<tr data-info-hash=\"{info_hash}\"><td><a href=\"/torrents/{}.torrent\">{name}</a></td><td title=\"{} bytes\">{}</td><td>{info_hash}</td>{}<td class=\"announces\">{announces_per_minute:.1}</td><td class=\"upload\" data-info-hash=\"{info_hash}\"></td><td><canvas class=\"availability\" data-info-hash=\"{info_hash}\" width=\"160\" height=\"12\"></canvas></td><td>{}</td><td><button class=\"remove\" data-info-hash=\"{info_hash}\" data-name=\"{name}\" hidden>remove</button></td></tr>",
                utf8_percent_encode(&entry.name, URL_ESCAPE),
                entry.size,
                HumanBytes(entry.size).to_string().replace(' ', "&nbsp;"),
                counts(stats),
                magnet_link(&entry.torrent)
                    .map(|link| format!("<a href=\"{}\">magnet</a>", escape(&link)))
                    .unwrap_or_default(),
            );
        }
        page.push_str("</table>\n");
    }
    if !uncatalogued.is_empty() {
        page.push_str(
            "<h2>Other swarms announcing here</h2>\n<p>This tracker only tracks these: it has no .torrent to serve for them.</p>\n",
        );
        page.push_str("<table id=\"swarms\">\n<tr><th>info-hash</th><th>seeders</th><th>leechers</th><th>completed</th></tr>\n");
        for (info_hash, stats) in uncatalogued {
            let _ = writeln!(
                page,
                "<tr data-info-hash=\"{info_hash}\"><td>{info_hash}</td>{}</tr>",
                counts(stats)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("<p>JSON: <a href=\"/torrents\">/torrents</a>, <a href=\"/swarms\">/swarms</a>; <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n");
    page
}

/// The seeders, leechers and completed cells (classes the script fills
/// in again).
fn counts(stats: &ScrapeStats) -> String {
    format!(
        "<td class=\"seeders\">{}</td><td class=\"leechers\">{}</td><td class=\"completed\">{}</td>",
        stats.complete, stats.incomplete, stats.downloaded
    )
}

/// The magnet link (BEP 9: `xt`, `dn`, and a `tr` per tracker) of a
/// catalogued `.torrent`; `None` when the bytes are not a `.torrent`
/// (never for the ones this tracker builds).
pub fn magnet_link(torrent: &[u8]) -> Option<String> {
    let metainfo = Metainfo::from_bytes(torrent).ok()?;
    Some(Magnet::from_metainfo(&metainfo).to_string())
}

/// `text` safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn names_are_escaped_and_linked_and_other_swarms_say_there_is_no_torrent() {
        let entry = CatalogueEntry {
            name: "<b>Holiday & co</b>".into(),
            info_hash: InfoHash([0xab; 20]),
            size: 3 << 20,
            piece_length: 16_384,
            torrent: Bytes::new(),
            data: None,
            published: 0,
            completed: 2,
        };
        let stats = ScrapeStats {
            complete: 1,
            downloaded: 2,
            incomplete: 3,
        };
        let row = Row {
            entry: &entry,
            stats,
            announces_per_minute: 2.54,
        };
        let page = render(&[row], &[(InfoHash([0xcd; 20]), stats)], "<q>");
        assert!(
            page.contains(
                "<td class=\"seeders\">1</td><td class=\"leechers\">3</td><td class=\"completed\">2</td><td class=\"announces\">2.5</td>"
            ),
            "{page}"
        );
        assert!(
            page.contains("&lt;b&gt;Holiday &amp; co&lt;/b&gt;"),
            "{page}"
        );
        assert!(!page.contains("<b>Holiday"), "{page}");
        assert!(
            page.contains("href=\"/torrents/%3Cb%3EHoliday%20%26%20co%3C%2Fb%3E.torrent\""),
            "{page}"
        );
        assert!(page.contains(&InfoHash([0xcd; 20]).to_hex()));
        assert!(!page.contains("magnet:"), "not a .torrent: no link");
        assert!(page.contains("no .torrent to serve"));
        assert!(
            page.contains("value=\"&lt;q&gt;\""),
            "the query is escaped: {page}"
        );
        assert!(
            page.contains(&format!(
                "data-info-hash=\"{}\" data-name=\"&lt;b&gt;Holiday &amp; co&lt;/b&gt;\"",
                InfoHash([0xab; 20])
            )),
            "{page}"
        );
        assert!(
            page.contains("<td title=\"3145728 bytes\">3.00&nbsp;MiB</td>"),
            "sizes for people: {page}"
        );
        assert!(page.contains("<script src=\"/index.js\" defer></script>"));
        let empty = render(&[], &[], "");
        assert!(empty.contains("No torrent is catalogued here."));
        assert!(!empty.contains("Other swarms"));
        let none = render(&[], &[], "zzz");
        assert!(none.contains("No torrent name contains"), "{none}");
    }

    #[test]
    fn each_torrent_has_its_magnet_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a&b.bin"), b"content").unwrap();
        let metainfo = minibit_core::metainfo::MetainfoBuilder::new(dir.path().join("a&b.bin"))
            .announce("http://127.0.0.1:6969/announce")
            .build()
            .unwrap();
        let torrent = Bytes::from(metainfo.to_bytes());
        let link = magnet_link(&torrent).unwrap();
        let magnet = Magnet::parse(&link).unwrap();
        assert_eq!(magnet.info_hash, metainfo.info_hash());
        assert_eq!(magnet.name.as_deref(), Some("a&b.bin"));
        assert_eq!(magnet.trackers, ["http://127.0.0.1:6969/announce"]);
        let entry = CatalogueEntry {
            name: "a&b.bin".into(),
            info_hash: metainfo.info_hash(),
            size: 7,
            piece_length: 16_384,
            torrent,
            data: None,
            published: 0,
            completed: 0,
        };
        let row = Row {
            entry: &entry,
            stats: ScrapeStats::default(),
            announces_per_minute: 0.0,
        };
        let page = render(&[row], &[], "");
        assert!(
            page.contains(&format!("<a href=\"{}\">magnet</a>", escape(&link))),
            "{page}"
        );
    }
}
