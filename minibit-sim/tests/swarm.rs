//! Swarm behaviour, checked on the deterministic simulator.

use std::time::{Duration, Instant};

use minibit_core::torrent::PickerStrategy;
use minibit_sim::{SimConfig, SimReport, Simulation};

/// A small swarm that runs in well under a second: 4 MiB in 64 KiB pieces.
fn small_swarm() -> SimConfig {
    SimConfig {
        peers: 20,
        file_bytes: 4 * 1024 * 1024,
        piece_length: 64 * 1024,
        upload_bps: 500_000.0,
        seed_upload_bps: 500_000.0,
        latency: Duration::from_millis(20),
        rng_seed: 7,
        time_limit: Duration::from_secs(3_600),
        ..SimConfig::default()
    }
}

fn run(config: SimConfig) -> SimReport {
    let base = Instant::now();
    Simulation::new(config, base).expect("valid config").run()
}

#[test]
fn twenty_peer_swarm_completes_near_the_fluid_bound() {
    let report = run(small_swarm());
    assert!(report.all_completed, "{report:#?}");
    let finish = report.finish_s.as_ref().expect("finish times");
    assert!(finish.p50 <= finish.p90 && finish.p90 <= finish.max);
    let ratio = report.ratio_to_bound.expect("ratio when all completed");
    assert!(ratio >= 1.0, "nobody beats the fluid bound: {ratio}");
    assert!(
        ratio < 3.0,
        "a working swarm stays within 3x of the bound: {ratio}"
    );
    assert!(report.upload_utilization > 0.3, "{report:#?}");
}

#[test]
fn same_seed_gives_the_same_report() {
    let a = serde_json::to_string(&run(small_swarm())).unwrap();
    let b = serde_json::to_string(&run(small_swarm())).unwrap();
    assert_eq!(a, b);
    let other = run(SimConfig {
        rng_seed: 8,
        ..small_swarm()
    });
    assert_ne!(a, serde_json::to_string(&other).unwrap());
}

/// Tit-for-tat pays: 5 of 20 leechers never upload, links symmetric
/// (download capped at the upload rate, so the completed contributors
/// cannot hand the free riders the file in a blink at the end).
#[test]
fn free_riders_finish_well_after_contributors() {
    let report = run(SimConfig {
        free_riders: 5,
        file_bytes: 16 * 1024 * 1024,
        download_bps: Some(500_000.0),
        ..small_swarm()
    });
    assert!(report.all_completed, "{report:#?}");
    let contributors = report.finish_s.expect("contributors finished");
    let free_riders = report
        .free_rider_finish_s
        .expect("free riders finish from seeds and optimistic unchokes");
    // Measured 1.66 (rng seeds 8, 9: 1.37, 1.58); 1.45 (1.48, 1.30) when
    // the idle share of a slot was lent to free riders too; 1.09-1.19 when
    // the optimistic slot is refilled as soon as its holder loses interest
    // and seeds serve free riders like the peers that gave them blocks.
    let ratio = free_riders.p50 / contributors.p50;
    assert!(
        ratio > 1.5,
        "free riders {free_riders:?} vs contributors {contributors:?}: {ratio}"
    );
}

/// Issue 17's emulated-WAN swarm: 12 leechers and one seed, 64 MiB,
/// 20 Mbit/s (2.5 MB/s) links everywhere. The seed's upload binds the
/// fluid bound, and the leechers' uplinks have 8 % of slack: every second
/// one of them idles shows. Measured 1.26 (rng seeds 2, 3: 1.22); 1.44
/// with the 2 s pipeline and the rate-only choker, 1.59 with the 0.5 s
/// pipeline alone, 1.62 with it and the ranking by what a peer wants but
/// no extra slot.
#[test]
fn a_seed_bound_wan_swarm_keeps_the_leechers_uplinks_busy() {
    let report = run(SimConfig {
        peers: 12,
        file_bytes: 64 * 1024 * 1024,
        piece_length: 256 * 1024,
        upload_bps: 2_500_000.0,
        download_bps: Some(2_500_000.0),
        seed_upload_bps: 2_500_000.0,
        latency: Duration::from_millis(25),
        rng_seed: 1,
        ..SimConfig::default()
    });
    assert!(report.all_completed, "{report:#?}");
    let ratio = report.ratio_to_bound.expect("ratio when all completed");
    assert!(ratio < 1.35, "{ratio}: {report:#?}");
}

