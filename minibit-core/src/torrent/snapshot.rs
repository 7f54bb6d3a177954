//! Read-only views of a [`Torrent`] for a user interface: each connected
//! peer ([`PeerInfo`]), the availability of every piece among the peers,
//! the pieces being downloaded, and the distributed copies.

use std::net::SocketAddr;
use std::time::Instant;

use crate::bitfield::Bitfield;
use crate::piece::PieceIndex;
use crate::wire::PeerId;

use super::Torrent;
use super::peer::Peer;

/// Longest client name kept from a peer's BEP 10 `v`, in characters.
pub const MAX_CLIENT_NAME: usize = 64;

/// One connected peer as a user interface shows it (libtorrent's
/// `peer_info`, Transmission's peer list). Rates are as of the latest
/// `now` the torrent saw.
// The flags are BEP 3's four connection-state bits and a few more.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// The remote address of the connection.
    pub addr: SocketAddr,
    /// The peer id from its handshake (BEP 3).
    pub peer_id: PeerId,
    /// Its client name and version from its BEP 10 extended handshake
    /// (`v`), made printable (control characters dropped) and cut to
    /// [`MAX_CLIENT_NAME`] characters; `None` if it sent none.
    pub client: Option<String>,
    /// We dialled it (outbound); `false`: it connected to us.
    pub outbound: bool,
    /// We choke it (BEP 3 `am_choking`).
    pub am_choking: bool,
    /// We are interested in it (BEP 3 `am_interested`).
    pub am_interested: bool,
    /// It chokes us (BEP 3 `peer_choking`).
    pub peer_choking: bool,
    /// It is interested in us (BEP 3 `peer_interested`).
    pub peer_interested: bool,
    /// It is snubbed: it sent no block we asked for lately (its pipeline
    /// is down to one request).
    pub snubbed: bool,
    /// It holds our optimistic unchoke (BEP 3 choking algorithm).
    pub optimistic: bool,
    /// It has every piece (a seeder).
    pub seed: bool,
    /// Pieces it has (its bitfield and HAVEs).
    pub pieces: u32,
    /// Payload download rate from it, bytes/s.
    pub download_rate: f64,
    /// Payload upload rate to it, bytes/s.
    pub upload_rate: f64,
}

impl Torrent {
    /// Every connected peer (not being disconnected), in connection order.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        let optimistic = self.choker.optimistic();
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .map(|(_, p)| PeerInfo {
                addr: p.addr,
                peer_id: p.id,
                client: p.client.clone(),
                outbound: p.outbound,
                am_choking: p.am_choking,
                am_interested: p.am_interested,
                peer_choking: p.chokes_us,
                peer_interested: p.interested_in_us,
                snubbed: p.snubbed,
                optimistic: optimistic == Some(p.key),
                seed: is_seed(p),
                pieces: p.bitfield.count(),
                download_rate: p.download.rate(self.now),
                upload_rate: p.upload.rate(self.now),
            })
            .collect()
    }

    /// Copies of each piece among the connected peers (not counting
    /// ours), one count per piece in BEP 3 order; empty while a magnet
    /// link's metadata is unknown.
    pub fn availability(&self) -> Vec<u32> {
        (0..self.layout.piece_count())
            .map(|piece| self.picker.availability(PieceIndex::new_unchecked(piece)))
            .collect()
    }

    /// The pieces being downloaded: some block requested or received,
    /// not verified yet (one bit per piece, BEP 3 order).
    pub fn downloading(&self) -> Bitfield {
        let mut pieces = Bitfield::new(self.layout.piece_count());
        for piece in self.picker.in_progress() {
            pieces.set(piece);
        }
        pieces
    }

    /// Distributed copies as libtorrent reports them: the copies of the
    /// rarest piece among the connected peers and us, plus the fraction of
    /// pieces with more copies than that. 0.0 for a torrent of no piece.
    pub fn distributed_copies(&self) -> f64 {
        let copies: Vec<u32> = self
            .availability()
            .into_iter()
            .enumerate()
            .map(|(piece, peers)| {
                let ours = self.have.has(PieceIndex::new_unchecked(piece as u32));
                peers + u32::from(ours)
            })
            .collect();
        distributed_copies(&copies)
    }

    /// When the next regular announce is due; `None` while one is in
    /// flight, and after the torrent stopped.
    pub fn next_announce(&self) -> Option<Instant> {
        self.announce.next_regular()
    }
}

/// Whether `peer` has every piece.
fn is_seed(peer: &Peer) -> bool {
    !peer.bitfield.is_empty() && peer.bitfield.is_complete()
}

/// `min + (pieces above min) / pieces` of the per-piece `copies`
/// (libtorrent's `distributed_copies`); 0.0 for no piece.
#[allow(clippy::cast_precision_loss)] // piece counts fit an f64 exactly
pub fn distributed_copies(copies: &[u32]) -> f64 {
    let Some(&min) = copies.iter().min() else {
        return 0.0;
    };
    let above = copies.iter().filter(|&&c| c > min).count();
    f64::from(min) + above as f64 / copies.len() as f64
}

/// A peer's BEP 10 `v` made printable: control characters dropped,
/// surrounding white space trimmed, at most [`MAX_CLIENT_NAME`] characters.
pub(super) fn client_name(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_CLIENT_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributed_copies_counts_the_rarest_piece_and_the_fraction_above() {
        assert!((distributed_copies(&[]) - 0.0).abs() < f64::EPSILON);
        assert!((distributed_copies(&[1, 1, 1, 1]) - 1.0).abs() < f64::EPSILON);
        assert!((distributed_copies(&[1, 2, 2, 3]) - 1.75).abs() < f64::EPSILON);
        assert!((distributed_copies(&[0, 5, 5, 5]) - 0.75).abs() < f64::EPSILON);
    }

    #[test]
    fn a_client_name_is_printable_and_bounded() {
        assert_eq!(client_name("qBittorrent 4.6.2"), "qBittorrent 4.6.2");
        assert_eq!(client_name(" evil\u{1b}[31m\r\nname\0 "), "evil[31mname");
        let long = "x".repeat(1000);
        assert_eq!(client_name(&long).chars().count(), MAX_CLIENT_NAME);
        assert_eq!(
            client_name("é".repeat(100).as_str()).chars().count(),
            MAX_CLIENT_NAME
        );
    }
}
