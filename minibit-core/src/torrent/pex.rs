//! BEP 11 peer exchange: `ut_pex` messages over the BEP 10 extension
//! protocol. To each peer that advertised `ut_pex` we send the listen
//! addresses of the peers we are connected to, as a difference from what
//! we told it before (`added` / `dropped`), at most once per
//! [`TorrentConfig::pex_interval`](super::TorrentConfig::pex_interval); the
//! first message goes out as soon as its extended handshake arrives. What
//! a peer sends us is learned like the peers of a tracker announce.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use crate::wire::{Message, Pex, PexFlags};

use super::Torrent;
use super::types::Violation;
use super::types::{Event, PeerKey};

/// The extended message id under which we receive `ut_pex` (the `m` entry
/// of our extended handshake; 1 as in libtorrent and Transmission).
pub(super) const UT_PEX_ID: u8 = 1;

/// Most `added` contacts, and most `dropped` ones, in one message we send
/// (BEP 11: 50; libtorrent caps its first message at 50 too).
pub(super) const MAX_PEX_CONTACTS: usize = 50;

/// Most contacts learned from one received message (v4 and v6 together);
/// the rest are ignored, so no single peer fills the address book.
pub(super) const MAX_PEX_LEARNED: usize = 50;

/// Peer exchange with one peer that advertised `ut_pex`.
#[derive(Debug)]
pub(super) struct PexState {
    /// The extended message id the peer receives `ut_pex` under.
    id: u8,
    /// Listen addresses we told the peer about and did not drop since.
    advertised: BTreeSet<SocketAddr>,
    /// When the next message may go out.
    pub(super) next_at: Instant,
}

impl Torrent {
    /// `key`'s extended handshake gave `ut_pex` the id `id` (`None`: not
    /// supported or disabled). Starts the exchange with a first message at
    /// once, or stops it (BEP 10: a later handshake may disable an extension).
    pub(super) fn pex_negotiated(&mut self, now: Instant, key: PeerKey, id: Option<u8>) {
        if !self.config.pex_enabled() {
            return;
        }
        let peer = &mut self.peers[key.0];
        match (&mut peer.pex, id) {
            (Some(state), Some(id)) => state.id = id,
            (None, Some(id)) => {
                peer.pex = Some(PexState {
                    id,
                    advertised: BTreeSet::new(),
                    next_at: now,
                });
                self.send_pex(now, key);
            }
            (_, None) => peer.pex = None,
        }
    }

    /// Sends the peer exchange messages due at `now`.
    pub(super) fn send_due_pex(&mut self, now: Instant) {
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.closing && p.pex.as_ref().is_some_and(|s| s.next_at <= now))
            .map(|(_, p)| p.key)
            .collect();
        for key in due {
            self.send_pex(now, key);
        }
    }

    /// The listen addresses of the peers connected now, except `except`,
    /// with their BEP 11 flags (seed when it has every piece, reachable
    /// when we dialled it). Inbound peers that sent no `p` are left out:
    /// their source port is not one anybody can dial.
    fn pex_contacts(&self, except: PeerKey) -> BTreeMap<SocketAddr, PexFlags> {
        let pieces = self.layout.piece_count();
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing && p.key != except)
            .filter_map(|(_, p)| {
                let mut flags = 0;
                if p.has_all(pieces) {
                    flags |= PexFlags::SEED;
                }
                if p.outbound {
                    flags |= PexFlags::REACHABLE;
                }
                Some((p.listen_addr()?, PexFlags(flags)))
            })
            .collect()
    }

    /// Sends `key` the peers connected and disconnected since the last
    /// message (at most [`MAX_PEX_CONTACTS`] of each; the rest wait for the
    /// next one), nothing when nothing changed. The next message is due
    /// `pex_interval` later either way.
    fn send_pex(&mut self, now: Instant, key: PeerKey) {
        let contacts = self.pex_contacts(key);
        let interval = self.config.pex_interval;
        let peer = &mut self.peers[key.0];
        let Some(state) = peer.pex.as_mut() else {
            return;
        };
        state.next_at = now + interval;
        let added: Vec<(SocketAddr, PexFlags)> = contacts
            .iter()
            .filter(|(addr, _)| !state.advertised.contains(addr))
            .take(MAX_PEX_CONTACTS)
            .map(|(&addr, &flags)| (addr, flags))
            .collect();
        let dropped: Vec<SocketAddr> = state
            .advertised
            .iter()
            .filter(|addr| !contacts.contains_key(addr))
            .take(MAX_PEX_CONTACTS)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return;
        }
        let mut pex = Pex::default();
        for &(addr, flags) in &added {
            state.advertised.insert(addr);
            match addr {
                SocketAddr::V4(v4) => pex.added.push((v4, flags)),
                SocketAddr::V6(v6) => pex.added6.push((v6, flags)),
            }
        }
        for addr in dropped {
            state.advertised.remove(&addr);
            match addr {
                SocketAddr::V4(v4) => pex.dropped.push(v4),
                SocketAddr::V6(v6) => pex.dropped6.push(v6),
            }
        }
        let message = Message::Extended {
            id: state.id,
            payload: pex.encode(),
        };
        peer.send(&mut self.out, now, message);
    }

    /// A `ut_pex` message from `key`: its `added` contacts (at most
    /// [`MAX_PEX_LEARNED`], port 0 skipped) are learned like tracker peers;
    /// `dropped` is ignored (a dial to a gone peer just fails).
    ///
    /// # Errors
    /// [`Violation::PexBeforeHandshake`] when the peer has not sent its
    /// extended handshake yet; [`Violation::Pex`] when the payload is
    /// malformed (libtorrent disconnects too: `invalid_pex_message`).
    pub(super) fn on_pex(&mut self, key: PeerKey, payload: &[u8]) -> Result<(), Violation> {
        if !self.peers[key.0].extended_handshake {
            return Err(Violation::PexBeforeHandshake);
        }
        let pex = Pex::decode(payload).map_err(Violation::Pex)?;
        let added: Vec<SocketAddr> = pex
            .added
            .iter()
            .map(|&(a, _)| SocketAddr::V4(a))
            .chain(pex.added6.iter().map(|&(a, _)| SocketAddr::V6(a)))
            .filter(|a| a.port() != 0)
            .take(MAX_PEX_LEARNED)
            .collect();
        if self.stopped {
            return Ok(());
        }
        let count = self.learn_peers(&added);
        if count > 0 {
            self.out.report(Event::PexPeersLearned { peer: key, count });
        }
        Ok(())
    }
}
