//! BEP 12 multitracker bookkeeping, sans IO: which tracker to announce to
//! next.
//!
//! The trackers of a torrent come in tiers. Each tier is shuffled once
//! when the list is built (from a seeded RNG, so equal seeds give equal
//! orders); an announce tries the trackers of the first tier in order,
//! then those of the next tier, and so on: a tier is left only when every
//! tracker in it failed. A tracker that answered moves to the front of
//! its tier, so the next announce goes to it first. Every scheme (HTTP,
//! UDP) may appear in any tier; which ones a client speaks is the
//! driver's business.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::metainfo::Metainfo;

/// The tiers of trackers of one torrent, each in its current order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl Tiers {
    /// `tiers` in order of preference, each shuffled with an RNG seeded by
    /// `seed` (BEP 12: "the URLs within each tier are shuffled"). Empty
    /// strings, URLs already listed in this or an earlier tier, and tiers
    /// left empty are dropped.
    pub fn new(tiers: impl IntoIterator<Item = Vec<String>>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut seen = std::collections::HashSet::new();
        let tiers = tiers
            .into_iter()
            .filter_map(|tier| {
                let mut tier: Vec<String> = tier
                    .into_iter()
                    .filter(|url| !url.is_empty() && seen.insert(url.clone()))
                    .collect();
                tier.shuffle(&mut rng);
                (!tier.is_empty()).then_some(tier)
            })
            .collect();
        Self { tiers }
    }

    /// The trackers of `metainfo`: its `announce-list` when it has one
    /// (BEP 12: a client that supports it ignores `announce` then),
    /// otherwise one tier holding `announce`; none when it names no tracker.
    pub fn of_metainfo(metainfo: &Metainfo, seed: u64) -> Self {
        let list = metainfo.announce_list();
        if list.iter().any(|tier| !tier.is_empty()) {
            Self::new(list.iter().cloned(), seed)
        } else {
            Self::new(metainfo.announce().map(|url| vec![url.to_owned()]), seed)
        }
    }

    /// The tiers, each in its current order.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Every tracker in the order an announce tries them: the first tier
    /// in its current order, then the second, and so on.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.tiers.iter().flatten().map(String::as_str)
    }

    /// How many trackers there are, all tiers together.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    /// Whether there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// `url` answered an announce: it moves to the front of its tier, the
    /// others of the tier keep their order (BEP 12). Returns false, and
    /// changes nothing, when `url` is not one of the trackers.
    pub fn answered(&mut self, url: &str) -> bool {
        for tier in &mut self.tiers {
            if let Some(i) = tier.iter().position(|u| u == url) {
                tier[..=i].rotate_right(1);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tiers(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter()
            .map(|tier| tier.iter().map(|&u| u.to_owned()).collect())
            .collect()
    }

    #[test]
    fn a_tracker_that_answered_goes_first_in_its_tier_only() {
        let mut t = Tiers::new(tiers(&[&["a"], &["b", "c", "d"]]), 7);
        let second = t.tiers()[1].clone();
        assert!(t.answered(&second[2]));
        assert_eq!(
            t.tiers()[1],
            [second[2].clone(), second[0].clone(), second[1].clone()]
        );
        assert_eq!(t.tiers()[0], ["a"], "the other tier does not move");
        assert_eq!(t.order().next(), Some("a"), "tier 1 is still tried first");
        assert!(!t.answered("z"));
    }

    #[test]
    fn duplicates_and_empty_tiers_are_dropped() {
        let t = Tiers::new(tiers(&[&[], &["a", "a", ""], &["a"], &["b"]]), 1);
        assert_eq!(t.tiers(), tiers(&[&["a"], &["b"]]));
        assert_eq!(t.len(), 2);
        assert!(Tiers::new(Vec::new(), 1).is_empty());
    }

    #[test]
    fn the_announce_list_replaces_announce() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"content").unwrap();
        let build = |list: Vec<Vec<String>>| {
            crate::metainfo::MetainfoBuilder::new(dir.path().join("f"))
                .announce("http://main/announce")
                .announce_list(list)
                .build()
                .unwrap()
        };
        let only = Tiers::of_metainfo(&build(Vec::new()), 0);
        assert_eq!(only.tiers(), tiers(&[&["http://main/announce"]]));
        let listed = Tiers::of_metainfo(&build(tiers(&[&["udp://x:1"], &["http://y/a"]])), 0);
        assert_eq!(listed.tiers(), tiers(&[&["udp://x:1"], &["http://y/a"]]));
    }

    /// Up to 5 tiers of up to 5 distinct URLs.
    fn tier_lists() -> impl Strategy<Value = Vec<Vec<String>>> {
        prop::collection::vec(prop::collection::vec(0u8..40, 0..5), 0..5).prop_map(|tiers| {
            let mut seen = std::collections::HashSet::new();
            tiers
                .into_iter()
                .map(|tier| {
                    tier.into_iter()
                        .filter(|n| seen.insert(*n))
                        .map(|n| format!("udp://t{n}:80"))
                        .collect()
                })
                .collect()
        })
    }

    proptest! {
        /// Each tier is a permutation of the tier given (empty ones
        /// dropped), the same seed gives the same order, and answers only
        /// reorder the answering tracker's tier, moving it to the front.
        #[test]
        fn tiers_keep_their_members_and_answers_only_move_the_answerer(
            list in tier_lists(),
            seed in any::<u64>(),
            answers in prop::collection::vec(0usize..30, 0..10),
        ) {
            let mut t = Tiers::new(list.clone(), seed);
            prop_assert_eq!(&t, &Tiers::new(list.clone(), seed));
            let given: Vec<&Vec<String>> = list.iter().filter(|tier| !tier.is_empty()).collect();
            prop_assert_eq!(t.tiers().len(), given.len());
            for (got, want) in t.tiers().iter().zip(&given) {
                let (mut got, mut want) = (got.clone(), (*want).clone());
                got.sort();
                want.sort();
                prop_assert_eq!(got, want);
            }
            for a in answers {
                let Some(url) = t.order().nth(a % t.len().max(1)).map(str::to_owned) else {
                    continue;
                };
                let before = t.clone();
                prop_assert!(t.answered(&url));
                for (old, new) in before.tiers().iter().zip(t.tiers()) {
                    if old.contains(&url) {
                        prop_assert_eq!(&new[0], &url);
                        let rest_old: Vec<_> = old.iter().filter(|u| **u != url).collect();
                        let rest_new: Vec<_> = new[1..].iter().collect();
                        prop_assert_eq!(rest_old, rest_new);
                    } else {
                        prop_assert_eq!(old, new);
                    }
                }
            }
        }
    }
}
