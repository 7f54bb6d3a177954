//! Sharing a global number of upload slots among torrents (libtorrent's
//! `unchoke_slots_limit`).

use std::time::Duration;

/// How often the slots are shared again (as often as a torrent rechokes, BEP 3).
pub(super) const SHARE_INTERVAL: Duration = Duration::from_secs(10);

/// `total` slots over torrents wanting `demand[i]` slots each (their
/// interested peers): round-robin from torrent `start`, one slot at a time
/// to each torrent whose demand is not met; what is left goes one slot
/// each to torrents that got none (so a peer that becomes interested there
/// is served before the next share). The shares add up to at most `total`.
pub(super) fn share(total: usize, demand: &[usize], start: usize) -> Vec<usize> {
    let n = demand.len();
    let mut shares = vec![0; n];
    if n == 0 {
        return shares;
    }
    let order = || (0..n).map(|i| (start + i) % n);
    let mut left = total;
    let mut wanting = demand.iter().filter(|&&d| d > 0).count();
    while left > 0 && wanting > 0 {
        for i in order() {
            if left == 0 {
                break;
            }
            if shares[i] < demand[i] {
                shares[i] += 1;
                left -= 1;
                if shares[i] == demand[i] {
                    wanting -= 1;
                }
            }
        }
    }
    for i in order() {
        if left == 0 {
            break;
        }
        if shares[i] == 0 {
            shares[i] = 1;
            left -= 1;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slots_follow_demand_round_robin_and_rotate_when_scarce() {
        assert_eq!(share(6, &[5, 1, 0, 2], 0), vec![3, 1, 0, 2]);
        assert_eq!(share(9, &[5, 1, 0, 2], 0), vec![5, 1, 1, 2]);
        assert_eq!(share(2, &[3, 3, 3], 0), vec![1, 1, 0]);
        assert_eq!(share(2, &[3, 3, 3], 1), vec![0, 1, 1]);
        assert_eq!(share(2, &[3, 3, 3], 2), vec![1, 0, 1]);
        assert_eq!(share(3, &[0, 0], 0), vec![1, 1]);
        assert_eq!(share(0, &[4], 0), vec![0]);
    }

    proptest! {
        #[test]
        fn shares_never_exceed_the_total_and_meet_demand_when_they_can(
            total in 0usize..40,
            demand in prop::collection::vec(0usize..10, 0..12),
            start in 0usize..12,
        ) {
            let shares = share(total, &demand, start);
            prop_assert_eq!(shares.len(), demand.len());
            prop_assert!(shares.iter().sum::<usize>() <= total);
            let wanted: usize = demand.iter().sum();
            if wanted <= total {
                for (s, d) in shares.iter().zip(&demand) {
                    prop_assert!(s >= d);
                }
            } else {
                prop_assert_eq!(shares.iter().sum::<usize>(), total);
            }
        }
    }
}
