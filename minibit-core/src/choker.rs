//! Tit-for-tat choking (BEP 3 "Choking and Optimistic Unchoking").
//!
//! [`Choker`] is pure: the torrent calls [`Choker::rechoke`] every
//! [`RECHOKE_INTERVAL`] with a snapshot of every connected peer
//! ([`PeerStats`]) and sends the `choke` / `unchoke` messages listed in the
//! returned [`ChokeChanges`]. The 30 s optimistic-unchoke rotation is kept
//! inside the choker and driven by the `now` passed in.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::id::PeerKey;

/// How often the torrent calls [`Choker::rechoke`] (BEP 3: "once every ten seconds").
pub const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);

/// Tunables of a [`Choker`]; `Default` gives the BEP 3 values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Upload slots including the optimistic unchoke (default 4). Zero
    /// unchokes nobody; one is the optimistic slot only.
    pub slots: usize,
    /// How long one peer holds the optimistic unchoke (default 30 s).
    pub optimistic_interval: Duration,
    /// A peer we could download from that sent no block for this long is
    /// snubbed (default 60 s); see [`Choker::is_snubbed`].
    pub snub_timeout: Duration,
    /// Peers connected for less than this are "new" and three times as
    /// likely to get the optimistic unchoke (default 60 s).
    pub new_peer_window: Duration,
    /// When seeding, how long an unchoked peer keeps its regular slot
    /// before yielding to the peers that waited longest (default 30 s).
    pub seed_turn: Duration,
    /// When leeching, a regular slot a peer wanting little of ours leaves
    /// partly idle is shared with the next peers in rank that ever sent
    /// us a block, and [`GIVER_SLOTS_PER_SLOT`] more slots per slot go to
    /// such peers, so more than `slots` peers may be unchoked (default
    /// true); false keeps them to `slots` (a session sharing a global
    /// number of slots).
    pub lend_idle_slots: bool,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        Self {
            slots: 4,
            optimistic_interval: Duration::from_secs(30),
            snub_timeout: Duration::from_secs(60),
            new_peer_window: Duration::from_secs(60),
            seed_turn: Duration::from_secs(30),
            lend_idle_slots: true,
        }
    }
}

/// One connected peer as the choker sees it at a rechoke.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerKey,
    /// The peer is interested in us (BEP 3 "interested").
    pub interested: bool,
    /// We are currently choking the peer.
    pub choked: bool,
    /// Download rate from the peer to us, bytes/s (only ranked, and so
    /// only needed, while the peer is interested).
    pub download_rate: f64,
    /// Upload rate from us to the peer, bytes/s (only ranked, and so only
    /// needed, while the peer is interested).
    pub upload_rate: f64,
    /// Bytes of blocks the peer sent us since it connected (reciprocation
    /// credit: a seed serves peers that gave before those that never did,
    /// and a leecher lends idle shares of a slot only to peers that gave).
    pub downloaded: u64,
    /// How many of our verified pieces the peer lacks: what an upload slot
    /// can still carry to it (only ranked, and so only needed, while
    /// leeching and the peer is interested).
    pub wants_from_us: u32,
    /// When the peer connected.
    pub connected_at: Instant,
    /// Since when we could download from the peer: the later of the
    /// instant it unchoked us and the instant we became interested in it;
    /// `None` while it chokes us or we are not interested.
    pub can_download_since: Option<Instant>,
    /// When the last block from the peer arrived, if any.
    pub last_block_at: Option<Instant>,
}

/// A peer that lacks fewer than this many of our pieces cannot keep a
/// regular upload slot busy until the next rechoke (a tit-for-tat partner
/// holding nearly the pieces we hold): when leeching, it counts for that
/// share of a slot, in its rank and in the slots it takes.
pub const WANTS_FOR_A_FULL_SLOT: u32 = 32;

/// The share of a regular upload slot `stats` can use: 1, or less when it
/// lacks fewer than [`WANTS_FOR_A_FULL_SLOT`] of our pieces.
fn slot_share(stats: &PeerStats) -> f64 {
    f64::from(stats.wants_from_us.min(WANTS_FOR_A_FULL_SLOT)) / f64::from(WANTS_FOR_A_FULL_SLOT)
}

/// What a regular upload slot given to `stats` is worth when leeching:
/// its download rate to us (tit-for-tat, BEP 3) times the share of the
/// slot it can use. Partners of a tit-for-tat cluster hold nearly the
/// same pieces; a slot given to one that wants one or two pieces idles
/// our uplink while a peer that wants much waits choked (the clustering
/// of Legout et al., 2007).
fn worth(stats: &PeerStats) -> f64 {
    stats.download_rate * slot_share(stats)
}

/// Regular upload slots a leecher adds, per configured slot
/// ([`ChokerConfig::slots`]), for peers that ever sent us a block (with
/// [`ChokerConfig::lend_idle_slots`]). At a high bandwidth-delay product
/// the peers of the regular slots cannot keep our uplink busy: most of
/// the time their downloads are already full from other peers (our
/// blocks wait in their downlink queue, their pipeline to us is full) or
/// what they lack of ours is being fetched from others; more partners
/// give our uplink more peers with room to download.
pub const GIVER_SLOTS_PER_SLOT: usize = 2;

