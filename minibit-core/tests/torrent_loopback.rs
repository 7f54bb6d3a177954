//! Torrents wired to each other in memory: real SHA-1 verification,
//! virtual time, every action carried out by the in-memory swarm.

mod support;

use minibit_core::torrent::{Event, TorrentConfig};
use support::{Content, Swarm, secs};

fn config(seed: u64) -> TorrentConfig {
    TorrentConfig {
        rng_seed: Some(seed),
        ..TorrentConfig::default()
    }
}

fn complete(swarm: &Swarm, node: usize) -> bool {
    swarm.nodes[node].torrent.have().is_complete()
}

#[test]
fn a_leecher_downloads_everything_from_a_seed() {
    // 23 pieces of 64 KiB, the last one short (odd length).
    let content = Content::new(22 * 65_536 + 12_345, 65_536, 1);
    let total = content.layout.total_length();
    let mut swarm = Swarm::new(content);
    let seed = swarm.add(config(1), true);
    let leecher = swarm.add(config(2), false);
    swarm.connect(leecher, seed).unwrap();
    assert!(swarm.run_until(secs(600), |s| complete(s, leecher)));
    swarm.pump();
    let node = &swarm.nodes[leecher];
    assert_eq!(node.storage, swarm.content.data, "the right bytes");
    assert!(node.events.contains(&Event::DownloadCompleted));
    let pieces = node
        .events
        .iter()
        .filter(|e| matches!(e, Event::PieceCompleted { .. }))
        .count();
    assert_eq!(pieces, 23);
    let stats = node.torrent.stats();
    assert_eq!(
        (stats.downloaded, stats.left, stats.pieces_have),
        (total, 0, 23)
    );
    assert_eq!(swarm.nodes[seed].torrent.stats().uploaded, total);
    // Two seeders have nothing to trade.
    assert_eq!(node.torrent.stats().peers, 0);
}

fn run_swarm(seed: u64) -> (Vec<Vec<Event>>, std::time::Duration) {
    let content = Content::new(40 * 32_768, 32_768, 9);
    let mut swarm = Swarm::new(content);
    let start = swarm.now;
    let first = swarm.add(config(seed), true);
    let leechers: Vec<usize> = (1..=4)
        .map(|i| swarm.add(config(seed + i), false))
        .collect();
    for (i, &a) in leechers.iter().enumerate() {
        swarm.connect(a, first).unwrap();
        for &b in &leechers[..i] {
            swarm.connect(a, b).unwrap();
        }
    }
    let all = leechers.clone();
    assert!(swarm.run_until(secs(3600), |s| all.iter().all(|&n| complete(s, n))));
    for &n in &leechers {
        assert_eq!(swarm.nodes[n].storage, swarm.content.data);
        assert_eq!(swarm.nodes[n].torrent.stats().peers, 0, "seeds part");
    }
    let elapsed = swarm.now - start;
    (swarm.nodes.into_iter().map(|n| n.events).collect(), elapsed)
}

#[test]
fn a_small_swarm_completes_and_is_deterministic() {
    let (events, elapsed) = run_swarm(5);
    let (again, elapsed_again) = run_swarm(5);
    assert_eq!(events, again);
    assert_eq!(elapsed, elapsed_again);
}

#[test]
fn a_peer_serving_corrupt_data_is_banned_and_the_download_still_completes() {
    let content = Content::new(8 * 32_768, 32_768, 4);
    let mut swarm = Swarm::new(content);
    let honest = swarm.add(config(1), true);
    let liar = swarm.add(config(2), true);
    swarm.nodes[liar].corrupt = true;
    let leecher = swarm.add(
        TorrentConfig {
            max_strikes: 2,
            ..config(3)
        },
        false,
    );
    swarm.connect(leecher, liar).unwrap();
    swarm.connect(leecher, honest).unwrap();
    assert!(swarm.run_until(secs(3600), |s| complete(s, leecher)));
    let events = &swarm.nodes[leecher].events;
    let liar_addr = swarm.nodes[liar].addr;
    assert!(events.contains(&Event::PeerBanned { ip: liar_addr.ip() }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PieceFailed { .. }))
    );
    assert_eq!(swarm.nodes[leecher].storage, swarm.content.data);
    assert!(swarm.connect(leecher, liar).is_err());
}

#[test]
fn a_super_seed_offers_pieces_one_at_a_time_and_the_swarm_completes() {
    let content = Content::new(12 * 32_768, 32_768, 6);
    let mut swarm = Swarm::new(content);
    let seed = swarm.add(
        TorrentConfig {
            super_seed: true,
            ..config(1)
        },
        true,
    );
    let leechers: Vec<usize> = (2..5).map(|i| swarm.add(config(i), false)).collect();
    for (i, &a) in leechers.iter().enumerate() {
        swarm.connect(a, seed).unwrap();
        for &b in &leechers[..i] {
            swarm.connect(a, b).unwrap();
        }
    }
    let all = leechers.clone();
    assert!(swarm.run_until(secs(3600), |s| all.iter().all(|&n| complete(s, n))));
    for &n in &leechers {
        assert_eq!(swarm.nodes[n].storage, swarm.content.data);
    }
    // The seed uploaded each piece about once instead of once per leecher
    // (without super-seeding this swarm takes three copies).
    let uploaded = swarm.nodes[seed].torrent.stats().uploaded;
    let total = swarm.content.layout.total_length();
    assert!(
        uploaded < 2 * total,
        "super-seed uploaded {uploaded} bytes for {total} bytes of content"
    );
}

#[test]
fn over_slow_links_leechers_trade_among_themselves() {
    let content = Content::new(64 * 32_768, 32_768, 8);
    let total = content.layout.total_length();
    let mut swarm = Swarm::new(content);
    swarm.latency = std::time::Duration::from_millis(50);
    let seed = swarm.add(config(1), true);
    swarm.nodes[seed].upload_rate = Some(256 * 1024);
    let leechers: Vec<usize> = (2..6).map(|i| swarm.add(config(i), false)).collect();
    for (i, &a) in leechers.iter().enumerate() {
        swarm.nodes[a].upload_rate = Some(256 * 1024);
        swarm.connect(a, seed).unwrap();
        for &b in &leechers[..i] {
            swarm.connect(a, b).unwrap();
        }
    }
    let all = leechers.clone();
    assert!(swarm.run_until(secs(600), |s| all.iter().all(|&n| complete(s, n))));
    for &n in &leechers {
        assert_eq!(swarm.nodes[n].storage, swarm.content.data);
    }
    let from_seed = swarm.nodes[seed].torrent.stats().uploaded;
    let between: u64 = leechers
        .iter()
        .map(|&n| swarm.nodes[n].torrent.stats().uploaded)
        .sum();
    assert!(
        from_seed < 3 * total,
        "the seed served {from_seed} bytes of 4 copies of {total}"
    );
    assert!(
        between > total,
        "leechers uploaded {between} bytes to each other"
    );
}
