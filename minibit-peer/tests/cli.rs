//! The `minibit-peer` binary end to end: `info`, `search`, `create`, a
//! download from a tracker's catalogue with `--exit-on-complete` (over
//! HTTP and HTTPS), stop signals and exit codes, and error reporting.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use minibit_core::metainfo::Metainfo;
use minibit_core::torrent::AnnounceEvent;
use minibit_peer::{Session, SessionHandle};
use tokio::process::{Child, Command};

use common::{Stub, content, local_config, make_single, run_peer, start_stub};
use test_support::process::free_port;
use test_support::tools;

async fn run(args: &[&str]) -> Output {
    run_peer(args, &[]).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `copy_dir/name` holds the bytes of `seed_dir/name`.
fn assert_same_copy(seed_dir: &Path, copy_dir: &Path, name: &str) {
    let original = std::fs::read(seed_dir.join(name)).unwrap();
    let copy = std::fs::read(copy_dir.join(name)).unwrap();
    assert!(original == copy, "the copy differs");
}

/// Stops `seeder` and asserts that the downloader (every peer `stub`
/// heard from but the seeder) announced started, completed and stopped,
/// in order.
async fn stop_and_check_the_downloaders_announces(stub: &Stub, seeder: SessionHandle) {
    let seeder_port = seeder.local_addr().port();
    seeder.shutdown().await.unwrap();
    assert_eq!(
        stub.events_except(seeder_port),
        [
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::Stopped
        ]
    );
}

/// Asserts `output` is a failure with exactly one line on stderr, an `error:` line; returns it.
fn one_error_line(output: &Output) -> String {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.starts_with("error: "), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    text.trim_end().to_owned()
}

#[tokio::test]
async fn info_shows_the_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "clip.bin", 100_000, "http://t/announce");
    let path = dir.path().join("clip.torrent");
    std::fs::write(&path, metainfo.to_bytes()).unwrap();
    let output = run(&["info", path.to_str().unwrap()]).await;
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("clip.bin"));
    assert!(text.contains(&metainfo.info_hash().to_hex()));
    assert!(text.contains("pieces:       4"), "{text}");
    assert!(text.contains("100000 bytes"));
}