/// Leeching: the first of `ranked` that fill `slots` regular slots plus
/// `giver_slots` for peers that ever sent us a block. A peer that
/// uploads to us takes only the share of a slot it can use
/// ([`slot_share`]), so what a peer wanting little leaves idle goes to
/// the next in rank; a peer that uploads nothing takes a whole slot; at
/// most `2 × slots + giver_slots` peers in all. Beyond `slots` peers
/// only peers that ever sent us a block are taken: idle upload is lent
/// to partners of tit-for-tat, not to free riders.
fn fill_slots<'a>(
    ranked: &[&'a PeerStats],
    slots: usize,
    giver_slots: usize,
) -> Vec<&'a PeerStats> {
    let mut budget = (slots + giver_slots) as f64;
    let mut taken = Vec::new();
    for &stats in ranked {
        if budget <= 0.0 || taken.len() == 2 * slots + giver_slots {
            break;
        }
        if taken.len() >= slots && stats.downloaded == 0 {
            continue;
        }
        taken.push(stats);
        budget -= if stats.download_rate > 0.0 {
            slot_share(stats)
        } else {
            1.0
        };
    }
    taken
}

/// What a rechoke changed: send `unchoke` to every peer in `unchoke` and
/// `choke` to every peer in `choke`. Peers in neither keep their state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChokeChanges {
    /// Peers to unchoke (currently choked).
    pub unchoke: Vec<PeerKey>,
    /// Peers to choke (currently unchoked).
    pub choke: Vec<PeerKey>,
}

/// The tit-for-tat choker of one torrent.
///
/// Only interested peers are unchoked; an unchoked peer that lost interest
/// is choked at the next rechoke. With `slots` upload slots:
///
/// Leeching: the `slots - 1` regular slots go to the interested, not
/// snubbed peers with the best download rate to us (ties: peers that
/// ever sent us a block, then peers already unchoked, to avoid
/// fibrillation). A peer that uploads to us but lacks fewer than
/// [`WANTS_FOR_A_FULL_SLOT`] of our pieces cannot use a whole slot: its
/// rate counts in proportion to what it lacks, and it takes only that
/// share of a slot, so the next peers in rank share the rest; a peer
/// uploading nothing takes a whole slot. [`Choker::giver_slots`] more
/// regular slots go to the next in rank that ever sent us a block; at
/// most twice the regular slots plus those peers in all; peers beyond
/// the regular slots only if they ever sent us a block, so a free rider
/// is never lent a share nor a giver slot; none of this with
/// [`ChokerConfig::lend_idle_slots`] off. One
/// interested peer outside them holds the optimistic unchoke, rotated
/// every `optimistic_interval` to a random other interested peer without
/// a regular slot, peers connected for less than `new_peer_window` three
/// times as likely (BEP 3). The period is fixed: a holder that loses
/// interest or leaves is not replaced before it ends (its slot goes to the
/// regular ranking), so a peer that never uploads (always interested,
/// always waiting) is not handed the slot each time a holder is done.
/// The period turns over only at a [`Choker::rechoke`] round, never when
/// [`Choker::fill_free_slots`] fills a slot between rounds; a leecher
/// that finds no candidate starts no period (so a start with nobody
/// interested yet does not leave the slot empty for a whole period).
///
/// Seeding: peers that ever sent us a block (reciprocation credit from
/// our leeching days) come before peers that never did; within each
/// group a peer unchoked for less than `seed_turn` keeps its slot
/// ("its turn"); turn holders are ranked by our upload rate to them, then
/// the other interested peers by the time of their last unchoke (never
/// unchoked first, then longest ago), so a peer whose turn is over yields
/// to every peer that waited longer and every leecher gets a turn (a
/// round-robin like libtorrent's seeding choker). The optimistic unchoke
/// works as when leeching.
#[derive(Clone, Debug)]
pub struct Choker {
    config: ChokerConfig,
    rng: ChaCha8Rng,
    optimistic: Option<PeerKey>,
    optimistic_since: Option<Instant>,
    /// When each peer was last unchoked (start of its current or last turn).
    unchoked_at: HashMap<PeerKey, Instant>,
}

