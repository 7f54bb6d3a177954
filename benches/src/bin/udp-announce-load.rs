//! `udp-announce-load --tracker ADDR [--seconds S] [--max-announces N] [--sockets K] [--window W] [--swarms H]`:
//! a BEP 15 load generator for a UDP tracker on loopback. K client sockets
//! (one thread each) connect, then keep W announces in flight each (random
//! peer ids and ports over H info-hashes, `num_want` 50), replacing every
//! answer with a new announce, until S seconds or N answers. A request not
//! answered within 1 s is counted lost and replaced. Prints answered
//! announces per second.
//!
//! Only loopback addresses are accepted. Pin the tracker to one core to
//! measure "per core", e.g. `taskset -c 1 minibit-tracker --bind 127.0.0.1:6969`
//! and `taskset -c 0 udp-announce-load --tracker 127.0.0.1:6969`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use minibit_core::metainfo::InfoHash;
use minibit_core::tracker::AnnounceEvent;
use minibit_core::tracker::udp::{Family, Request, Response, UdpAnnounce};
use minibit_core::wire::PeerId;
use rand::Rng;

#[derive(Debug, Parser)]
#[command(about = "BEP 15 announce load generator (loopback only)")]
struct Cli {
    /// The UDP tracker, e.g. 127.0.0.1:6969.
    #[arg(long)]
    tracker: SocketAddr,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many answered announces.
    #[arg(long, default_value_t = 10_000_000)]
    max_announces: u64,
    /// Client sockets (one thread each).
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Announces in flight per socket.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Distinct info-hashes announced.
    #[arg(long, default_value_t = 100)]
    swarms: u8,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.tracker.ip().is_loopback(),
        "only loopback trackers may be loaded"
    );
    let answered = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(cli.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..cli.sockets)
        .map(|n| {
            let (answered, lost) = (Arc::clone(&answered), Arc::clone(&lost));
            let cli_tracker = cli.tracker;
            let (window, swarms, max) = (cli.window, cli.swarms, cli.max_announces);
            std::thread::spawn(move || {
                load(
                    cli_tracker,
                    n,
                    window,
                    swarms,
                    deadline,
                    max,
                    &answered,
                    &lost,
                )
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
    }
    let wall = started.elapsed().as_secs_f64();
    let answered = answered.load(Ordering::Relaxed);
    println!(
        "answered {answered} announces in {wall:.2} s: {:.0} announces/s ({} lost)",
        answered as f64 / wall,
        lost.load(Ordering::Relaxed)
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn load(
    tracker: SocketAddr,
    n: usize,
    window: usize,
    swarms: u8,
    deadline: Instant,
    max: u64,
    answered: &AtomicU64,
    lost: &AtomicU64,
) -> Result<()> {
    let socket = UdpSocket::bind(SocketAddr::new(tracker.ip(), 0))?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut rng = rand::rng();
    let mut buf = vec![0; 2048];
    socket.send_to(&Request::Connect { transaction_id: 0 }.encode(), tracker)?;
    let (len, _) = socket.recv_from(&mut buf).context("no connect answer")?;
    let Ok(Response::Connect { connection_id, .. }) =
        Response::decode(&buf[..len], Family::of(&tracker))
    else {
        bail!("unexpected connect answer");
    };
    let announce = |rng: &mut rand::rngs::ThreadRng| {
        let mut info_hash = [0; 20];
        info_hash[0] = rng.random_range(0..swarms.max(1));
        info_hash[1] = n as u8;
        Request::Announce(UdpAnnounce {
            connection_id,
            transaction_id: rng.random(),
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(rng.random()),
            downloaded: 0,
            left: rng.random_range(0..2) * 1000,
            uploaded: 0,
            event: AnnounceEvent::Started,
            ip: None,
            key: rng.random(),
            num_want: Some(50),
            port: rng.random_range(1024..=u16::MAX),
        })
        .encode()
    };
    for _ in 0..window {
        socket.send_to(&announce(&mut rng), tracker)?;
    }
    while Instant::now() < deadline && answered.load(Ordering::Relaxed) < max {
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => {
                if matches!(
                    Response::decode(&buf[..len], Family::of(&tracker)),
                    Ok(Response::Announce { .. })
                ) {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                socket.send_to(&announce(&mut rng), tracker)?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // The whole window timed out: count it lost and refill.
                lost.fetch_add(window as u64, Ordering::Relaxed);
                for _ in 0..window {
                    socket.send_to(&announce(&mut rng), tracker)?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
