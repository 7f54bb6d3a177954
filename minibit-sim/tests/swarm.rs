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

#[test]
fn free_riders_finish_later_than_contributors() {
    let report = run(SimConfig {
        free_riders: 5,
        ..small_swarm()
    });
    assert!(report.all_completed, "{report:#?}");
    let contributors = report.finish_s.expect("contributors finished");
    let free_riders = report
        .free_rider_finish_s
        .expect("free riders finish from the seed and optimistic unchokes");
    assert!(
        free_riders.p50 > contributors.p50,
        "free riders {free_riders:?} vs contributors {contributors:?}"
    );
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
    let sparse = |peer_exchange| {
        run(SimConfig {
            tracker_numwant: 1,
            peer_exchange,
            ..small_swarm()
        })
    };
    let with_pex = sparse(true);
    let without = sparse(false);
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
