//! From bytes to a validated [`Metainfo`].
use serde_bytes::ByteBuf;
use sha1::{Digest, Sha1};

use super::error::{MetainfoError, PathError};
use super::path::{check_no_clashes, component_from_bytes};
use super::raw::{RawFile, RawInfo, RawOuter};
use super::{Extras, FileEntry, Info, InfoHash, MAX_TORRENT_SIZE, Metainfo, scan};
use crate::piece::{Layout, MAX_PIECE_LENGTH};

fn decode_error(error: &serde_bencode::Error) -> MetainfoError {
    MetainfoError::Decode(error.to_string())
}

/// See [`Metainfo::from_bytes`].
pub fn metainfo(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    if bytes.len() > MAX_TORRENT_SIZE {
        return Err(MetainfoError::TooLarge { size: bytes.len() });
    }
    let span = scan::info_span(bytes)?;
    let info_bytes = bytes[span.value.clone()].to_vec();
    let raw_info: RawInfo = serde_bencode::from_bytes(&info_bytes).map_err(|e| decode_error(&e))?;
    let info = info(raw_info)?;
    let outer: RawOuter =
        serde_bencode::from_bytes(&span.outer_without_info(bytes)).map_err(|e| decode_error(&e))?;
    let lengths: Vec<u64> = info.files.iter().map(|f| f.length).collect();
    let layout = Layout::new(u64::from(info.piece_length), &lengths)?;
    if info.pieces.len() != layout.piece_count() as usize {
        return Err(MetainfoError::PieceCountMismatch {
            expected: layout.piece_count(),
            actual: info.pieces.len(),
        });
    }
    Ok(Metainfo {
        extras: extras(outer),
        info,
        info_hash: InfoHash(Sha1::digest(&info_bytes).into()),
        info_bytes,
        layout,
    })
}

