//! `.torrent` metainfo (BEP 3 "metainfo files").
//!
//! SKELETON: [`InfoHash`] is the agreed interface; parsing, building and
//! validation are filled in by the metainfo work (see the foundation issue).

/// SHA-1 of the exact bencoded bytes of a torrent's `info` dictionary, as
/// they stand in the `.torrent` file (BEP 3); names the torrent everywhere.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// Lower-case hex, 40 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl std::fmt::Display for InfoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}
