//! Peers join and leave (SIGKILL) throughout a download; every peer that
//! stays finishes with an identical file.

use std::path::PathBuf;

use super::minibit::Tracker;
use super::{
    DRIVER_LOG, completed, path_str, peer, race_until, same_file, signal, tempdir, verified,
};
use test_support::content;
use test_support::process::Proc;

/// A leecher the test started: its name, process and download folder.
type Leecher = (String, Proc, PathBuf);

#[test]
fn peers_join_and_leave_mid_download_and_everyone_who_stays_finishes() {
    const LEN: usize = 48 * 1024 * 1024;
    const PIECE: usize = 256 * 1024;
    let pieces = LEN / PIECE;
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("churn.bin");
    content::random_file(&source, LEN);
    let (tracker, seeded) = Tracker::start_with(
        &["--bind", "127.0.0.1:0", "--piece-length", "262144"],
        &[&source],
    );
    let torrent = tmp.path().join("churn.torrent");
    tracker.fetch(&seeded[0].torrent_url, &torrent);
    // Leechers keep seeding once complete (no --exit-on-complete): later
    // arrivals may need them.
    let start = |i: usize| -> Leecher {
        let name = format!("leecher {i}");
        let dir = tmp.path().join(format!("leecher{i}"));
        let args = ["-q", "-o", path_str(&dir), path_str(&torrent)];
        let proc = peer(&name, &args, Some(DRIVER_LOG));
        (name, proc, dir)
    };
    let mut running: Vec<Leecher> = (1..=3).map(start).collect();
    let mut unfinished_leavers = 0;
    // Twice, once some leecher holds 15 % (then 45 %) of the pieces: freeze
    // every leecher (SIGSTOP) so the moment is well defined, SIGKILL the
    // least advanced one, start a new one, resume the others.
    for (round, percent) in [15, 45].into_iter().enumerate() {
        race_until(&format!("a leecher to hold {percent} %"), || {
            running
                .iter()
                .any(|(_, p, _)| verified(p).len() * 100 >= pieces * percent)
        });
        for (_, proc, _) in &running {
            signal(proc, "STOP");
        }
        let victim = (0..running.len())
            .min_by_key(|&i| verified(&running[i].1).len())
            .unwrap();
        let (name, proc, _) = running.remove(victim);
        if !completed(&proc) {
            unfinished_leavers += 1;
        }
        eprintln!(
            "{name} leaves with {} of {pieces} pieces",
            verified(&proc).len()
        );
        drop(proc);
        running.push(start(4 + round));
        for (_, proc, _) in &running[..running.len() - 1] {
            signal(proc, "CONT");
        }
    }
    assert!(unfinished_leavers >= 1, "a peer left mid-download");
    for (name, proc, dir) in &running {
        race_until(&format!("{name} to finish"), || completed(proc));
        assert!(same_file(&source, &dir.join("churn.bin")), "{name}");
    }
}
