//! `many-torrents [--torrents N] [--pieces P] [--piece-length BYTES]`: the
//! memory cost of hosting many torrents in one `minibit-peer` client.
//!
//! One client on 127.0.0.1 seeds N single-file torrents of P pieces each
//! (sparse files in a temporary folder, seed mode so nothing is read, no
//! tracker and no peer), then one more. Prints one JSON line: the resident
//! set size (`VmRSS`, bytes) after start and after the N torrents, the
//! peak (`VmHWM`, bytes), the bytes per torrent, and the wall time and RSS
//! growth of adding the (N+1)-th. The `.torrent`s carry random piece
//! hashes (no peer ever checks them here), so building them costs no
//! hashing either.
//!
//! Each torrent keeps its file open: N must stay below the open-files
//! limit (`ulimit -n`).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use minibit_core::metainfo::Metainfo;
use minibit_peer::{AddTorrent, Client, ClientConfig};
use rand::RngCore;

#[derive(Debug, Parser)]
#[command(about = "Peak RSS of one client hosting many torrents")]
struct Cli {
    /// Torrents added before the measured one.
    #[arg(long, default_value_t = 1000)]
    torrents: usize,
    /// Pieces per torrent.
    #[arg(long, default_value_t = 1000)]
    pieces: u32,
    /// Piece length, bytes (a power of two, at least 16 KiB).
    #[arg(long, default_value_t = 16_384)]
    piece_length: u32,
}

/// A `.torrent` for the single file `name` of `pieces` pieces of
/// `piece_length` bytes, with random piece hashes and no tracker.
fn metainfo(name: &str, pieces: u32, piece_length: u32) -> Result<Metainfo> {
    let length = u64::from(pieces) * u64::from(piece_length);
    let mut hashes = vec![0u8; 20 * pieces as usize];
    rand::rng().fill_bytes(&mut hashes);
    let mut bytes = format!(
        "d4:infod6:lengthi{length}e4:name{}:{name}12:piece lengthi{piece_length}e6:pieces{}:",
        name.len(),
        hashes.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&hashes);
    bytes.extend_from_slice(b"ee");
    Metainfo::from_bytes(&bytes).context("building a .torrent")
}

/// A line of `/proc/self/status` (`VmRSS`, `VmHWM`), bytes.
fn status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kib * 1024)
}

/// Creates the sparse file of torrent `i` and adds it to `client` in seed mode.
async fn add(client: &Client, dir: &Path, i: usize, cli: &Cli) -> Result<()> {
    let name = format!("t{i:05}.bin");
    let metainfo = metainfo(&name, cli.pieces, cli.piece_length)?;
    std::fs::File::create(dir.join(&name))?.set_len(metainfo.total_length())?;
    let mut add = AddTorrent::new(metainfo, dir);
    add.seed_mode = true;
    client
        .add_torrent(add)
        .await
        .with_context(|| format!("adding torrent {i} (open files limit: see `ulimit -n`)"))?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(cli.pieces > 0, "--pieces must be at least 1");
    let dir = tempfile::Builder::new()
        .prefix("minibit-many-torrents-")
        .tempdir()?;
    let client = Client::start(ClientConfig::default()).await?;
    let rss_start = status_bytes("VmRSS")?;
    let started = Instant::now();
    for i in 0..cli.torrents {
        add(&client, dir.path(), i, &cli).await?;
    }
    let add_all_s = started.elapsed().as_secs_f64();
    let rss_all = status_bytes("VmRSS")?;
    let one = Instant::now();
    add(&client, dir.path(), cli.torrents, &cli).await?;
    let add_one_ms = one.elapsed().as_secs_f64() * 1e3;
    let rss_one_more = status_bytes("VmRSS")?;
    let peak = status_bytes("VmHWM")?;
    let listed = client.list().await?.len();
    ensure!(
        listed == cli.torrents + 1,
        "the client lists {listed} torrents"
    );
    client.shutdown().await?;
    let per_torrent = rss_all.saturating_sub(rss_start) / cli.torrents.max(1) as u64;
    println!(
        "{}",
        serde_json::json!({
            "torrents": cli.torrents,
            "pieces": cli.pieces,
            "piece_length": cli.piece_length,
            "rss_start_bytes": rss_start,
            "rss_bytes": rss_all,
            "peak_rss_bytes": peak,
            "rss_per_torrent_bytes": per_torrent,
            "add_all_s": add_all_s,
            "add_one_more_ms": add_one_ms,
            "add_one_more_rss_bytes": rss_one_more.saturating_sub(rss_all),
        })
    );
    Ok(())
}