#[test]
fn rarest_first_survives_a_seed_that_leaves_after_one_copy() {
    let leaving_seed = |picker, initial_spread, copies| SimConfig {
        picker,
        initial_spread,
        seed_leaves_after_copies: Some(copies),
        ..small_swarm()
    };
    // The seed spreads its first copy one piece per peer: one copy is enough.
    let rarest = run(leaving_seed(PickerStrategy::RarestFirst, true, 1.0));
    assert!(rarest.all_completed, "rarest first: {rarest:#?}");
    // A seed serving whatever it is asked cannot leave after one copy: a
    // leecher cannot see what the others fetch from it, so some piece goes
    // out twice and another never.
    let plain = run(leaving_seed(PickerStrategy::RarestFirst, false, 1.0));
    assert!(!plain.all_completed, "plain seed: {plain:#?}");
    // Leaving after two copies, rarest-first spreads enough distinct
    // pieces; sequential picking fetches the same first pieces everywhere.
    let rarest = run(leaving_seed(PickerStrategy::RarestFirst, false, 2.0));
    assert!(rarest.all_completed, "rarest first: {rarest:#?}");
    let sequential = run(leaving_seed(PickerStrategy::Sequential, false, 2.0));
    assert!(!sequential.all_completed, "sequential: {sequential:#?}");
}

#[test]
fn bad_configs_are_refused() {
    let base = Instant::now();
    assert!(
        Simulation::new(
            SimConfig {
                peers: 0,
                ..small_swarm()
            },
            base
        )
        .is_err()
    );
    assert!(
        Simulation::new(
            SimConfig {
                free_riders: 5,
                leavers: 16,
                ..small_swarm()
            },
            base
        )
        .is_err()
    );
    assert!(
        Simulation::new(
            SimConfig {
                free_riders: 21,
                ..small_swarm()
            },
            base
        )
        .is_err()
    );
    assert!(
        Simulation::new(
            SimConfig {
                upload_bps: 0.0,
                ..small_swarm()
            },
            base
        )
        .is_err()
    );
    assert!(
        Simulation::new(
            SimConfig {
                piece_length: 0,
                ..small_swarm()
            },
            base
        )
        .is_err()
    );
}

/// Peers arrive over 30 s and eight of them leave for good at a random
/// instant of their first 8 s, mostly mid-download.
fn churning_swarm() -> SimConfig {
    SimConfig {
        arrival_spread: Duration::from_secs(30),
        leavers: 8,
        leave_within: Duration::from_secs(8),
        ..small_swarm()
    }
}

#[test]
fn with_peers_joining_and_leaving_everyone_who_stays_finishes() {
    let report = run(churning_swarm());
    assert!(
        report.left_unfinished >= 4,
        "the churn happens mid-download: {report:#?}"
    );
    assert!(report.all_completed, "{report:#?}");
    let again = run(churning_swarm());
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&again).unwrap(),
        "deterministic"
    );
}

#[test]
fn peer_exchange_connects_a_swarm_whose_tracker_lists_one_peer() {
    // Default settings: peer exchange must be on without asking for it.
    let with_pex = run(SimConfig {
        tracker_numwant: 1,
        ..small_swarm()
    });
    let without = run(SimConfig {
        tracker_numwant: 1,
        peer_exchange: false,
        ..small_swarm()
    });
    assert!(with_pex.all_completed, "{with_pex:#?}");
    let ratio = with_pex.ratio_to_bound.unwrap();
    assert!(ratio < 2.5, "PEX fills in the peers: {ratio}");
    let slow = without.finish_s.as_ref().unwrap().max;
    let fast = with_pex.finish_s.as_ref().unwrap().max;
    assert!(
        slow > 2.0 * fast,
        "without PEX each peer only trades with the few it dialled or was dialled by: {slow} s vs {fast} s"
    );
}

/// Mean over `k = 1..=40` of the fewest leechers holding any one piece when
/// the leechers held `k` copies between them: 50 leechers, 16 MiB in 256
/// pieces, a seed four times as fast as a leecher.
fn mean_min_availability(picker: PickerStrategy, rng_seed: u64) -> f64 {
    let report = run(SimConfig {
        peers: 50,
        file_bytes: 16 * 1024 * 1024,
        seed_upload_bps: 2_000_000.0,
        picker,
        rng_seed,
        ..small_swarm()
    });
    assert!(report.all_completed, "{report:#?}");
    let first = &report.min_availability[..40];
    f64::from(first.iter().sum::<u32>()) / first.len() as f64
}

#[test]
fn rarest_first_keeps_the_rarest_piece_replicated() {
    // One seed is noisy (rarest-first ÷ random 1.11-1.51 by seed over 1..=6), so the
    // means over rng seeds 1..=4 are compared. Measured: rarest-first
    // 2.26, random 1.94 (1.17x) since leechers give giver slots to more
    // partners (2.57 and 1.93, 1.33x, before; 2.64 and 1.98 while idle
    // slot shares were lent to peers that never sent a block); 2.8-3.3
    // and 1.65-1.75 per seed while a leecher unchoked no more peers than
    // its slots.
    let seeds = 1..=4u64;
    let mean = |picker| {
        seeds
            .clone()
            .map(|seed| mean_min_availability(picker, seed))
            .sum::<f64>()
            / seeds.clone().count() as f64
    };
    let rarest = mean(PickerStrategy::RarestFirst);
    let random = mean(PickerStrategy::Random);
    assert!(
        rarest > 1.1 * random,
        "rarest-first {rarest} vs random {random}"
    );
}

