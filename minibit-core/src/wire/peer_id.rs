//! Peer ids (BEP 3; minibit's own follows BEP 20's Azureus style).

/// A 20-byte peer id (BEP 3; minibit's form follows BEP 20: `-MB0001-` + 12 random bytes).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

impl std::fmt::Debug for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PeerId({})",
            String::from_utf8_lossy(&self.0).escape_debug()
        )
    }
}

/// minibit's BEP 20 client prefix: client code `MB`, version 0.0.0.1.
const MINIBIT_PREFIX: &[u8; 8] = b"-MB0001-";

/// The characters random bytes are mapped to, so ids stay printable and URL-safe.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Azureus-style client codes (BEP 20) minibit can name.
const CLIENTS: &[(&[u8; 2], &str)] = &[
    (b"AZ", "Azureus"),
    (b"BC", "BitComet"),
    (b"BT", "BitTorrent"),
    (b"DE", "Deluge"),
    (b"KT", "KTorrent"),
    (b"LT", "libtorrent"),
    (b"lt", "libTorrent"),
    (b"MB", "minibit"),
    (b"qB", "qBittorrent"),
    (b"TR", "Transmission"),
    (b"UT", "µTorrent"),
    (b"UM", "µTorrent Mac"),
    (b"WW", "WebTorrent"),
];

impl PeerId {
    /// minibit's peer id (BEP 20 Azureus style): `-MB0001-` followed by the
    /// 12 caller-supplied random bytes, each mapped to one of 62 alphanumeric
    /// characters (about 71 bits of randomness). The core has no OS
    /// randomness: draw `random` from the seeded RNG or the OS in the driver.
    pub fn generate(random: [u8; 12]) -> PeerId {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(MINIBIT_PREFIX);
        for (dst, byte) in id[8..].iter_mut().zip(random) {
            *dst = ALPHABET[usize::from(byte) % ALPHABET.len()];
        }
        PeerId(id)
    }

    /// Best-effort client name and version from an Azureus-style id
    /// (BEP 20: `-`, two-letter client code, four version characters, `-`),
    /// e.g. `-TR3000-` gives `"Transmission 3.00"` and `-qB4250-` gives
    /// `"qBittorrent 4.2.5"`. Unknown codes are shown raw. `None` when the id
    /// is not Azureus-style. The BEP 10 `v` key is the more reliable source.
    pub fn client_name(&self) -> Option<String> {
        let id = &self.0;
        let code = [id[1], id[2]];
        let version = &id[3..7];
        let azureus = id[0] == b'-'
            && id[7] == b'-'
            && code.iter().all(u8::is_ascii_alphabetic)
            && version.iter().all(u8::is_ascii_alphanumeric);
        if !azureus {
            return None;
        }
        let name = CLIENTS.iter().find(|(c, _)| **c == code).map_or_else(
            || String::from_utf8_lossy(&code).into_owned(),
            |(_, n)| (*n).to_owned(),
        );
        let v: Vec<char> = version.iter().map(|&b| char::from(b)).collect();
        let version = if &code == b"TR" {
            // Transmission: major digit, two minor digits, then a build marker.
            format!("{}.{}{}", v[0], v[1], v[2])
        } else {
            let mut parts = v.clone();
            while parts.len() > 2 && parts.last() == Some(&'0') {
                parts.pop();
            }
            parts
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(".")
        };
        Some(format!("{name} {version}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_has_prefix_and_printable_tail() {
        let id = PeerId::generate([0, 1, 61, 62, 255, 128, 7, 8, 9, 10, 11, 12]);
        assert_eq!(&id.0[..8], b"-MB0001-");
        assert!(id.0[8..].iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(id.0[8], b'0');
        assert_eq!(id.0[10], b'z');
        assert_eq!(id.0[11], b'0');
        assert_ne!(id, PeerId::generate([1; 12]));
    }

    #[test]
    fn client_names() {
        let name = |s: &[u8; 20]| PeerId(*s).client_name();
        assert_eq!(
            name(b"-TR3000-abcdefghijkl").as_deref(),
            Some("Transmission 3.00")
        );
        assert_eq!(
            name(b"-TR294Z-abcdefghijkl").as_deref(),
            Some("Transmission 2.94")
        );
        assert_eq!(
            name(b"-qB4250-abcdefghijkl").as_deref(),
            Some("qBittorrent 4.2.5")
        );
        assert_eq!(
            name(b"-LT2000-abcdefghijkl").as_deref(),
            Some("libtorrent 2.0")
        );
        assert_eq!(name(b"-XX1234-abcdefghijkl").as_deref(), Some("XX 1.2.3.4"));
        assert_eq!(
            PeerId::generate([9; 12]).client_name().as_deref(),
            Some("minibit 0.0.0.1")
        );
        assert_eq!(name(b"M7-2-2--abcdefghijkl"), None);
        assert_eq!(name(b"A2-1-18-8-bcdefghijk"), None);
    }
}
