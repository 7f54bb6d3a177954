//! `dht-scale [--nodes N] [--lookups L] [--leechers K] [--timeout SECONDS] [--count-datagrams]`:
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
//! With `--count-datagrams` (root and iproute2 needed) the test network
//! runs in a network namespace of its own and every other node in a second
//! one, both on a bridge (the `wan` bench's namespaces, 10.77.0.0/16, no
//! traffic leaves them), and each single lookup of step 2 is counted:
//! `mainline` exposes no message counters, so the bench reads the UDP
//! datagram counters of the second namespace (`/proc/thread-self/net/snmp`,
//! `Udp: InDatagrams OutDatagrams`) once its node is idle (bootstrapped),
//! and again once it is idle after the lookup. Nothing else runs in that
//! namespace then (the announcing node is gone), so the difference is the
//! lookup's own queries sent and answers received.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use mainline::Testnet;
use minibit_core::metainfo::InfoHash;
use minibit_peer::dht::{DhtConfig, DhtNode};
use test_support::netns::{Link, Net, sweep};

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
    /// Count the UDP datagrams of each single lookup: the test network and
    /// the other nodes run in two network namespaces (needs root, iproute2).
    #[arg(long)]
    count_datagrams: bool,
}

/// The announced peer (never dialled: the DHT only stores it).
const PEER_PORT: u16 = 6881;

/// The info-hash announced and looked up.
const INFO_HASH: InfoHash = InfoHash([0x5e; 20]);

/// Links of the namespaces of `--count-datagrams` (not shaped in effect).
const LINK: Link = Link {
    up_bps: 10_000_000_000,
    down_bps: None,
};

/// How long a namespace's UDP counters must stay still for its node to be
/// idle: longer than `mainline` waits for an answer (2 s), so a bootstrap
/// waiting on a silent node is not taken for idle.
const QUIET: Duration = Duration::from_secs(3);

fn config(bind: Ipv4Addr, bootstrap: &str) -> DhtConfig {
    DhtConfig {
        bind,
        bootstrap: vec![bootstrap.to_owned()],
        ..DhtConfig::new(0)
    }
}

/// UDP datagrams received and sent by the calling thread's network
/// namespace so far (`/proc/thread-self/net/snmp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Datagrams {
    received: u64,
    sent: u64,
}

impl Datagrams {
    fn read() -> Result<Self> {
        let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp")
            .context("/proc/thread-self/net/snmp")?;
        Self::parse(&snmp).context("no Udp: InDatagrams/OutDatagrams in /proc/thread-self/net/snmp")
    }

    /// The `Udp:` header line names the columns of the `Udp:` line after it.
    fn parse(snmp: &str) -> Option<Self> {
        let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let (names, values) = (udp.next()?, udp.next()?);
        let column = |name: &str| {
            let i = names.split_whitespace().position(|n| n == name)?;
            values.split_whitespace().nth(i)?.parse().ok()
        };
        Some(Self {
            received: column("InDatagrams")?,
            sent: column("OutDatagrams")?,
        })
    }

    /// Waits until the counters stay still for [`QUIET`] and returns them.
    async fn when_idle() -> Result<Self> {
        let mut last = Self::read()?;
        loop {
            tokio::time::sleep(QUIET).await;
            let now = Self::read()?;
            if now == last {
                return Ok(now);
            }
            last = now;
        }
    }
}

/// `min A, median B, max C` of `values`, each written by `show`.
fn summary<T: Ord + Copy>(values: &mut [T], show: impl Fn(T) -> String) -> String {
    values.sort_unstable();
    let values: &[T] = values;
    match *values {
        [] => "none".to_owned(),
        [only] => show(only),
        [first, .., last] => format!(
            "min {}, median {}, max {}",
            show(first),
            show(values[values.len() / 2]),
            show(last)
        ),
    }
}

