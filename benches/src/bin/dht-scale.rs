//! `dht-scale [--nodes N] [--lookups L] [--leechers K] [--timeout SECONDS]`:
//! the Mainline DHT (BEP 5) at scale, in process, on 127.0.0.1 only (a
//! `mainline::Testnet` of N nodes, default 500; no internet).
//!
//! 1. One node announces an info-hash (`announce_peer`, timed).
//! 2. L fresh nodes (default 20), one after the other, each look it up once
//!    (`get_peers` through minibit's `DhtNode`, as a torrent's lookup
//!    runs): time per lookup (min, median, max) and how many found it.
//! 3. K fresh nodes (default 50) that only know the info-hash start at
//!    once and look it up until they find the announced peer: time until
//!    each, and all, found the swarm. These are bare DHT nodes, not whole
//!    clients (50 clients with their disks would measure the disks on two
//!    cores, not the DHT).
//!
//! `mainline` exposes no message counters, so messages per lookup are
//! not measured here (see the README section "Past one tracker").

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use mainline::Testnet;
use minibit_core::metainfo::InfoHash;
use minibit_peer::dht::{DhtConfig, DhtNode};

#[derive(Debug, Parser)]
#[command(about = "Mainline DHT lookups on an in-process test network (loopback only)")]
struct Cli {
    /// Nodes in the test network.
    #[arg(long, default_value_t = 500)]
    nodes: usize,
    /// Single lookups timed one after the other.
    #[arg(long, default_value_t = 20)]
    lookups: usize,
    /// Nodes that look the swarm up at once.
    #[arg(long, default_value_t = 50)]
    leechers: usize,
    /// Longest wait for the simultaneous leechers, seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// The announced peer (never dialled: the DHT only stores it).
const PEER_PORT: u16 = 6881;

fn config(bootstrap: &str) -> DhtConfig {
    DhtConfig {
        bind: Ipv4Addr::LOCALHOST,
        bootstrap: vec![bootstrap.to_owned()],
        ..DhtConfig::new(0)
    }
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let times: &[Duration] = times;
    match times {
        [] => "none".to_owned(),
        [first, .., last] => format!(
            "min {first:.2?}, median {:.2?}, max {last:.2?}",
            times[times.len() / 2]
        ),
        [only] => format!("{only:.2?}"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(cli.nodes >= 2, "--nodes: at least 2");
    let started = Instant::now();
    let nodes = cli.nodes;
    let net = tokio::task::spawn_blocking(move || Testnet::builder(nodes).build())
        .await?
        .context("cannot build the test network")?;
    println!(
        "testnet of {} nodes built in {:.2?}",
        cli.nodes,
        started.elapsed()
    );
    let bootstrap = |i: usize| net.bootstrap[i % net.bootstrap.len()].clone();
    let want = SocketAddr::from((Ipv4Addr::LOCALHOST, PEER_PORT));
    let own = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
    let info_hash = InfoHash([0x5e; 20]);

    let seeder = DhtNode::start(config(&bootstrap(0))).await?;
    let t = Instant::now();
    seeder.announce(&info_hash, PEER_PORT).await?;
    println!("announce_peer: {:.2?}", t.elapsed());

    let mut times = Vec::new();
    let mut found = 0;
    for i in 0..cli.lookups {
        let node = DhtNode::start(config(&bootstrap(i + 1))).await?;
        let t = Instant::now();
        let peers = node.get_peers(&info_hash, 200, own).await;
        times.push(t.elapsed());
        found += usize::from(peers.contains(&want));
    }
    println!(
        "{} single get_peers lookups from fresh nodes: {}; {found} found the peer",
        cli.lookups,
        summary(&mut times)
    );

    let t = Instant::now();
    let deadline = t + Duration::from_secs(cli.timeout);
    let mut leechers = tokio::task::JoinSet::new();
    for i in 0..cli.leechers {
        let config = config(&bootstrap(i + 7));
        leechers.spawn(async move {
            let node = DhtNode::start(config).await.ok()?;
            let mut lookups = 0;
            while Instant::now() < deadline {
                lookups += 1;
                if node.get_peers(&info_hash, 200, own).await.contains(&want) {
                    return Some((t.elapsed(), lookups));
                }
            }
            None
        });
    }
    let mut times = Vec::new();
    let mut lookups = Vec::new();
    while let Some(done) = leechers.join_next().await {
        if let Some((time, n)) = done? {
            times.push(time);
            lookups.push(n);
        }
    }
    let all = times.iter().max().copied();
    println!(
        "{} leechers at once: {} found the swarm ({}); lookups each: max {}; all found in {}",
        cli.leechers,
        times.len(),
        summary(&mut times),
        lookups.iter().max().unwrap_or(&0),
        match all {
            Some(all) if times.len() == cli.leechers => format!("{all:.2?}"),
            _ => format!("(not all within {} s)", cli.timeout),
        }
    );
    Ok(())
}
