//! Property tests of the metainfo codec: draft -> bytes -> parse round
//! trips, hostile bytes never panic, and reader hashing equals in-memory hashing.

use std::io::Read;
use std::path::Component;

use minibit_core::metainfo::build::hash_reader;
use minibit_core::metainfo::path::check_no_clashes;
use minibit_core::metainfo::{Content, Draft, Extras, FileEntry, Metainfo};
use proptest::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha1::{Digest, Sha1};

fn in_memory_hashes(data: &[u8], piece_length: u32) -> Vec<[u8; 20]> {
    data.chunks(piece_length as usize)
        .map(|c| Sha1::digest(c).into())
        .collect()
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ ü漢-]{1,4}(\\.[a-z]{1,3})?"
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        (1u64..5000).prop_map(|length| Content::Single { length }),
        proptest::collection::vec((proptest::collection::vec(name(), 1..4), 0u64..3000), 1..6)
            .prop_map(|files| Content::Multi {
                files: files
                    .into_iter()
                    .map(|(path, length)| FileEntry { path, length })
                    .collect(),
            }),
    ]
}

fn extras() -> impl Strategy<Value = Extras> {
    (
        proptest::option::of("http://[a-z]{1,8}/announce"),
        proptest::collection::vec(proptest::collection::vec("udp://[a-z]{1,5}", 1..3), 0..3),
        proptest::option::of("\\PC{0,20}"),
        proptest::option::of("[a-z]{1,8} [0-9.]{1,5}"),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(announce, announce_list, comment, created_by, creation_date)| Extras {
                announce,
                announce_list,
                comment,
                created_by,
                creation_date,
            },
        )
}

/// A valid torrent, to be mutated by the fuzz-like property.
fn sample_torrent() -> Vec<u8> {
    Draft {
        name: "dir".into(),
        piece_length: 16,
        pieces: vec![[7; 20]; 2],
        content: Content::Multi {
            files: vec![
                FileEntry {
                    path: vec!["a".into(), "b.txt".into()],
                    length: 20,
                },
                FileEntry {
                    path: vec!["c".into()],
                    length: 5,
                },
            ],
        },
        private: true,
        extras: Extras {
            announce: Some("http://t/announce".into()),
            ..Extras::default()
        },
    }
    .finish()
    .unwrap()
    .to_bytes()
}

/// Whatever parsed is safe to use: every output path stays inside the folder,
/// the geometry matches the hashes, and re-encoding keeps the info-hash.
fn check_parsed(m: &Metainfo) -> Result<(), TestCaseError> {
    for file in 0..m.info().files().len() {
        let path = m.relative_path(file);
        prop_assert!(
            path.components().all(|c| matches!(c, Component::Normal(_))),
            "{path:?}"
        );
    }
    prop_assert_eq!(m.info().pieces().len(), m.layout().piece_count() as usize);
    let again = Metainfo::from_bytes(&m.to_bytes()).unwrap();
    prop_assert_eq!(again.info_hash(), m.info_hash());
    Ok(())
}

proptest! {
    #[test]
    fn draft_encode_parse_round_trip(
        name in name(),
        content in content(),
        piece_length in 1u32..3000,
        private in any::<bool>(),
        extras in extras(),
        seed in any::<u64>(),
    ) {
        let total: u64 = match &content {
            Content::Single { length } => *length,
            Content::Multi { files } => files.iter().map(|f| f.length).sum(),
        };
        prop_assume!(total > 0);
        if let Content::Multi { files } = &content {
            prop_assume!(check_no_clashes(files.iter().map(|f| f.path.as_slice())).is_ok());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pieces: Vec<[u8; 20]> = (0..total.div_ceil(u64::from(piece_length)))
            .map(|_| { let mut h = [0; 20]; rng.fill_bytes(&mut h); h })
            .collect();
        let draft = Draft { name: name.clone(), piece_length, pieces: pieces.clone(), content: content.clone(), private, extras: extras.clone() };
        let m = draft.finish().unwrap();

        prop_assert_eq!(m.info().name(), name.as_str());
        prop_assert_eq!(m.info().piece_length(), piece_length);
        prop_assert_eq!(m.info().pieces(), pieces.as_slice());
        prop_assert_eq!(m.info().private(), private);
        prop_assert_eq!(m.extras(), &extras);
        prop_assert_eq!(m.total_length(), total);
        match &content {
            Content::Single { length } => {
                prop_assert!(!m.is_multi_file());
                prop_assert_eq!(m.info().files(), &[FileEntry { path: vec![name.clone()], length: *length }]);
                prop_assert_eq!(m.relative_path(0), std::path::PathBuf::from(&name));
            }
            Content::Multi { files } => {
                prop_assert!(m.is_multi_file());
                prop_assert_eq!(m.info().files(), files.as_slice());
                for (i, f) in files.iter().enumerate() {
                    let expected: std::path::PathBuf = std::iter::once(&name).chain(&f.path).collect();
                    prop_assert_eq!(m.relative_path(i), expected);
                }
            }
        }
        let bytes = m.to_bytes();
        let parsed = Metainfo::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.to_bytes(), bytes);
        prop_assert_eq!(m.info_hash().0, <[u8; 20]>::from(Sha1::digest(m.info_bytes())));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = Metainfo::from_bytes(&bytes) {
            check_parsed(&m)?;
        }
    }

    #[test]
    fn mutated_torrents_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = sample_torrent();
        for (at, byte, kind) in edits {
            if bytes.is_empty() { break; }
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => { bytes.remove(at); }
            }
        }
        if let Ok(m) = Metainfo::from_bytes(&bytes) {
            check_parsed(&m)?;
        }
    }
}

/// Byte `i` of the generated stream: a mix of the position's bits, so no
/// two nearby pieces are alike.
fn stream_byte(i: u64) -> u8 {
    let x = (i ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (x >> 17) as u8
}

/// Yields [`stream_byte`]s in reads of seeded, irregular sizes.
struct GeneratedStream {
    sizes: ChaCha8Rng,
    position: u64,
    length: u64,
}

impl Read for GeneratedStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = (self.length - self.position) as usize;
        let want = (self.sizes.next_u32() as usize % 100_000 + 1)
            .min(buf.len())
            .min(left);
        for (offset, byte) in buf[..want].iter_mut().enumerate() {
            *byte = stream_byte(self.position + offset as u64);
        }
        self.position += want as u64;
        Ok(want)
    }
}

#[test]
fn hashing_a_generated_stream_equals_hashing_it_in_memory() {
    const LEN: u64 = 5 * 1024 * 1024 + 12_345;
    let data: Vec<u8> = (0..LEN).map(stream_byte).collect();
    for piece_length in [16 * 1024, 256 * 1024, 1024 * 1024, 100_003] {
        let stream = GeneratedStream {
            sizes: ChaCha8Rng::seed_from_u64(u64::from(piece_length)),
            position: 0,
            length: LEN,
        };
        let hashes = hash_reader(stream, piece_length).unwrap();
        assert_eq!(hashes.len() as u64, LEN.div_ceil(u64::from(piece_length)));
        assert!(
            hashes == in_memory_hashes(&data, piece_length),
            "piece length {piece_length}: hashes differ"
        );
    }
}
