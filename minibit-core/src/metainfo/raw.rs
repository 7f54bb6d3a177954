//! The bencoded shape of a `.torrent` file (BEP 3) as serde structs. Keys
//! minibit does not know are skipped when decoding; absent (`None`) fields
//! are left out when encoding, and serde_bencode sorts dictionary keys.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The top-level dictionary, without `info` (decoded on its own from the
/// exact `info` bytes).
#[derive(Debug, Deserialize, Serialize)]
pub struct RawOuter {
    pub announce: Option<ByteBuf>,
    #[serde(rename = "announce-list")]
    pub announce_list: Option<Vec<Vec<ByteBuf>>>,
    pub comment: Option<ByteBuf>,
    #[serde(rename = "created by")]
    pub created_by: Option<ByteBuf>,
    #[serde(rename = "creation date")]
    pub creation_date: Option<i64>,
}

/// The `info` dictionary.
#[derive(Debug, Deserialize, Serialize)]
pub struct RawInfo {
    /// Single-file torrents only: the file's length in bytes.
    pub length: Option<i64>,
    /// Multi-file torrents only.
    pub files: Option<Vec<RawFile>>,
    pub name: ByteBuf,
    #[serde(rename = "piece length")]
    pub piece_length: i64,
    pub pieces: ByteBuf,
    pub private: Option<i64>,
}

/// One entry of `info.files`.
#[derive(Debug, Deserialize, Serialize)]
pub struct RawFile {
    pub length: i64,
    pub path: Vec<ByteBuf>,
}