fn text(bytes: ByteBuf) -> String {
    String::from_utf8(bytes.into_vec())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Informational keys: non-UTF-8 text is kept lossily rather than refused.
fn extras(raw: RawOuter) -> Extras {
    Extras {
        announce: raw.announce.map(text),
        announce_list: raw
            .announce_list
            .unwrap_or_default()
            .into_iter()
            .map(|tier| tier.into_iter().map(text).collect())
            .collect(),
        comment: raw.comment.map(text),
        created_by: raw.created_by.map(text),
        creation_date: raw.creation_date,
    }
}

fn length(raw: i64) -> Result<u64, MetainfoError> {
    u64::try_from(raw).map_err(|_| MetainfoError::NegativeLength(raw))
}

fn file(raw: &RawFile) -> Result<FileEntry, MetainfoError> {
    if raw.path.is_empty() {
        return Err(PathError::NoComponents.into());
    }
    let path = raw
        .path
        .iter()
        .map(|c| component_from_bytes(c))
        .collect::<Result<_, _>>()?;
    Ok(FileEntry {
        path,
        length: length(raw.length)?,
    })
}

fn info(raw: RawInfo) -> Result<Info, MetainfoError> {
    let piece_length = u32::try_from(raw.piece_length)
        .ok()
        .filter(|&p| p > 0 && p <= MAX_PIECE_LENGTH)
        .ok_or(MetainfoError::BadPieceLength(raw.piece_length))?;
    if raw.pieces.is_empty() {
        return Err(MetainfoError::NoPieces);
    }
    if raw.pieces.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(raw.pieces.len()));
    }
    let pieces = raw
        .pieces
        .chunks_exact(20)
        .map(|c| c.try_into().expect("chunks of 20 bytes"))
        .collect();
    let name = component_from_bytes(&raw.name)?;
    let (files, multi_file) = match (raw.length, raw.files) {
        (Some(_), Some(_)) => return Err(MetainfoError::BothLengthAndFiles),
        (None, None) => return Err(MetainfoError::NoLengthOrFiles),
        (Some(len), None) => {
            let single = FileEntry {
                path: vec![name.clone()],
                length: length(len)?,
            };
            (vec![single], false)
        }
        (None, Some(raw_files)) => {
            if raw_files.is_empty() {
                return Err(MetainfoError::EmptyFileList);
            }
            let files: Vec<FileEntry> = raw_files.iter().map(file).collect::<Result<_, _>>()?;
            check_no_clashes(files.iter().map(|f| f.path.as_slice()))?;
            (files, true)
        }
    };
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        private: raw.private == Some(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::LayoutError;

    /// `n` fake piece hashes as a bencoded string.
    fn pieces(n: usize) -> String {
        format!("{}:{}", 20 * n, "h".repeat(20 * n))
    }

    fn torrent(info: &str) -> Vec<u8> {
        format!("d8:announce14:http://t/a/ann4:info{info}e").into_bytes()
    }

    fn single(name: &str, length: &str, piece_length: &str, hashes: &str) -> Vec<u8> {
        torrent(&format!(
            "d6:length{length}4:name{}:{name}12:piece length{piece_length}6:pieces{hashes}e",
            name.len()
        ))
    }

    fn multi(paths: &[&[&str]]) -> Vec<u8> {
        let files = paths
            .iter()
            .map(|path| {
                let comps = path
                    .iter()
                    .map(|c| format!("{}:{c}", c.len()))
                    .collect::<Vec<_>>()
                    .concat();
                format!("d6:lengthi10e4:pathl{comps}ee")
            })
            .collect::<Vec<_>>()
            .concat();
        let count = (paths.len() * 10).div_ceil(16);
        torrent(&format!(
            "d5:filesl{files}e4:name3:dir12:piece lengthi16e6:pieces{}e",
            pieces(count)
        ))
    }

    fn parse(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        Metainfo::from_bytes(bytes)
    }

    #[test]
    fn single_file_torrent_parses() {
        let bytes = single("a.bin", "i100e", "i64e", &pieces(2));
        let m = parse(&bytes).unwrap();
        assert_eq!(m.announce(), Some("http://t/a/ann"));
        assert_eq!(m.info().name(), "a.bin");
        assert_eq!(m.info().piece_length(), 64);
        assert_eq!(m.info().pieces().len(), 2);
        assert_eq!(m.total_length(), 100);
        assert_eq!(m.layout().piece_count(), 2);
        assert!(!m.is_multi_file());
        assert!(!m.info().private());
        assert_eq!(m.relative_path(0), std::path::PathBuf::from("a.bin"));
        assert_eq!(
            m.piece_hash(m.layout().piece_index(1).unwrap()),
            &[b'h'; 20]
        );
    }

    #[test]
    fn outer_keys_around_info_are_read_whatever_the_info_key_spelling() {
        let info = format!(
            "d6:lengthi5e4:name1:x12:piece lengthi16e6:pieces{}e",
            pieces(1)
        );
        for key in ["4:info", "04:info"] {
            let bytes = format!(
                "d8:announce3:a/b7:comment2:hi{key}{info}8:url-listl3:u/ve13:creation datei7ee"
            );
            let m = parse(bytes.as_bytes()).unwrap();
            assert_eq!(m.announce(), Some("a/b"), "{key}");
            assert_eq!(m.comment(), Some("hi"), "{key}");
            assert_eq!(m.creation_date(), Some(7), "{key}");
            assert_eq!(m.info_bytes(), info.as_bytes(), "{key}");
        }
    }

    #[test]
    fn info_hash_covers_the_exact_bytes_even_when_not_canonical() {
        // Keys out of order and an unknown key: a re-encoding would differ.
        let info = format!(
            "d4:name1:x6:lengthi5e5:zzzzzli1ee12:piece lengthi16e6:pieces{}e",
            pieces(1)
        );
        let m = parse(&torrent(&info)).unwrap();
        assert_eq!(m.info_bytes(), info.as_bytes());
        assert_eq!(
            m.info_hash().0,
            <[u8; 20]>::from(Sha1::digest(info.as_bytes()))
        );
        // to_bytes keeps those bytes, so the info-hash survives a round trip.
        let again = parse(&m.to_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn multi_file_torrent_parses_with_unknown_keys_and_private() {
        let info = format!(
            "d5:filesld6:lengthi10e6:md5sum0:4:pathl3:sub5:a.txteed6:lengthi0e4:pathl1:beee\
             4:name3:dir12:piece lengthi16e6:pieces{}7:privatei1e6:sourcei3ee",
            pieces(1)
        );
        let bytes = format!(
            "d7:comment2:hi10:created by4:tool13:creation datei1700000000e8:encoding5:UTF-8\
             13:announce-listll1:ael1:b1:cee4:info{info}e"
        );
        let m = parse(bytes.as_bytes()).unwrap();
        assert!(m.is_multi_file());
        assert!(m.info().private());
        assert_eq!(m.comment(), Some("hi"));
        assert_eq!(m.created_by(), Some("tool"));
        assert_eq!(m.creation_date(), Some(1_700_000_000));
        assert_eq!(m.announce(), None);
        assert_eq!(
            m.announce_list(),
            [vec!["a".to_owned()], vec!["b".to_owned(), "c".to_owned()]]
        );
        assert_eq!(m.info().files().len(), 2);
        assert_eq!(m.info().files()[1].length, 0);
        assert_eq!(
            m.relative_path(0),
            std::path::Path::new("dir").join("sub").join("a.txt")
        );
        assert_eq!(m.layout().file_count(), 2);
    }

    #[test]
    fn canonical_input_is_reencoded_byte_for_byte() {
        let bytes = single("a", "i100e", "i64e", &pieces(2));
        assert_eq!(parse(&bytes).unwrap().to_bytes(), bytes);
    }

    #[test]
    fn extras_change_without_touching_the_info_hash() {
        let mut m = parse(&single("a", "i1e", "i64e", &pieces(1))).unwrap();
        let hash = m.info_hash();
        m.extras_mut().announce = Some("http://elsewhere/announce".into());
        let again = parse(&m.to_bytes()).unwrap();
        assert_eq!(again.announce(), Some("http://elsewhere/announce"));
        assert_eq!(again.info_hash(), hash);
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let huge = vec![0u8; 100_000_000];
        assert_eq!(
            parse(&huge),
            Err(MetainfoError::TooLarge { size: 100_000_000 })
        );
        let just_over = vec![b'd'; MAX_TORRENT_SIZE + 1];
        assert_eq!(
            parse(&just_over),
            Err(MetainfoError::TooLarge {
                size: MAX_TORRENT_SIZE + 1
            })
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = b"d5:extra".to_vec();
        bytes.extend(std::iter::repeat_n(b'l', 100_000));
        bytes.extend(std::iter::repeat_n(b'e', 100_001));
        assert_eq!(parse(&bytes), Err(MetainfoError::TooDeep));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse(b"le"), Err(MetainfoError::NotADictionary));
        assert_eq!(parse(b"d1:ai1ee"), Err(MetainfoError::MissingInfo));
        assert!(matches!(
            parse(b"d4:infod"),
            Err(MetainfoError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&torrent("i5e")),
            Err(MetainfoError::Decode(_))
        ));
        // `name` missing.
        let no_name = torrent(&format!(
            "d6:lengthi1e12:piece lengthi16e6:pieces{}e",
            pieces(1)
        ));
        assert!(matches!(parse(&no_name), Err(MetainfoError::Decode(_))));
        // `length` of the wrong type.
        assert!(matches!(
            parse(&single("a", "3:abc", "i16e", &pieces(1))),
            Err(MetainfoError::Decode(_))
        ));
    }

    #[test]
    fn piece_errors() {
        assert_eq!(
            parse(&single("a", "i100e", "i64e", "0:")),
            Err(MetainfoError::NoPieces)
        );
        let odd = format!("21:{}", "h".repeat(21));
        assert_eq!(
            parse(&single("a", "i100e", "i64e", &odd)),
            Err(MetainfoError::PiecesNotMultipleOf20(21))
        );
        assert_eq!(
            parse(&single("a", "i100e", "i64e", &pieces(3))),
            Err(MetainfoError::PieceCountMismatch {
                expected: 2,
                actual: 3
            })
        );
        assert_eq!(
            parse(&single("a", "i100e", "i64e", &pieces(1))),
            Err(MetainfoError::PieceCountMismatch {
                expected: 2,
                actual: 1
            })
        );
        for (raw, value) in [
            ("i0e", 0),
            ("i-16e", -16),
            ("i67108865e", 67_108_865),
            ("i99999999999e", 99_999_999_999),
        ] {
            assert_eq!(
                parse(&single("a", "i100e", raw, &pieces(1))),
                Err(MetainfoError::BadPieceLength(value))
            );
        }
        assert_eq!(
            parse(&single("a", "i0e", "i16e", &pieces(1))),
            Err(MetainfoError::Layout(LayoutError::Empty))
        );
    }

    #[test]
    fn length_errors() {
        assert_eq!(
            parse(&single("a", "i-5e", "i16e", &pieces(1))),
            Err(MetainfoError::NegativeLength(-5))
        );
        let negative_file = torrent(&format!(
            "d5:filesld6:lengthi-1e4:pathl1:aeee4:name1:d12:piece lengthi16e6:pieces{}e",
            pieces(1)
        ));
        assert_eq!(
            parse(&negative_file),
            Err(MetainfoError::NegativeLength(-1))
        );
        let both = torrent(&format!(
            "d5:filesld6:lengthi1e4:pathl1:aeee6:lengthi1e4:name1:d12:piece lengthi16e6:pieces{}e",
            pieces(1)
        ));
        assert_eq!(parse(&both), Err(MetainfoError::BothLengthAndFiles));
        let neither = torrent(&format!(
            "d4:name1:d12:piece lengthi16e6:pieces{}e",
            pieces(1)
        ));
        assert_eq!(parse(&neither), Err(MetainfoError::NoLengthOrFiles));
        let empty = torrent(&format!(
            "d5:filesle4:name1:d12:piece lengthi16e6:pieces{}e",
            pieces(1)
        ));
        assert_eq!(parse(&empty), Err(MetainfoError::EmptyFileList));
        // Two files of i64::MAX bytes need more than 2^32 pieces; three overflow u64.
        let huge = |n: usize| {
            let files = (0..n)
                .map(|i| format!("d6:lengthi9223372036854775807e4:pathl1:{i}ee"))
                .collect::<Vec<_>>()
                .concat();
            torrent(&format!(
                "d5:filesl{files}e4:name1:d12:piece lengthi16e6:pieces{}e",
                pieces(1)
            ))
        };
        assert!(matches!(
            parse(&huge(2)),
            Err(MetainfoError::Layout(LayoutError::TooManyPieces { .. }))
        ));
        assert_eq!(
            parse(&huge(3)),
            Err(MetainfoError::Layout(LayoutError::LengthOverflow))
        );
    }

    #[test]
    fn every_unsafe_name_is_refused() {
        let cases: &[(&str, PathError)] = &[
            ("", PathError::EmptyComponent),
            (".", PathError::CurrentDir),
            ("..", PathError::ParentDir),
            ("/etc", PathError::Absolute("/etc".into())),
            ("\\evil", PathError::Absolute("\\evil".into())),
            ("a/../../b", PathError::Separator("a/../../b".into())),
            ("a\\b", PathError::Separator("a\\b".into())),
            ("a\0b", PathError::Nul("a\0b".into())),
            ("C:", PathError::DrivePrefix("C:".into())),
            ("C:x", PathError::DrivePrefix("C:x".into())),
        ];
        for (name, error) in cases {
            let expected = Err(MetainfoError::UnsafePath(error.clone()));
            assert_eq!(
                parse(&single(name, "i1e", "i16e", &pieces(1))),
                expected,
                "name {name:?}"
            );
            assert_eq!(
                parse(&multi(&[&["ok", name]])),
                expected,
                "path component {name:?}"
            );
        }
        let mut not_utf8 = single("ab", "i1e", "i16e", &pieces(1));
        let at = not_utf8.windows(4).position(|w| w == b"2:ab").unwrap();
        not_utf8[at + 2] = 0xff;
        assert_eq!(
            parse(&not_utf8),
            Err(MetainfoError::UnsafePath(PathError::NotUtf8))
        );
        assert_eq!(
            parse(&multi(&[&[]])),
            Err(MetainfoError::UnsafePath(PathError::NoComponents))
        );
        assert_eq!(
            parse(&multi(&[&["a", "b"], &["a"]])),
            Err(MetainfoError::UnsafePath(PathError::Clash("a".into())))
        );
        assert_eq!(
            parse(&multi(&[&["x"], &["x"]])),
            Err(MetainfoError::UnsafePath(PathError::Clash("x".into())))
        );
        assert!(parse(&multi(&[&["a", "b"], &["a", "c"]])).is_ok());
    }
}
