//! The no-protocol baseline of the `loopback` benchmark (`loopback --client
//! baseline`): the least work that moves a file to N receivers and checks
//! it as a BitTorrent client must, with nothing else.
//!
//! `loopback-baseline send --listen ADDR --receivers N FILE` prints
//! `listening on ADDR`, accepts N TCP connections and streams FILE to each
//! on its own thread (512 KiB reads, as minibit's seeder reads ahead),
//! then waits to be stopped, as a seeder keeps seeding.
//! `loopback-baseline receive --connect ADDR --torrent T --out PATH`
//! reads the bytes a piece at a time on one thread while a second thread
//! checks each piece's SHA-1 against the `.torrent` and writes it at its
//! offset (16 KiB `pwrite`s), as a leecher verifies and stores; it exits 0 once
//! every piece is verified, 1 on a mismatch.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use minibit_core::metainfo::Metainfo;
use minibit_core::piece::PieceIndex;
use sha1::{Digest, Sha1};

/// Bytes read from the file per `read` call by the sender (512 KiB).
const READ_CHUNK: usize = 512 * 1024;

/// Bytes per `pwrite` of a checked piece (16 KiB, as minibit writes
/// blocks): on Linux 6.18 / ext4 one `pwrite` of a whole 1 MiB piece cost
/// about five times the kernel time of 16 KiB ones (see the README).
const WRITE_CHUNK: usize = 16 * 1024;

/// Pieces read ahead of the one being checked and written.
const PIECES_AHEAD: usize = 4;

#[derive(Parser)]
#[command(about = "No-protocol baseline of the loopback benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Streams FILE to each of N receivers.
    Send {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Receivers to serve before exiting.
        #[arg(long)]
        receivers: usize,
        /// The file to send.
        file: PathBuf,
    },
    /// Receives the file, checks each piece's SHA-1 and writes it.
    Receive {
        /// The sender's address.
        #[arg(long)]
        connect: SocketAddr,
        /// The `.torrent` giving the piece length and hashes.
        #[arg(long)]
        torrent: PathBuf,
        /// Where the copy goes.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Verb::Send {
            listen,
            receivers,
            file,
        } => send(listen, receivers, &file),
        Verb::Receive {
            connect,
            torrent,
            out,
        } => receive(connect, &torrent, &out),
    }
}

fn send(listen: SocketAddr, receivers: usize, file: &std::path::Path) -> Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("bind {listen}"))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut senders = vec![];
    for _ in 0..receivers {
        let (mut stream, _) = listener.accept()?;
        let mut file = File::open(file)?;
        senders.push(thread::spawn(move || -> Result<()> {
            let mut chunk = vec![0; READ_CHUNK];
            loop {
                let n = file.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                stream.write_all(&chunk[..n])?;
            }
        }));
    }
    for sender in senders {
        sender.join().expect("sender thread")?;
    }
    loop {
        thread::park();
    }
}

fn receive(connect: SocketAddr, torrent: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let metainfo = Metainfo::from_bytes(&std::fs::read(torrent)?)?;
    let layout = metainfo.layout().clone();
    let hashes = metainfo.info().pieces().to_vec();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let copy = File::create(out)?;
    copy.set_len(layout.total_length())?;
    let mut stream = TcpStream::connect(connect)?;
    let (full, filled) = mpsc::sync_channel::<(PieceIndex, Vec<u8>)>(PIECES_AHEAD);
    let (empty, emptied) = mpsc::channel::<Vec<u8>>();
    let check_layout = layout.clone();
    let checker = thread::spawn(move || -> Result<()> {
        for (piece, data) in filled {
            let digest: [u8; 20] = Sha1::digest(&data).into();
            ensure!(
                digest == hashes[piece.as_usize()],
                "piece {} does not match its hash",
                piece.as_usize()
            );
            let offset = check_layout.piece_offset(piece);
            for (i, chunk) in data.chunks(WRITE_CHUNK).enumerate() {
                copy.write_all_at(chunk, offset + (i * WRITE_CHUNK) as u64)?;
            }
            // The reader may have finished: a closed return channel is fine.
            let _ = empty.send(data);
        }
        Ok(())
    });
    for piece in layout.pieces() {
        let mut data = emptied.try_recv().unwrap_or_default();
        data.resize(layout.piece_size(piece) as usize, 0);
        stream.read_exact(&mut data)?;
        if full.send((piece, data)).is_err() {
            break;
        }
    }
    drop(full);
    checker.join().expect("checker thread")
}
