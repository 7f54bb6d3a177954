//! The peers of one swarm, split into leechers and seeders, with O(1)
//! insert, remove and lookup and random picks that cost O(wanted) instead
//! of O(swarm): picking from a map by walking it took a third of the UDP
//! tracker's time under load.
//!
//! Iteration follows insertion and removal order only (no hash order), so
//! a seeded random generator gives the same picks for the same inputs.

use std::collections::HashMap;
use std::hash::Hash;

use rand::Rng;
use rand::seq::IteratorRandom as _;

/// Which list an entry is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Still downloading.
    Leecher,
    /// Has everything.
    Seeder,
}

/// Entries keyed by `K`, each a leecher or a seeder.
#[derive(Debug)]
pub struct Roster<K, V> {
    leechers: Vec<(K, V)>,
    seeders: Vec<(K, V)>,
    index: HashMap<K, (Role, usize)>,
}

impl<K, V> Default for Roster<K, V> {
    fn default() -> Self {
        Self {
            leechers: Vec::new(),
            seeders: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash, V> Roster<K, V> {
    /// Entries in both lists.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Entries in the seeder list.
    pub fn seeders(&self) -> usize {
        self.seeders.len()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        let &(role, at) = self.index.get(key)?;
        Some(&self.list(role)[at].1)
    }

    /// Every entry: leechers, then seeders.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.leechers
            .iter()
            .chain(&self.seeders)
            .map(|(k, v)| (k, v))
    }

    /// Records `value` for `key` in `role`'s list, replacing (and
    /// returning) what was there.
    pub fn insert(&mut self, key: K, value: V, role: Role) -> Option<V> {
        let old = self.remove(&key);
        let list = self.list_mut(role);
        list.push((key.clone(), value));
        let at = list.len() - 1;
        self.index.insert(key, (role, at));
        old
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (role, at) = self.index.remove(key)?;
        let list = self.list_mut(role);
        let (_, value) = list.swap_remove(at);
        if let Some((moved, _)) = list.get(at) {
            let moved = moved.clone();
            self.index.insert(moved, (role, at));
        }
        Some(value)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.leechers.retain(|(k, v)| keep(k, v));
        self.seeders.retain(|(k, v)| keep(k, v));
        self.index.clear();
        for (role, list) in [
            (Role::Leecher, &self.leechers),
            (Role::Seeder, &self.seeders),
        ] {
            for (at, (k, _)) in list.iter().enumerate() {
                self.index.insert(k.clone(), (role, at));
            }
        }
    }

    /// Up to `n` random entries of `role`'s list that `skip` does not
    /// refuse, in no particular order. Expected cost O(`n`) while `skip`
    /// refuses at most two of them (the caller itself); otherwise the
    /// whole list is walked.
    pub fn pick(
        &self,
        rng: &mut impl Rng,
        role: Role,
        n: usize,
        skip: impl Fn(&K) -> bool,
    ) -> Vec<&K> {
        let list = self.list(role);
        let tries = n + 2;
        if list.len() > 2 * tries {
            let picked: Vec<&K> = rand::seq::index::sample(rng, list.len(), tries)
                .into_iter()
                .map(|at| &list[at].0)
                .filter(|k| !skip(k))
                .take(n)
                .collect();
            if picked.len() == n {
                return picked;
            }
        }
        list.iter()
            .map(|(k, _)| k)
            .filter(|k| !skip(k))
            .choose_multiple(rng, n)
    }

    fn list(&self, role: Role) -> &Vec<(K, V)> {
        match role {
            Role::Leecher => &self.leechers,
            Role::Seeder => &self.seeders,
        }
    }

    fn list_mut(&mut self, role: Role) -> &mut Vec<(K, V)> {
        match role {
            Role::Leecher => &mut self.leechers,
            Role::Seeder => &mut self.seeders,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    proptest! {
        /// Through any inserts, removals and retains the roster holds what
        /// a plain map holds, in the right lists, and picks are distinct,
        /// of the right role, never skipped keys, and as many as possible.
        #[test]
        fn a_roster_agrees_with_a_map(
            ops in proptest::collection::vec((0u8..3, 0u32..40, any::<bool>()), 1..300),
            n in 0usize..30,
            skipped in 0u32..40,
        ) {
            let mut roster = Roster::default();
            let mut model = BTreeMap::new();
            for (op, key, seed) in ops {
                let role = if seed { Role::Seeder } else { Role::Leecher };
                match op {
                    0 => prop_assert_eq!(roster.insert(key, (key, seed), role), model.insert(key, (key, seed))),
                    1 => prop_assert_eq!(roster.remove(&key), model.remove(&key)),
                    _ => {
                        roster.retain(|k, _| k % 7 != key % 7);
                        model.retain(|k, _| k % 7 != key % 7);
                    }
                }
            }
            prop_assert_eq!(roster.len(), model.len());
            let seeders = model.values().filter(|(_, s)| *s).count();
            prop_assert_eq!(roster.seeders(), seeders);
            for (k, v) in &model {
                prop_assert_eq!(roster.get(k), Some(v));
            }
            let mut rng = ChaCha8Rng::seed_from_u64(u64::from(skipped));
            for role in [Role::Leecher, Role::Seeder] {
                let picked = roster.pick(&mut rng, role, n, |k| *k == skipped);
                let unique: HashSet<_> = picked.iter().collect();
                prop_assert_eq!(unique.len(), picked.len());
                let eligible = model
                    .iter()
                    .filter(|(k, (_, s))| **k != skipped && *s == (role == Role::Seeder))
                    .count();
                prop_assert_eq!(picked.len(), n.min(eligible));
                for k in picked {
                    prop_assert_ne!(*k, skipped);
                    prop_assert_eq!(model[k].1, role == Role::Seeder);
                }
            }
        }
    }
}