fn time(t: Duration) -> String {
    format!("{t:.2?}")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(cli.nodes >= 2, "--nodes: at least 2");
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")
    };
    let started = Instant::now();
    if !cli.count_datagrams {
        let net = Testnet::builder(cli.nodes)
            .build()
            .context("cannot build the test network")?;
        built(&cli, started);
        let runtime = runtime()?;
        let _seeder = runtime.block_on(announce(&net.bootstrap, Ipv4Addr::LOCALHOST))?;
        return runtime.block_on(lookups(
            &cli,
            &net.bootstrap,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            false,
        ));
    }
    // Every socket a thread makes, and every thread it starts, stays in
    // the namespace it entered. The announcing node lives beside the test
    // network: the second namespace holds only the node being measured.
    let _ = sweep();
    let namespaces = Net::create(&[LINK; 2], 50).context("--count-datagrams needs root")?;
    let net = namespaces
        .run_in(0, || {
            Testnet::builder(cli.nodes).bind_address(Net::ip(0)).build()
        })
        .context("cannot build the test network")?;
    built(&cli, started);
    let _seeder = namespaces.run_in(0, || {
        runtime()?.block_on(announce(&net.bootstrap, Net::ip(0)))
    })?;
    namespaces.run_in(1, || {
        runtime()?.block_on(lookups(&cli, &net.bootstrap, Net::ip(0), Net::ip(1), true))
    })
}

fn built(cli: &Cli, started: Instant) {
    println!(
        "testnet of {} nodes built in {:.2?}",
        cli.nodes,
        started.elapsed()
    );
}

/// Step 1: a node on `ip` announces [`INFO_HASH`] with [`PEER_PORT`]
/// (timed); it must stay up while the others look it up.
async fn announce(bootstrap: &[String], ip: Ipv4Addr) -> Result<DhtNode> {
    let seeder = DhtNode::start(config(ip, &bootstrap[0])).await?;
    let t = Instant::now();
    seeder.announce(&INFO_HASH, PEER_PORT).await?;
    println!("announce_peer: {:.2?}", t.elapsed());
    Ok(seeder)
}

/// Steps 2 and 3, every node on `ip`, looking up the peer announced from
/// `seeder`; with `count`, the datagrams of each single lookup are
/// counted.
async fn lookups(
    cli: &Cli,
    bootstrap: &[String],
    seeder: Ipv4Addr,
    ip: Ipv4Addr,
    count: bool,
) -> Result<()> {
    let bootstrap = |i: usize| bootstrap[i % bootstrap.len()].clone();
    let want = SocketAddr::from((seeder, PEER_PORT));
    let own = SocketAddr::from((ip, 1));
    let info_hash = INFO_HASH;

    let mut times = Vec::new();
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    let mut found = 0;
    for i in 0..cli.lookups {
        let node = DhtNode::start(config(ip, &bootstrap(i + 1))).await?;
        let before = if count {
            Some(Datagrams::when_idle().await?)
        } else {
            None
        };
        let t = Instant::now();
        let peers = node.get_peers(&info_hash, 200, own).await;
        times.push(t.elapsed());
        found += usize::from(peers.contains(&want));
        if let Some(before) = before {
            let after = Datagrams::when_idle().await?;
            sent.push(after.sent - before.sent);
            received.push(after.received - before.received);
        }
    }
    println!(
        "{} single get_peers lookups from fresh nodes: {}; {found} found the peer",
        cli.lookups,
        summary(&mut times, time)
    );
    if count {
        println!(
            "UDP datagrams per lookup: sent (queries) {}; received (answers) {}",
            summary(&mut sent, |n| n.to_string()),
            summary(&mut received, |n| n.to_string())
        );
    }

    let t = Instant::now();
    let deadline = t + Duration::from_secs(cli.timeout);
    let mut leechers = tokio::task::JoinSet::new();
    for i in 0..cli.leechers {
        let config = config(ip, &bootstrap(i + 7));
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
        summary(&mut times, time),
        lookups.iter().max().unwrap_or(&0),
        match all {
            Some(all) if times.len() == cli.leechers => format!("{all:.2?}"),
            _ => format!("(not all within {} s)", cli.timeout),
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Datagrams;

    #[test]
    fn the_udp_counters_are_read_by_column_name() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 120 3 0 97 0\n\
                    UdpLite: InDatagrams NoPorts InErrors OutDatagrams\n\
                    UdpLite: 5 0 0 6\n";
        assert_eq!(
            Datagrams::parse(snmp),
            Some(Datagrams {
                received: 120,
                sent: 97
            })
        );
        assert_eq!(Datagrams::parse("Ip: Forwarding\nIp: 1\n"), None);
    }
}
