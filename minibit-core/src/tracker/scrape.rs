//! Scrape requests and responses (BEP 48): swarm counts per info-hash.

use std::collections::{BTreeMap, HashMap};

use serde_bencode::value::Value;

use super::bencode::{self, TrackerResponseError};
use super::query::{self, MAX_SCRAPE_HASHES, QueryError};
use crate::metainfo::InfoHash;

/// `GET /scrape?info_hash=..&info_hash=..` (BEP 48).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// The torrents asked about, in query order (1 to [`MAX_SCRAPE_HASHES`]).
    pub info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// Parses the raw query string of a scrape; other parameters are ignored.
    ///
    /// # Errors
    /// No `info_hash` (this tracker does not serve a full scrape), one that
    /// is not 20 bytes, or more than [`MAX_SCRAPE_HASHES`] of them.
    pub fn parse_query(raw_query: &str) -> Result<Self, QueryError> {
        let mut info_hashes = Vec::new();
        for (name, value) in query::pairs(raw_query) {
            if &*name == b"info_hash" {
                if info_hashes.len() == MAX_SCRAPE_HASHES {
                    return Err(QueryError::TooManyHashes);
                }
                info_hashes.push(InfoHash(query::twenty_bytes("info_hash", &value)?));
            }
        }
        if info_hashes.is_empty() {
            return Err(QueryError::Missing("info_hash"));
        }
        Ok(Self { info_hashes })
    }

    /// The query string a client appends to the scrape URL after `?`.
    pub fn to_query(&self) -> String {
        self.info_hashes
            .iter()
            .map(|h| format!("info_hash={}", query::encode(&h.0)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The counts of one swarm (BEP 48).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders (`complete`).
    pub complete: u32,
    /// `completed` events ever received (`downloaded`).
    pub downloaded: u64,
    /// Leechers (`incomplete`).
    pub incomplete: u32,
}

/// A scrape response: `d5:filesd<20-byte info-hash>d8:completei..e10:downloadedi..e10:incompletei..eeee`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// Counts per info-hash.
    pub files: BTreeMap<InfoHash, ScrapeStats>,
}

impl ScrapeResponse {
    /// The bencoded response body.
    pub fn encode(&self) -> Vec<u8> {
        let files: HashMap<Vec<u8>, Value> = self
            .files
            .iter()
            .map(|(hash, s)| {
                let stats = bencode::dict([
                    ("complete", Value::Int(s.complete.into())),
                    (
                        "downloaded",
                        Value::Int(i64::try_from(s.downloaded).unwrap_or(i64::MAX)),
                    ),
                    ("incomplete", Value::Int(s.incomplete.into())),
                ]);
                (hash.0.to_vec(), stats)
            })
            .collect();
        bencode::encode(&bencode::dict([("files", Value::Dict(files))]))
    }

    /// Decodes a scrape response body (client side); missing counts are 0, unknown keys ignored.
    ///
    /// # Errors
    /// The tracker's `failure reason`, a body that is too large or not a
    /// bencoded dictionary, no `files` dictionary, a key that is not a
    /// 20-byte info-hash, or counts of the wrong type or range.
    pub fn decode(body: &[u8]) -> Result<Self, TrackerResponseError> {
        let dict = bencode::decode_dict(body)?;
        let Some(Value::Dict(entries)) = dict.get(&b"files"[..]) else {
            return Err(TrackerResponseError::MissingKey("files"));
        };
        let files = entries
            .iter()
            .map(|(hash, stats)| {
                let hash = <[u8; 20]>::try_from(hash.as_slice())
                    .map_err(|_| TrackerResponseError::BadValue("files"))?;
                let Value::Dict(stats) = stats else {
                    return Err(TrackerResponseError::BadValue("files"));
                };
                let stats = ScrapeStats {
                    complete: bencode::int(stats, "complete")?.unwrap_or(0),
                    downloaded: bencode::int(stats, "downloaded")?.unwrap_or(0),
                    incomplete: bencode::int(stats, "incomplete")?.unwrap_or(0),
                };
                Ok((InfoHash(hash), stats))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { files })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn encoding_matches_bep_48() {
        let mut files = BTreeMap::new();
        let stats = ScrapeStats {
            complete: 5,
            downloaded: 50,
            incomplete: 10,
        };
        files.insert(InfoHash([b'x'; 20]), stats);
        let body = ScrapeResponse { files }.encode();
        let want = format!(
            "d5:filesd20:{}d8:completei5e10:downloadedi50e10:incompletei10eeee",
            "x".repeat(20)
        );
        assert_eq!(body, want.as_bytes());
    }

    #[test]
    fn query_parsing_checks_count_and_length() {
        let hash = "%AA".repeat(20);
        let req = ScrapeRequest::parse_query(&format!(
            "info_hash={hash}&x=1&info_hash={}",
            "b".repeat(20)
        ))
        .unwrap();
        assert_eq!(
            req.info_hashes,
            vec![InfoHash([0xAA; 20]), InfoHash([b'b'; 20])]
        );
        assert_eq!(
            ScrapeRequest::parse_query("x=1"),
            Err(QueryError::Missing("info_hash"))
        );
        assert_eq!(
            ScrapeRequest::parse_query("info_hash=abc"),
            Err(QueryError::NotTwentyBytes {
                param: "info_hash",
                len: 3
            })
        );
        let many = vec![format!("info_hash={hash}"); MAX_SCRAPE_HASHES + 1].join("&");
        assert_eq!(
            ScrapeRequest::parse_query(&many),
            Err(QueryError::TooManyHashes)
        );
    }

    #[test]
    fn decode_rejects_bad_shapes() {
        assert_eq!(
            ScrapeResponse::decode(b"de"),
            Err(TrackerResponseError::MissingKey("files"))
        );
        assert_eq!(
            ScrapeResponse::decode(b"d5:filesd3:abcdeee"),
            Err(TrackerResponseError::BadValue("files"))
        );
        assert_eq!(
            ScrapeResponse::decode(b"d14:failure reason4:nopee"),
            Err(TrackerResponseError::Failure("nope".into()))
        );
    }

    proptest! {
        #[test]
        fn request_round_trips(hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE_HASHES)) {
            let req = ScrapeRequest { info_hashes: hashes.into_iter().map(InfoHash).collect() };
            prop_assert_eq!(ScrapeRequest::parse_query(&req.to_query()), Ok(req));
        }

        #[test]
        fn response_round_trips(files in proptest::collection::btree_map(
            any::<[u8; 20]>().prop_map(InfoHash),
            (any::<u32>(), 0..=i64::MAX as u64, any::<u32>())
                .prop_map(|(complete, downloaded, incomplete)| ScrapeStats { complete, downloaded, incomplete }),
            0..20,
        )) {
            let resp = ScrapeResponse { files };
            prop_assert_eq!(ScrapeResponse::decode(&resp.encode()), Ok(resp));
        }

        #[test]
        fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ScrapeResponse::decode(&body);
        }
    }
}
