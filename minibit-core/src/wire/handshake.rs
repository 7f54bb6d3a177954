//! The 68-byte handshake that opens every peer connection (BEP 3).

use bytes::{Buf, BufMut, BytesMut};

use super::{PeerId, WireError};
use crate::metainfo::InfoHash;

/// The protocol string of BEP 3, preceded on the wire by its length, 19.
const PSTR: &[u8; 19] = b"BitTorrent protocol";

/// BEP 6 fast extension: reserved byte 7, bit 0x04.
const FAST: (usize, u8) = (7, 0x04);
/// BEP 10 extension protocol: reserved byte 5, bit 0x10.
const EXTENSIONS: (usize, u8) = (5, 0x10);
/// BEP 5 DHT: reserved byte 7, bit 0x01.
const DHT: (usize, u8) = (7, 0x01);

/// The handshake that opens every peer connection (BEP 3): `19`,
/// `"BitTorrent protocol"`, 8 reserved bytes, the info-hash, the peer id.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits (BEP 6: byte 7 bit 0x04 = fast extension; BEP 10:
    /// byte 5 bit 0x10 = extension protocol; BEP 5: byte 7 bit 0x01 = DHT).
    pub reserved: [u8; 8],
    /// The torrent the connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Length of a handshake on the wire, bytes: 1 + 19 + 8 + 20 + 20.
    pub const LEN: usize = 68;

    /// A handshake with every reserved bit clear (plain BEP 3).
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    /// The same handshake announcing the BEP 6 fast extension (`reserved[7] |= 0x04`).
    #[must_use]
    pub fn with_fast(mut self) -> Self {
        self.reserved[FAST.0] |= FAST.1;
        self
    }

    /// The same handshake announcing the BEP 10 extension protocol (`reserved[5] |= 0x10`).
    #[must_use]
    pub fn with_extensions(mut self) -> Self {
        self.reserved[EXTENSIONS.0] |= EXTENSIONS.1;
        self
    }

    /// The same handshake announcing a BEP 5 DHT node (`reserved[7] |= 0x01`):
    /// the peer may expect a `port` message.
    #[must_use]
    pub fn with_dht(mut self) -> Self {
        self.reserved[DHT.0] |= DHT.1;
        self
    }

    /// Whether the sender runs a BEP 5 DHT node (`reserved[7] & 0x01`).
    pub fn supports_dht(&self) -> bool {
        self.reserved[DHT.0] & DHT.1 != 0
    }

    /// Whether the sender supports the BEP 6 fast extension (`reserved[7] & 0x04`).
    pub fn supports_fast(&self) -> bool {
        self.reserved[FAST.0] & FAST.1 != 0
    }

    /// Whether the sender supports the BEP 10 extension protocol (`reserved[5] & 0x10`).
    pub fn supports_extensions(&self) -> bool {
        self.reserved[EXTENSIONS.0] & EXTENSIONS.1 != 0
    }

    /// Appends the [`Self::LEN`]-byte wire form to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        dst.put_u8(PSTR.len() as u8);
        dst.put_slice(PSTR);
        dst.put_slice(&self.reserved);
        dst.put_slice(&self.info_hash.0);
        dst.put_slice(&self.peer_id.0);
    }

    /// Takes one handshake off the front of `buf`.
    ///
    /// Returns `Ok(None)` (after reserving room for the rest) while fewer
    /// than [`Self::LEN`] bytes are buffered; consumes exactly `LEN` bytes on
    /// success.
    ///
    /// # Errors
    /// [`WireError::HandshakePstrLen`] when the first byte is not 19 and
    /// [`WireError::HandshakePstr`] when the protocol string differs, both
    /// reported as soon as the buffered bytes show it.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>, WireError> {
        let Some(&pstrlen) = buf.first() else {
            buf.reserve(Self::LEN);
            return Ok(None);
        };
        if usize::from(pstrlen) != PSTR.len() {
            return Err(WireError::HandshakePstrLen(pstrlen));
        }
        let pstr_seen = &buf[1..buf.len().min(1 + PSTR.len())];
        if pstr_seen != &PSTR[..pstr_seen.len()] {
            return Err(WireError::HandshakePstr);
        }
        if buf.len() < Self::LEN {
            buf.reserve(Self::LEN - buf.len());
            return Ok(None);
        }
        buf.advance(1 + PSTR.len());
        let mut handshake = Self::new(InfoHash([0; 20]), PeerId([0; 20]));
        buf.copy_to_slice(&mut handshake.reserved);
        buf.copy_to_slice(&mut handshake.info_hash.0);
        buf.copy_to_slice(&mut handshake.peer_id.0);
        Ok(Some(handshake))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake::new(InfoHash([0xab; 20]), PeerId(*b"-TR3000-abcdefghijkl"))
    }

    #[test]
    fn encodes_the_bep3_layout() {
        let mut buf = BytesMut::new();
        sample().with_fast().with_extensions().encode(&mut buf);
        assert_eq!(buf.len(), Handshake::LEN);
        assert_eq!(buf[0], 19);
        assert_eq!(&buf[1..20], b"BitTorrent protocol");
        assert_eq!(&buf[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert_eq!(&buf[28..48], &[0xab; 20]);
        assert_eq!(&buf[48..68], b"-TR3000-abcdefghijkl");
    }

    #[test]
    fn reserved_bit_helpers() {
        let plain = sample();
        assert!(!plain.supports_fast() && !plain.supports_extensions());
        assert!(plain.with_fast().supports_fast());
        assert!(!plain.with_fast().supports_extensions());
        assert!(plain.with_extensions().supports_extensions());
        assert!(!plain.with_extensions().supports_fast());
        let dht = plain.with_dht();
        assert!(dht.supports_dht() && !dht.supports_fast() && !dht.supports_extensions());
        assert_eq!(dht.reserved, [0, 0, 0, 0, 0, 0, 0, 0x01]);
        assert!(!plain.with_fast().with_extensions().supports_dht());
    }

    #[test]
    fn decodes_incrementally_and_leaves_following_bytes() {
        let hs = sample().with_extensions();
        let mut wire = BytesMut::new();
        hs.encode(&mut wire);
        wire.put_slice(&[0, 0, 0, 1, 2]);
        let mut buf = BytesMut::new();
        for (i, byte) in wire.iter().enumerate().take(Handshake::LEN - 1) {
            buf.put_u8(*byte);
            assert_eq!(
                Handshake::decode(&mut buf),
                Ok(None),
                "after {} bytes",
                i + 1
            );
        }
        assert!(buf.capacity() >= Handshake::LEN);
        buf.put_slice(&wire[Handshake::LEN - 1..]);
        assert_eq!(Handshake::decode(&mut buf), Ok(Some(hs)));
        assert_eq!(&buf[..], &[0, 0, 0, 1, 2]);
    }

    #[test]
    fn rejects_bad_pstrlen_after_one_byte() {
        let mut buf = BytesMut::from(&[18u8][..]);
        assert_eq!(
            Handshake::decode(&mut buf),
            Err(WireError::HandshakePstrLen(18))
        );
    }

    #[test]
    fn rejects_bad_pstr_as_soon_as_it_differs() {
        let mut buf = BytesMut::from(&b"\x13BitTorrent"[..]);
        assert_eq!(Handshake::decode(&mut buf), Ok(None));
        buf.put_slice(b" Protocol");
        assert_eq!(Handshake::decode(&mut buf), Err(WireError::HandshakePstr));
    }
}