#[test]
fn the_initial_spread_puts_every_piece_out_with_one_seed_copy() {
    let spread = run(small_swarm());
    let every_piece_out = |r: &SimReport| r.seed_upload_copies.until_every_piece_out.unwrap();
    assert!(every_piece_out(&spread) <= 1.05, "{spread:#?}");
    // Serving whatever is asked, the seed sends some pieces twice before
    // the last one leaves it (measured 1.70-1.72).
    let plain = run(SimConfig {
        initial_spread: false,
        ..small_swarm()
    });
    assert!(every_piece_out(&plain) >= 1.3, "{plain:#?}");
}

#[test]
fn the_initial_seed_rejects_at_most_five_percent_of_the_requests() {
    // A spreading seed keeps a few pieces for each unchoked peer and
    // suggests them; a leecher asks the seed for those only, so it rarely
    // asks for a piece another peer is getting (issue 17: at most 5 %
    // rejected). 50 peers x 16 MiB, 1 MB/s, rng seeds 1, 2: measured 0 and
    // 11 rejects of about 1730 requests; with suggestions only at rejects
    // (before), 482 of 2211 and 627 of 2300.
    for rng_seed in [1, 2] {
        let report = run(SimConfig {
            peers: 50,
            file_bytes: 16 * 1024 * 1024,
            piece_length: 256 * 1024,
            upload_bps: 1_000_000.0,
            seed_upload_bps: 1_000_000.0,
            latency: Duration::from_millis(25),
            rng_seed,
            ..small_swarm()
        });
        assert!(report.all_completed, "{report:#?}");
        assert!(
            report.seed_rejects_sent * 20 <= report.seed_requests_received,
            "the seed rejected {} of {} requests",
            report.seed_rejects_sent,
            report.seed_requests_received
        );
        let copies = report.seed_upload_copies.until_every_piece_out.unwrap();
        assert!(copies <= 1.05, "{report:#?}");
    }
}

#[test]
fn endgame_cuts_the_last_piece_delay_behind_slow_peers() {
    // Three leechers upload at 2 kB/s: a block requested from one of them
    // takes 8 s. Endgame asks the other peers for the last blocks too.
    // Measured with endgame (latency 25 ms, rng seeds 1..3): median delay
    // 0.16-0.26 s, median finish 13.4-13.9 s; with endgame disabled:
    // median delay 1.4-20 s, median finish 34-40 s.
    for rng_seed in 1..=2 {
        let report = run(SimConfig {
            slow_peers: 3,
            slow_upload_bps: 2_000.0,
            rng_seed,
            ..small_swarm()
        });
        assert!(report.all_completed, "{report:#?}");
        let delay = report.last_piece_delay_s.as_ref().unwrap();
        assert!(delay.p50 < 1.0, "last-piece delay {delay:?}");
        let median = report.finish_s.as_ref().unwrap().p50;
        let unhindered = run(SimConfig {
            rng_seed,
            ..small_swarm()
        });
        let reference = unhindered.finish_s.unwrap().p50;
        assert!(
            median < 1.5 * reference,
            "median finish {median} s vs {reference} s without slow peers"
        );
    }
}

#[test]
fn super_seeding_uploads_one_copy_and_keeps_the_swarm_near_the_bound() {
    // Measured (rng seeds 1..3): 1.00 copy until all complete, 1.29-1.32x
    // the bound (1.48-1.51x without super-seeding in this swarm).
    for rng_seed in 1..=2 {
        let report = run(SimConfig {
            super_seed: true,
            rng_seed,
            ..small_swarm()
        });
        assert!(report.all_completed, "{report:#?}");
        let copies = report.seed_upload_copies.until_all_complete.unwrap();
        assert!(copies <= 1.05, "the seed uploaded {copies} copies");
        let ratio = report.ratio_to_bound.unwrap();
        assert!(ratio < 1.45, "super-seeding stretched the swarm: {ratio}");
    }
}

/// At a high bandwidth-delay product a slot of the super-seed idles for
/// round trips each time it turns over; with one offer per unchoke (or a
/// window sized by the starved rate alone) the seed's upload never rises
/// and the swarm collapsed to 10.3x the bound here (2.8x without
/// super-seeding). Windows covering the measured spread time once the
/// seed's link is latency-bound: 4.5x.
#[test]
fn super_seeding_does_not_collapse_at_a_high_bandwidth_delay_product() {
    let report = run(SimConfig {
        peers: 30,
        file_bytes: 64 * 1024 * 1024,
        piece_length: 256 * 1024,
        upload_bps: 12_500_000.0,
        download_bps: Some(12_500_000.0),
        seed_upload_bps: 12_500_000.0,
        latency: Duration::from_millis(100),
        super_seed: true,
        rng_seed: 1,
        ..small_swarm()
    });
    assert!(report.all_completed, "{report:#?}");
    let copies = report.seed_upload_copies.until_all_complete.unwrap();
    assert!(copies <= 1.05, "the seed uploaded {copies} copies");
    let ratio = report.ratio_to_bound.unwrap();
    assert!(ratio < 7.0, "super-seeding collapsed: {ratio}");
}