#[tokio::test]
async fn errors_are_one_line_and_a_failure_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.torrent");
    let output = run(&["-q", missing.to_str().unwrap()]).await;
    let line = one_error_line(&output);
    assert!(line.contains("missing.torrent: no such file"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_by_name_from_a_tracker_catalogue_and_exits_when_complete() {
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(
        seed_dir.path(),
        "movie one.bin",
        700_000,
        &stub.announce_url(),
    );
    stub.publish(metainfo.clone());
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    stub.first_announce().await;

    let search = run(&["search", &stub.base, "movie"]).await;
    assert!(search.status.success());
    let listing = stdout(&search);
    assert!(listing.contains("movie one.bin"), "{listing}");
    assert!(listing.contains("seeders 1"), "{listing}");

    let output = run(&[
        "-q",
        "--exit-on-complete",
        "-o",
        out_dir.path().to_str().unwrap(),
        &stub.base,
        "movie one.bin",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_copy(seed_dir.path(), out_dir.path(), "movie one.bin");
    let summary = stdout(&output);
    assert!(summary.contains("movie one.bin"), "{summary}");
    assert!(summary.contains("0 B already on disk"), "{summary}");
    stop_and_check_the_downloaders_announces(&stub, seeder).await;
}

// Command line and errors (issue 12, findings 6 and 7).

#[tokio::test]
async fn a_garbage_torrent_and_a_refused_connection_are_one_plain_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.torrent");
    std::fs::write(&garbage, b"this is not bencode").unwrap();
    for args in [
        vec![garbage.to_str().unwrap()],
        vec!["download", garbage.to_str().unwrap()],
    ] {
        let line = one_error_line(&run(&args).await);
        assert!(
            line.contains("garbage.torrent: not a valid .torrent"),
            "{line}"
        );
    }
    // The data itself where its .torrent was expected: a big file, a
    // folder: what to do instead.
    let movie = dir.path().join("movie.mp4");
    std::fs::File::create(&movie)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    for data in [&movie, &dir.path().to_path_buf(), &garbage] {
        let line = one_error_line(&run(&[data.to_str().unwrap()]).await);
        let hint = format!(
            "make a .torrent of it: minibit-peer create {}",
            data.display()
        );
        assert!(line.contains(&hint), "{line}");
    }
    // A port nothing listens on.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let line = one_error_line(&run(&["search", &url, "x"]).await);
    assert!(line.contains("connection refused"), "{line}");
    assert!(!line.contains("tcp connect error"), "{line}");
    assert!(!line.contains("client error"), "{line}");
    // -v shows the library's chain too.
    let verbose = stderr(&run(&["-v", "search", &url, "x"]).await);
    assert!(verbose.contains("caused by:"), "{verbose}");
}

#[tokio::test]
async fn a_bad_magnet_link_is_one_plain_line_and_a_magnet_with_a_name_or_only_is_a_usage_error() {
    for (link, says) in [
        (
            "magnet:?xt=urn:btih:0123",
            "is neither 40 hex nor 32 base32",
        ),
        ("magnet:?dn=nothing", "no BitTorrent info-hash"),
        (
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=nowhere",
            "peer address",
        ),
    ] {
        let output = run(&["--no-dht", "--no-lsd", link]).await;
        assert_eq!(output.status.code(), Some(1), "{link}: {}", stderr(&output));
        let line = one_error_line(&output);
        assert!(
            line.contains("bad magnet link") && line.matches(says).count() == 1,
            "{line}"
        );
    }
    let link = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    for args in [vec![link, "a NAME"], vec!["--only", "*.bin", link]] {
        let output = run(&args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[tokio::test]
async fn usage_errors_exit_2_and_options_of_download_are_not_ignored_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "a.bin", 10_000, "http://127.0.0.1:9/announce");
    let torrent = dir.path().join("a.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let torrent = torrent.to_str().unwrap();
    for args in [
        vec!["-o", "elsewhere", "info", torrent],
        vec!["info", "-o", "elsewhere", torrent],
        vec!["--bind", "127.0.0.1:7000", "--port", "7001", torrent],
        vec![torrent, "a NAME"],
        vec!["--bind", "localhost", torrent],
        vec![],
    ] {
        let output = run(&args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = run(&["info", torrent]).await;
    assert!(output.status.success(), "{}", stderr(&output));
}

// Stop signals and exit codes (finding 2).

fn signal(child: &Child, name: &str) {
    test_support::process::signal(child.id().unwrap(), name);
}

/// Waits (bounded) for `child` to exit; its output.
async fn finish(child: Child) -> Output {
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("minibit-peer did not exit")
        .unwrap()
}

/// A download with no seeder: `minibit-peer download TORRENT` over an output
/// folder that already holds the first `have` bytes of the content.
struct Stalled {
    _dir: tempfile::TempDir,
    torrent: std::path::PathBuf,
    out: std::path::PathBuf,
    metainfo: Metainfo,
}

fn stalled(announce: &str, len: usize, have: usize) -> Stalled {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let metainfo = make_single(&seed, "film.bin", len, announce);
    let data = content(len, 3);
    let mut partial = data[..have].to_vec();
    partial.resize(len, 0);
    std::fs::write(out.join("film.bin"), partial).unwrap();
    let torrent = dir.path().join("film.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    Stalled {
        _dir: dir,
        torrent,
        out,
        metainfo,
    }
}

impl Stalled {
    fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_minibit-peer"))
            .args(["download", "--bind", "127.0.0.1:0", "-o"])
            .arg(&self.out)
            .arg(&self.torrent)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// The percent of verified bytes the first `have` bytes give.
    fn percent(&self, have: usize) -> u64 {
        let piece = u64::from(self.metainfo.layout().piece_length());
        let verified = have as u64 / piece * piece;
        verified * 100 / self.metainfo.total_length()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_and_sigterm_mid_download_say_how_far_and_exit_130_and_143() {
    for (name, code) in [("INT", 130), ("TERM", 143)] {
        let stub = start_stub().await;
        let len = 1_000_000;
        let have = 560_000;
        let stalled = stalled(&stub.announce_url(), len, have);
        let child = stalled.spawn();
        // Running: the `started` announce arrived.
        stub.first_announce().await;
        signal(&child, name);
        let output = finish(child).await;
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "SIG{name}: {text}");
        let expected = format!(
            "interrupted at {} %: run the same command to resume",
            stalled.percent(have)
        );
        assert!(text.contains(&expected), "SIG{name}: {text}");
        assert!(
            text.contains("downloaded 0 B, uploaded 0 B, 0 peers seen"),
            "{text}"
        );
        // A clean stop: `stopped` was announced.
        let events: Vec<AnnounceEvent> = stub.log.lock().unwrap().iter().map(|&(_, e)| e).collect();
        assert_eq!(
            events,
            [AnnounceEvent::Started, AnnounceEvent::Stopped],
            "SIG{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_stops_at_once_when_the_tracker_hangs() {
    // A tracker that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let announce = format!("http://{}/announce", listener.local_addr().unwrap());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
            let _ = accepted_tx.send(());
        }
    });
    let stalled = stalled(&announce, 300_000, 0);
    let child = stalled.spawn();
    tokio::time::timeout(Duration::from_secs(60), accepted.recv())
        .await
        .expect("no announce");
    let sent = Instant::now();
    signal(&child, "INT");
    tokio::time::sleep(Duration::from_millis(100)).await;
    signal(&child, "INT");
    let output = finish(child).await;
    eprintln!("exited {:?} after the first Ctrl-C", sent.elapsed());
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{text}");
    assert!(
        text.contains("interrupted at 0 %: run the same command to resume"),
        "{text}"
    );
}

// HTTPS (finding 3).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_a_torrent_url_and_announces_over_https_with_an_extra_root() {
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut stub = start_stub().await;
    let pem = stub.serve_https().await;
    let https = stub.https_base.clone().unwrap();
    let ca = seed_dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    // The torrent announces over HTTPS; the in-process seeder (which cannot
    // be told about the root without the environment) over HTTP to the same stub.
    let metainfo = make_single(
        seed_dir.path(),
        "clip.bin",
        300_000,
        &format!("{https}/announce"),
    );
    stub.publish(metainfo.clone());
    let mut config = local_config(&metainfo, seed_dir.path(), 1);
    config.announce_url = Some(stub.announce_url());
    let seeder = Session::start(config).await.unwrap();
    stub.first_announce().await;
    // Four 32 KiB pieces are already there (and 20 000 bytes more, not a whole piece).
    let mut partial = content(300_000, 3)[..151_072].to_vec();
    partial.resize(300_000, 0);
    std::fs::write(out_dir.path().join("clip.bin"), partial).unwrap();
    // A .torrent URL that does not end in .torrent.
    let url = format!("{https}/get?name=clip.bin");
    let out = out_dir.path().to_str().unwrap();
    let args = [
        "-q",
        "--exit-on-complete",
        "--bind",
        "127.0.0.1",
        "-o",
        out,
        &url,
    ];

    // Without the root: the certificate is not trusted, said in plain words.
    let line = one_error_line(&run(&args).await);
    assert!(line.contains("not trusted"), "{line}");
    assert!(line.contains("MINIBIT_EXTRA_CA_CERTS"), "{line}");

    let output = run_peer(&args, &[("MINIBIT_EXTRA_CA_CERTS", ca.to_str().unwrap())]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_same_copy(seed_dir.path(), out_dir.path(), "clip.bin");
    let finished = stdout(&output);
    assert!(
        finished.contains("128.00 KiB already on disk"),
        "{finished}"
    );
    stop_and_check_the_downloaders_announces(&stub, seeder).await;
}

// `create` (finding 5).

/// `transmission-show FILE`'s output.
fn transmission_show(torrent: &Path) -> String {
    tools::require(&tools::TRANSMISSION_SHOW);
    let output = std::process::Command::new("transmission-show")
        .arg(torrent)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn create_makes_a_torrent_transmission_reads_and_picks_the_piece_length() {
    let dir = tempfile::tempdir().unwrap();
    // 20 MiB: above the tiny size, so 32 KiB pieces (640 of them), not 16 KiB.
    let file = dir.path().join("Holiday Movie.mkv");
    std::fs::write(&file, content(20 << 20, 5)).unwrap();
    let torrent = dir.path().join("movie.torrent");
    let output = run(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        "http://127.0.0.1:6969/announce",
        "--tracker",
        "https://127.0.0.1:6970/announce",
        "--private",
        "--comment",
        "our holiday",
    ])
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("piece length 32.00 KiB (chosen for the size: 640 pieces)"),
        "{}",
        stderr(&output)
    );
    let metainfo = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert!(
        stdout(&output).contains(&metainfo.info_hash().to_hex()),
        "{}",
        stdout(&output)
    );
    let shown = transmission_show(&torrent);
    for expected in [
        "Name: Holiday Movie.mkv".to_owned(),
        format!("Hash: {}", metainfo.info_hash().to_hex()),
        "Privacy: Private torrent".to_owned(),
        "Comment: our holiday".to_owned(),
        "Piece Count: 640".to_owned(),
        "Piece Size: 32.00 KiB".to_owned(),
        "http://127.0.0.1:6969/announce".to_owned(),
        "https://127.0.0.1:6970/announce".to_owned(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} not in\n{shown}");
    }

    // The default output is NAME.torrent in the current folder; a given
    // piece length is used; an existing .torrent is never overwritten.
    let small = dir.path().join("notes.txt");
    std::fs::write(&small, content(100_000, 6)).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_minibit-peer"))
        .current_dir(dir.path())
        .args(["-q", "create", "notes.txt", "--piece-length", "65536"])
        .output()
        .await
        .unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let notes = Metainfo::from_bytes(&std::fs::read(dir.path().join("notes.txt.torrent")).unwrap())
        .unwrap();
    assert_eq!(notes.layout().piece_length(), 65536);
    let before = std::fs::read(&torrent).unwrap();
    let again = run(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
    ])
    .await;
    assert!(one_error_line(&again).contains("already exists"));
    assert_eq!(std::fs::read(&torrent).unwrap(), before);
    // A bad piece length is refused before any hashing.
    let bad = run(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        "x.torrent",
        "--piece-length",
        "1000",
    ])
    .await;
    assert!(one_error_line(&bad).contains("--piece-length"));
}

/// `--download-limit 8M`: a 64 MiB download takes about 8 s. The time is
/// printed (the README has the figures); the assert only checks the limit
/// held, not how close the rate came to it (the machine is shared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limit_caps_the_download_rate() {
    const LEN: usize = 64 * 1024 * 1024;
    const LIMIT: f64 = 8.0 * 1024.0 * 1024.0;
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(seed_dir.path(), "big.bin", LEN, &stub.announce_url());
    stub.publish(metainfo.clone());
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    stub.first_announce().await;
    let started = Instant::now();
    let output = run(&[
        "-q",
        "--exit-on-complete",
        "--bind",
        "127.0.0.1",
        "--download-limit",
        "8M",
        "-o",
        out_dir.path().to_str().unwrap(),
        &stub.base,
        "big.bin",
    ])
    .await;
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", stderr(&output));
    let rate = LEN as f64 / elapsed.as_secs_f64();
    eprintln!(
        "64 MiB with --download-limit 8M: {:.2} s, {:.2} MiB/s (limit 8 MiB/s)",
        elapsed.as_secs_f64(),
        rate / 1024.0 / 1024.0
    );
    assert!(rate <= LIMIT / 0.8, "{rate} bytes/s is over the limit");
    assert_same_copy(seed_dir.path(), out_dir.path(), "big.bin");
    seeder.shutdown().await.unwrap();
}