impl Choker {
    /// A choker with `config`; `rng_seed` drives the optimistic choice.
    pub fn new(config: ChokerConfig, rng_seed: u64) -> Self {
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            optimistic: None,
            optimistic_since: None,
            unchoked_at: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// Changes the number of upload slots; the next [`Choker::rechoke`]
    /// applies it.
    pub fn set_slots(&mut self, slots: usize) {
        self.config.slots = slots;
    }

    /// Regular slots a leecher adds for peers that ever sent us a block:
    /// [`GIVER_SLOTS_PER_SLOT`] per slot, none without
    /// [`ChokerConfig::lend_idle_slots`].
    pub fn giver_slots(&self) -> usize {
        if self.config.lend_idle_slots {
            GIVER_SLOTS_PER_SLOT * self.config.slots
        } else {
            0
        }
    }

    /// Turns [`ChokerConfig::lend_idle_slots`] on or off; the next
    /// [`Choker::rechoke`] applies it.
    pub fn set_lend_idle_slots(&mut self, lend: bool) {
        self.config.lend_idle_slots = lend;
    }

    /// Decides who is unchoked at `now`. `peers` lists every connected peer
    /// once; `seeding` is `true` when we have every piece. Only interested
    /// peers end up unchoked: never more than `slots` when seeding or
    /// without [`ChokerConfig::lend_idle_slots`]; otherwise, when
    /// leeching, more only for peers that ever sent us a block (the
    /// [`Choker::giver_slots`], and shares of slots left partly idle by
    /// peers that want little from us), never more than
    /// `2 × slots + giver_slots`.
    pub fn rechoke(&mut self, now: Instant, seeding: bool, peers: &[PeerStats]) -> ChokeChanges {
        self.rechoke_inner(now, seeding, peers, true)
    }

    /// Between rechoke rounds: the peers to unchoke now that a slot is
    /// free (a giver slot not taken, or a peer that lost interest or
    /// left). Nobody is choked, the optimistic period is not rotated (it
    /// turns over only at a [`Choker::rechoke`], so an event between
    /// rounds never ends it without a successor), and a choked peer that
    /// never sent us a block is no candidate (a free rider gets no more
    /// than the rounds give it).
    pub fn fill_free_slots(
        &mut self,
        now: Instant,
        seeding: bool,
        peers: &[PeerStats],
    ) -> Vec<PeerKey> {
        let candidates: Vec<PeerStats> = peers
            .iter()
            .map(|&stats| PeerStats {
                interested: stats.interested && !(stats.choked && stats.downloaded == 0),
                ..stats
            })
            .collect();
        self.rechoke_inner(now, seeding, &candidates, false).unchoke
    }

    /// [`Choker::rechoke`]; the optimistic period turns over only when
    /// `rotate` is set.
    fn rechoke_inner(
        &mut self,
        now: Instant,
        seeding: bool,
        peers: &[PeerStats],
        rotate: bool,
    ) -> ChokeChanges {
        if self.config.slots == 0 {
            self.optimistic = None;
            return Self::changes(peers, &HashSet::new());
        }
        let interested: Vec<&PeerStats> = peers.iter().filter(|p| p.interested).collect();
        // The optimistic period is fixed: a holder that lost interest or
        // left is not replaced before the period ends (a free rider, always
        // interested, would otherwise be handed the slot again and again);
        // its slot goes to the regular ranking meanwhile.
        let period_running = !rotate
            || self.optimistic_since.is_some_and(|since| {
                now.saturating_duration_since(since) < self.config.optimistic_interval
            });
        let keep_optimistic = self
            .optimistic
            .filter(|&key| period_running && interested.iter().any(|p| p.peer == key));
        let regular_slots = if period_running && keep_optimistic.is_none() {
            self.config.slots
        } else {
            self.config.slots - 1
        };

        let mut regular: Vec<&PeerStats> = interested
            .iter()
            .copied()
            .filter(|p| Some(p.peer) != keep_optimistic)
            .filter(|p| seeding || !self.is_snubbed(now, p))
            .collect();
        if seeding {
            regular = self.seed_order(now, regular);
        } else {
            regular.sort_by(|a, b| {
                worth(b)
                    .total_cmp(&worth(a))
                    .then((b.downloaded > 0).cmp(&(a.downloaded > 0)))
                    .then(a.choked.cmp(&b.choked))
                    .then(a.peer.cmp(&b.peer))
            });
        }
        if seeding || !self.config.lend_idle_slots {
            regular.truncate(regular_slots);
        } else {
            regular = fill_slots(&regular, regular_slots, self.giver_slots());
        }
        let mut unchoked: HashSet<PeerKey> = regular.iter().map(|p| p.peer).collect();

        if period_running {
            self.optimistic = keep_optimistic;
            if keep_optimistic.is_none() && unchoked.len() < self.config.slots {
                // The regular ranking cannot use the freed slot (every
                // other interested peer is snubbed): an optimistic one can.
                self.optimistic = self.choose_optimistic(now, &interested, &unchoked, None);
            }
        } else {
            let previous = self.optimistic;
            self.optimistic = self
                .choose_optimistic(now, &interested, &unchoked, previous)
                .or_else(|| self.choose_optimistic(now, &interested, &unchoked, None));
            // A leecher with no candidate (nobody interested yet, at the
            // start) starts no period, so the next rechoke tries again.
            self.optimistic_since = if seeding {
                Some(now)
            } else {
                self.optimistic.map(|_| now)
            };
        }
        unchoked.extend(self.optimistic);

        for stats in peers {
            if stats.choked && unchoked.contains(&stats.peer) {
                self.unchoked_at.insert(stats.peer, now);
            }
        }
        Self::changes(peers, &unchoked)
    }

    /// The peer holding the optimistic unchoke, if any.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// Forgets `peer` (disconnected) so a later peer reusing its key starts fresh.
    pub fn remove_peer(&mut self, peer: PeerKey) {
        self.unchoked_at.remove(&peer);
        if self.optimistic == Some(peer) {
            self.optimistic = None;
        }
    }

    /// Anti-snubbing: the peer is snubbed when we could download from it
    /// (`can_download_since` is set) and no block arrived from it for
    /// `snub_timeout`, counted from the later of `can_download_since` and
    /// `last_block_at`. A snubbed peer loses its regular slot when leeching
    /// (it may still get the optimistic one).
    pub fn is_snubbed(&self, now: Instant, stats: &PeerStats) -> bool {
        stats.can_download_since.is_some_and(|since| {
            let from = stats.last_block_at.map_or(since, |block| block.max(since));
            now.saturating_duration_since(from) >= self.config.snub_timeout
        })
    }

    /// Seeding order: peers that gave us blocks first; within each group,
    /// turn holders by upload rate, then the longest waiting (never
    /// unchoked first), ties by upload rate then key.
    fn seed_order<'a>(&self, now: Instant, peers: Vec<&'a PeerStats>) -> Vec<&'a PeerStats> {
        let mut ranked: Vec<(bool, Option<Instant>, &PeerStats)> = peers
            .into_iter()
            .map(|p| {
                let at = self.unchoked_at.get(&p.peer).copied();
                let turn = !p.choked
                    && at.is_some_and(|at| {
                        now.saturating_duration_since(at) < self.config.seed_turn
                    });
                (turn, at, p)
            })
            .collect();
        ranked.sort_by(|(a_turn, a_at, a), (b_turn, b_at, b)| {
            (b.downloaded > 0)
                .cmp(&(a.downloaded > 0))
                .then(b_turn.cmp(a_turn))
                .then_with(|| {
                    if *a_turn {
                        Ordering::Equal
                    } else {
                        a_at.cmp(b_at)
                    }
                })
                .then(b.upload_rate.total_cmp(&a.upload_rate))
                .then(a.peer.cmp(&b.peer))
        });
        ranked.into_iter().map(|(_, _, p)| p).collect()
    }

    /// A random interested peer outside `unchoked` and other than `exclude`,
    /// new peers weighted three times.
    fn choose_optimistic(
        &mut self,
        now: Instant,
        interested: &[&PeerStats],
        unchoked: &HashSet<PeerKey>,
        exclude: Option<PeerKey>,
    ) -> Option<PeerKey> {
        let window = self.config.new_peer_window;
        let weight = |p: &PeerStats| -> u32 {
            if now.saturating_duration_since(p.connected_at) < window {
                3
            } else {
                1
            }
        };
        let candidates: Vec<&PeerStats> = interested
            .iter()
            .copied()
            .filter(|p| !unchoked.contains(&p.peer) && Some(p.peer) != exclude)
            .collect();
        let total: u32 = candidates.iter().map(|p| weight(p)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.rng.random_range(0..total);
        candidates.into_iter().find_map(|p| {
            let w = weight(p);
            if ticket < w {
                Some(p.peer)
            } else {
                ticket -= w;
                None
            }
        })
    }

    fn changes(peers: &[PeerStats], unchoked: &HashSet<PeerKey>) -> ChokeChanges {
        let mut changes = ChokeChanges::default();
        for stats in peers {
            match (stats.choked, unchoked.contains(&stats.peer)) {
                (true, true) => changes.unchoke.push(stats.peer),
                (false, false) => changes.choke.push(stats.peer),
                _ => {}
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    use crate::test_clock::origin as epoch;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ago(now: Instant, s: u64) -> Instant {
        now.checked_sub(secs(s)).unwrap()
    }

    fn peer(key: usize, t0: Instant, rate: f64) -> PeerStats {
        PeerStats {
            peer: PeerKey(key),
            interested: true,
            choked: true,
            download_rate: rate,
            upload_rate: 0.0,
            downloaded: 0,
            wants_from_us: 100,
            connected_at: t0,
            can_download_since: None,
            last_block_at: None,
        }
    }

    /// Peers `0..givers` sent us blocks (rate 1000 + key); the rest never did.
    fn givers_and_others(t0: Instant, givers: usize, all: usize) -> Vec<PeerStats> {
        (0..all)
            .map(|i| {
                let gave = i < givers;
                PeerStats {
                    downloaded: if gave { 1 << 20 } else { 0 },
                    ..peer(i, t0, if gave { 1000.0 + i as f64 } else { 0.0 })
                }
            })
            .collect()
    }

    /// Applies `changes` to `peers` as the torrent would.
    fn apply(peers: &mut [PeerStats], changes: &ChokeChanges) {
        for p in peers {
            if changes.unchoke.contains(&p.peer) {
                assert!(p.choked);
                p.choked = false;
            }
            if changes.choke.contains(&p.peer) {
                assert!(!p.choked);
                p.choked = true;
            }
        }
    }

    fn unchoked(peers: &[PeerStats]) -> Vec<PeerKey> {
        peers.iter().filter(|p| !p.choked).map(|p| p.peer).collect()
    }

    #[test]
    fn best_downloaders_get_the_regular_slots() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 1);
        let mut peers: Vec<PeerStats> = (0..8).map(|i| peer(i, t0, i as f64 * 1000.0)).collect();
        peers[7].interested = false;
        let changes = choker.rechoke(t0 + secs(100), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        assert_eq!(open.len(), 4);
        // 7 is not interested: 6, 5, 4 are the best; the optimistic one is another.
        for key in [6, 5, 4] {
            assert!(open.contains(&PeerKey(key)));
        }
        let optimistic = choker.optimistic().unwrap();
        assert!(optimistic.0 < 4);
        assert!(open.contains(&optimistic));
    }

    #[test]
    fn snubbed_peers_lose_their_regular_slot() {
        let t0 = epoch();
        let now = t0 + secs(200);
        let mut choker = Choker::new(ChokerConfig::default(), 1);
        let mut peers: Vec<PeerStats> = (0..6).map(|i| peer(i, t0, 100.0 + i as f64)).collect();
        for p in &mut peers[3..] {
            // Fast on paper, but nothing for 61 s while they let us download.
            p.download_rate = 1e6;
            p.can_download_since = Some(ago(now, 120));
            p.last_block_at = Some(ago(now, 61));
        }
        // Peer 2 unchoked us 70 s ago but sent a block 10 s ago: not snubbed.
        peers[2].can_download_since = Some(ago(now, 70));
        peers[2].last_block_at = Some(ago(now, 10));
        assert!(choker.is_snubbed(now, &peers[3]));
        assert!(!choker.is_snubbed(now, &peers[2]));
        assert!(!choker.is_snubbed(ago(now, 2), &peers[3]));
        let changes = choker.rechoke(now, false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        for key in [0, 1, 2] {
            assert!(open.contains(&PeerKey(key)));
        }
        assert_eq!(
            open.iter().filter(|k| k.0 >= 3).count(),
            1,
            "only the optimistic one"
        );
    }

    #[test]
    fn optimistic_unchoke_rotates_every_30_seconds() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 5);
        let mut peers: Vec<PeerStats> = (0..10).map(|i| peer(i, t0, 50.0)).collect();
        let mut holders = Vec::new();
        for round in 0..30u64 {
            let now = t0 + secs(100 + round * 10);
            let changes = choker.rechoke(now, false, &peers);
            apply(&mut peers, &changes);
            assert!(unchoked(&peers).len() <= 4);
            holders.push(choker.optimistic().unwrap());
        }
        // Held for exactly three rechokes (30 s), then a different peer.
        for chunk in holders.chunks(3) {
            assert!(chunk.iter().all(|&h| h == chunk[0]), "{holders:?}");
        }
        for pair in holders.chunks(3).collect::<Vec<_>>().windows(2) {
            assert_ne!(pair[0][0], pair[1][0]);
        }
        let distinct: HashSet<_> = holders.iter().collect();
        assert!(distinct.len() >= 3, "{distinct:?}");
    }

    #[test]
    fn new_peers_are_three_times_as_likely_to_be_optimistic() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 11);
        let rounds = 3000u64;
        let mut counts: HashMap<PeerKey, u32> = HashMap::new();
        for round in 0..rounds {
            let now = t0 + secs(1000 + round * 31);
            // Peers 0 and 1 always just connected; 2..10 are old.
            let peers: Vec<PeerStats> = (0..10)
                .map(|i| {
                    let connected = if i < 2 { ago(now, 5) } else { t0 };
                    PeerStats {
                        connected_at: connected,
                        ..peer(i, t0, 0.0)
                    }
                })
                .collect();
            // slots = 1: only the optimistic slot, so every rechoke rotates it.
            choker.config.slots = 1;
            choker.rechoke(now, false, &peers);
            *counts.entry(choker.optimistic().unwrap()).or_default() += 1;
        }
        let new = f64::from(counts[&PeerKey(0)] + counts[&PeerKey(1)]) / 2.0;
        let old = f64::from((2..10).map(|i| counts[&PeerKey(i)]).sum::<u32>()) / 8.0;
        let ratio = new / old;
        assert!(
            (2.3..4.0).contains(&ratio),
            "new/old ratio {ratio}, counts {counts:?}"
        );
    }

    #[test]
    fn seeding_gives_every_leecher_a_turn() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 2);
        let mut peers: Vec<PeerStats> = (0..12).map(|i| peer(i, t0, 0.0)).collect();
        let mut turns: HashMap<PeerKey, u32> = HashMap::new();
        for round in 0..60u64 {
            let now = t0 + secs(100 + round * 10);
            let changes = choker.rechoke(now, true, &peers);
            apply(&mut peers, &changes);
            assert!(unchoked(&peers).len() <= 4);
            for p in &mut peers {
                // Unchoked peers download from us, the others not at all.
                p.upload_rate = if p.choked { 0.0 } else { 1e5 + p.peer.0 as f64 };
                if !p.choked {
                    *turns.entry(p.peer).or_default() += 1;
                }
            }
        }
        assert_eq!(turns.len(), 12, "{turns:?}");
        let (min, max) = (turns.values().min().unwrap(), turns.values().max().unwrap());
        // Regular turns rotate round-robin; the random optimistic slot adds noise.
        assert!(*max <= 2 * *min, "unfair turns {turns:?}");
    }

    #[test]
    fn a_lost_optimistic_unchoke_goes_to_a_regular_peer_until_the_period_ends() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 9);
        // 0..3 upload to us, 3..10 never do.
        let mut peers: Vec<PeerStats> = (0..10)
            .map(|i| peer(i, t0, if i < 3 { 1000.0 } else { 0.0 }))
            .collect();
        let start = t0 + secs(100);
        let changes = choker.rechoke(start, false, &peers);
        apply(&mut peers, &changes);
        let first = choker.optimistic().expect("an optimistic unchoke");
        assert!(first.0 >= 3, "{first:?}");
        // The holder got what it wanted; peer 3 now uploads a little.
        peers[first.0].interested = false;
        peers[3].download_rate = 10.0;
        peers[3].downloaded = 16_384;
        let mid = start + secs(10);
        let changes = choker.rechoke(mid, false, &peers);
        apply(&mut peers, &changes);
        assert_eq!(choker.optimistic(), None, "not refilled mid-period");
        let mut open = unchoked(&peers);
        open.sort_unstable();
        let expected = if first.0 == 3 { 4 } else { 3 };
        let best: Vec<PeerKey> = [0, 1, 2, 3]
            .into_iter()
            .chain([expected])
            .filter(|&k| k != first.0)
            .take(4)
            .map(PeerKey)
            .collect();
        assert_eq!(open, best, "the freed slot goes by download rate");
        // Once the period is over a new optimistic peer is drawn.
        let end = start + secs(30);
        let changes = choker.rechoke(end, false, &peers);
        apply(&mut peers, &changes);
        let second = choker.optimistic().expect("a new optimistic unchoke");
        assert!(second.0 >= 3 && second != first, "{second:?}");
        // Three regular slots, a giver slot for peer 3 (it sent us a
        // block), and the optimistic one.
        assert!(!peers[3].choked);
        assert_eq!(unchoked(&peers).len(), 5);
    }

    #[test]
    fn filling_free_slots_between_rounds_never_turns_the_optimistic_period_over() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 3);
        // Five givers leave six of the eleven regular and giver slots free.
        let mut peers = givers_and_others(t0, 5, 20);
        let start = t0 + secs(100);
        let changes = choker.rechoke(start, false, &peers);
        apply(&mut peers, &changes);
        let holder = choker.optimistic().expect("an optimistic unchoke");
        assert!(holder.0 >= 5, "{holder:?}");
        // After the period, a slot fill between rounds (a peer that sent
        // us a block became interested) keeps the holder and chokes nobody:
        // every choked peer that never sent a block is masked there, so a
        // turnover would leave the slot empty until the next period.
        let newcomer = (5..20).find(|&k| PeerKey(k) != holder).unwrap();
        peers[newcomer].downloaded = 16_384;
        let later = start + secs(35);
        let unchoke = choker.fill_free_slots(later, false, &peers);
        assert_eq!(unchoke, vec![PeerKey(newcomer)]);
        assert_eq!(choker.optimistic(), Some(holder));
        // The next round turns it over.
        let changes = choker.rechoke(start + secs(40), false, &peers);
        let next = choker.optimistic().expect("a new optimistic unchoke");
        assert_ne!(next, holder);
        assert!(changes.unchoke.contains(&next) || !peers[next.0].choked);
    }

    #[test]
    fn a_leecher_with_nobody_interested_starts_no_optimistic_period() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 4);
        let mut peers = givers_and_others(t0, 11, 14);
        for p in &mut peers {
            p.interested = false;
        }
        let changes = choker.rechoke(t0 + secs(1), false, &peers);
        apply(&mut peers, &changes);
        assert_eq!(choker.optimistic(), None);
        // Ten seconds on, everyone is interested: eleven givers fill the
        // regular and giver slots and one of the others is drawn at once,
        // not 30 s after the empty start.
        for p in &mut peers {
            p.interested = true;
        }
        let changes = choker.rechoke(t0 + secs(11), false, &peers);
        apply(&mut peers, &changes);
        let holder = choker.optimistic().expect("an optimistic unchoke");
        assert!(holder.0 >= 11, "{holder:?}");
        assert_eq!(unchoked(&peers).len(), 12);
    }

    #[test]
    fn seeds_serve_peers_that_gave_before_peers_that_never_did() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 4);
        let mut peers: Vec<PeerStats> = (0..12).map(|i| peer(i, t0, 0.0)).collect();
        for p in &mut peers[8..] {
            p.downloaded = 1_000_000;
        }
        for round in 0..12u64 {
            let now = t0 + secs(100 + round * 10);
            let changes = choker.rechoke(now, true, &peers);
            apply(&mut peers, &changes);
            let regular: Vec<PeerKey> = unchoked(&peers)
                .into_iter()
                .filter(|&k| Some(k) != choker.optimistic())
                .collect();
            assert_eq!(regular.len(), 3);
            assert!(
                regular.iter().all(|k| k.0 >= 8),
                "round {round}: {regular:?}"
            );
        }
    }

    #[test]
    fn a_partner_wanting_little_ranks_below_slower_peers_wanting_more() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 6);
        // Peer 0 uploads fastest but lacks only 2 of our pieces (a
        // tit-for-tat partner holding what we hold); 1..4 are slower and
        // lack many; 4 and 5 upload nothing.
        let mut peers: Vec<PeerStats> = (0..6)
            .map(|i| {
                let rate = match i {
                    0 => 1000.0,
                    1..=3 => 800.0 - i as f64,
                    _ => 0.0,
                };
                PeerStats {
                    wants_from_us: if i == 0 { 2 } else { 100 },
                    ..peer(i, t0, rate)
                }
            })
            .collect();
        let changes = choker.rechoke(t0 + secs(100), false, &peers);
        apply(&mut peers, &changes);
        let optimistic = choker.optimistic().expect("an optimistic unchoke");
        let mut regular: Vec<usize> = unchoked(&peers)
            .into_iter()
            .filter(|&k| k != optimistic)
            .map(|k| k.0)
            .collect();
        regular.sort_unstable();
        assert_eq!(
            regular,
            [1, 2, 3],
            "the slots go to the peers that want more"
        );
        // Wanting as much as the others, it is first again.
        peers[0].wants_from_us = WANTS_FOR_A_FULL_SLOT;
        let changes = choker.rechoke(t0 + secs(110), false, &peers);
        apply(&mut peers, &changes);
        assert!(!peers[0].choked);
        assert_eq!(
            unchoked(&peers).len(),
            4,
            "three regular slots and the optimistic one"
        );
    }

    #[test]
    fn slots_left_idle_by_peers_wanting_little_go_to_the_next_up_to_twice_the_slots() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 8);
        // 0..4 upload to us fast but each lacks 4 of our pieces (an eighth
        // of a slot); 4 and 5 upload less and lack many; 6..10 upload
        // nothing.
        let mut peers: Vec<PeerStats> = (0..10)
            .map(|i| {
                let (rate, wants) = match i {
                    0..=3 => (1000.0, 4),
                    4 | 5 => (500.0, 100),
                    _ => (0.0, 100),
                };
                PeerStats {
                    wants_from_us: wants,
                    downloaded: if rate > 0.0 { 1 << 20 } else { 0 },
                    ..peer(i, t0, rate)
                }
            })
            .collect();
        let changes = choker.rechoke(t0 + secs(100), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        // 4 and 5 take two whole slots; the third is shared by 0..4, each
        // using an eighth of it, up to twice the three regular slots.
        for key in 0..6 {
            assert!(open.contains(&PeerKey(key)), "{key}: {open:?}");
        }
        assert_eq!(open.len(), 7, "six regular and the optimistic: {open:?}");
        let optimistic = choker.optimistic().expect("an optimistic unchoke");
        assert!(optimistic.0 >= 6, "{optimistic:?}");
        // Peers that upload nothing take whole slots: with 0..4 gone, 4
        // and 5 and one of them fill the three regular slots.
        for p in &mut peers[..4] {
            p.interested = false;
        }
        let changes = choker.rechoke(t0 + secs(110), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        assert_eq!(open.len(), 4, "{open:?}");
        assert!(open.contains(&PeerKey(4)) && open.contains(&PeerKey(5)));
        // Without lending (a session's global slots): never beyond `slots`.
        for p in &mut peers[..4] {
            p.interested = true;
        }
        choker.set_lend_idle_slots(false);
        let changes = choker.rechoke(t0 + secs(120), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        assert_eq!(open.len(), 4, "{open:?}");
        assert!(open.contains(&PeerKey(4)) && open.contains(&PeerKey(5)));
    }

    #[test]
    fn free_riders_are_never_lent_a_share_of_a_slot() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 12);
        // 0..4 upload to us but each lacks 4 of our pieces: 2.5 of the 3
        // regular slots stay idle. 4 sent us blocks before but nothing
        // now; 5..10 never sent us a block (free riders, or newcomers).
        let mut peers: Vec<PeerStats> = (0..10)
            .map(|i| {
                let (rate, wants, downloaded) = match i {
                    0..=3 => (1000.0, 4, 1 << 20),
                    4 => (0.0, 100, 1 << 20),
                    _ => (0.0, 100, 0),
                };
                PeerStats {
                    wants_from_us: wants,
                    downloaded,
                    ..peer(i, t0, rate)
                }
            })
            .collect();
        let changes = choker.rechoke(t0 + secs(100), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        for key in 0..5 {
            assert!(open.contains(&PeerKey(key)), "{key}: {open:?}");
        }
        // The rest of the idle share stays idle: of 5..10 only the
        // optimistic unchoke.
        let optimistic = choker.optimistic().expect("an optimistic unchoke");
        assert!(optimistic.0 >= 5, "{optimistic:?}");
        assert_eq!(open.len(), 6, "five regular and the optimistic: {open:?}");
        // Within the regular slots a peer that never sent us a block still
        // gets a whole slot (a newcomer has nothing to give yet): with
        // only peer 0 uploading, 0 and two of 5..10 hold the three.
        for p in &mut peers[1..5] {
            p.interested = false;
        }
        let changes = choker.rechoke(t0 + secs(110), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        assert!(open.contains(&PeerKey(0)), "{open:?}");
        assert_eq!(open.len(), 4, "three regular and the optimistic: {open:?}");
    }

    #[test]
    fn peers_that_gave_fill_the_giver_slots() {
        let t0 = epoch();
        let mut choker = Choker::new(ChokerConfig::default(), 5);
        assert_eq!(choker.giver_slots(), 2 * 4);
        // 0..14 upload to us (13 fastest) and want much of ours; 14..20
        // never sent us a block.
        let mut peers = givers_and_others(t0, 14, 20);
        let changes = choker.rechoke(t0 + secs(100), false, &peers);
        apply(&mut peers, &changes);
        let open = unchoked(&peers);
        // Three regular and eight giver slots: the eleven fastest givers.
        for key in 3..14 {
            assert!(open.contains(&PeerKey(key)), "{key}: {open:?}");
        }
        assert_eq!(open.len(), 12, "eleven and the optimistic: {open:?}");
        let optimistic = choker.optimistic().expect("an optimistic unchoke");
        assert!(optimistic.0 < 3 || optimistic.0 >= 14, "{optimistic:?}");
        // Without lending (a session's global slots): no giver slot.
        choker.set_lend_idle_slots(false);
        assert_eq!(choker.giver_slots(), 0);
        let changes = choker.rechoke(t0 + secs(110), false, &peers);
        apply(&mut peers, &changes);
        assert_eq!(unchoked(&peers).len(), 4);
    }

    #[test]
    fn zero_slots_chokes_everyone() {
        let t0 = epoch();
        let mut choker = Choker::new(
            ChokerConfig {
                slots: 0,
                ..ChokerConfig::default()
            },
            1,
        );
        let mut peers: Vec<PeerStats> = (0..3).map(|i| peer(i, t0, 1.0)).collect();
        peers[0].choked = false;
        let changes = choker.rechoke(t0, false, &peers);
        assert_eq!(
            changes,
            ChokeChanges {
                unchoke: vec![],
                choke: vec![PeerKey(0)]
            }
        );
    }

    proptest! {
        /// Whatever the stats, never more unchoked than slots (when
        /// leeching: twice the slots, and more than slots only while an
        /// unchoked peer wants little from us), only interested ones, and
        /// the changes only flip peers that need flipping.
        #[test]
        fn never_more_than_slots(
            slots in 0usize..6,
            seeding in any::<bool>(),
            rounds in proptest::collection::vec(
                proptest::collection::vec((any::<bool>(), 0u32..1000, 0u32..1000, 0u64..200, any::<bool>(), 0u32..64), 12),
                1..20),
        ) {
            let t0 = epoch();
            let mut choker = Choker::new(ChokerConfig { slots, ..ChokerConfig::default() }, 3);
            let mut peers: Vec<PeerStats> = (0..12).map(|i| peer(i, t0, 0.0)).collect();
            for (round, stats) in rounds.iter().enumerate() {
                let now = t0 + secs(300 + round as u64 * 10);
                for (p, &(interested, down, up, quiet, can, wants)) in peers.iter_mut().zip(stats) {
                    p.interested = interested;
                    p.wants_from_us = wants;
                    p.download_rate = f64::from(down);
                    p.upload_rate = f64::from(up);
                    p.can_download_since = can.then_some(ago(now, 200));
                    p.last_block_at = Some(ago(now, quiet));
                }
                let changes = choker.rechoke(now, seeding, &peers);
                for key in &changes.unchoke {
                    prop_assert!(peers[key.0].choked);
                }
                for key in &changes.choke {
                    prop_assert!(!peers[key.0].choked);
                }
                apply(&mut peers, &changes);
                let open = unchoked(&peers);
                let wanting_little = open
                    .iter()
                    .any(|k| peers[k.0].wants_from_us < WANTS_FOR_A_FULL_SLOT);
                if seeding || !wanting_little {
                    prop_assert!(open.len() <= slots);
                } else {
                    prop_assert!(open.len() <= 2 * slots);
                }
                prop_assert!(open.iter().all(|k| peers[k.0].interested));
                let interested = peers.iter().filter(|p| p.interested).count();
                // Slots are used when there are interested peers to fill them.
                if slots > 0 && interested > 0 {
                    prop_assert!(!open.is_empty());
                }
                if !seeding {
                    let regular = open.iter().filter(|&&k| Some(k) != choker.optimistic());
                    for k in regular {
                        prop_assert!(!choker.is_snubbed(now, &peers[k.0]));
                    }
                }
            }
        }
    }
}
