//! Assembling a torrent's info dictionary from `ut_metadata` pieces (BEP 9),
//! sans IO: which piece to ask which peer, accepting pieces, and the SHA-1
//! check against the info-hash once every piece is in.
//!
//! The caller creates a [`MetadataFetch`] from the `metadata_size` of a
//! peer's extended handshake (refused above [`MAX_METADATA_SIZE`] before
//! anything is allocated), asks [`MetadataFetch::next_request`] what to
//! request from each peer that supports `ut_metadata`, and feeds back
//! data ([`MetadataFetch::received`]), rejects and lost peers. A piece of
//! the wrong size, an index out of range or a different `total_size` is an
//! error naming that peer's lie; metadata that does not hash to the
//! info-hash is thrown away and the peers that contributed to it are
//! named, so the caller can drop them and fetch again from others.

use std::collections::BTreeSet;

use sha1::{Digest, Sha1};

use crate::metainfo::InfoHash;
use crate::wire::{MAX_METADATA_SIZE, METADATA_PIECE_LEN, metadata_piece_count};

/// Why a piece or a size from a peer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// `metadata_size` / `total_size` is 0 or above [`MAX_METADATA_SIZE`].
    #[error("metadata size {0} is not 1-{MAX_METADATA_SIZE} bytes")]
    BadSize(u64),
    /// A data message whose `total_size` differs from the size being fetched.
    #[error("peer says the metadata is {got} bytes, expected {expected}")]
    SizeMismatch {
        /// The size being fetched, bytes.
        expected: u32,
        /// The size the peer sent, bytes.
        got: u32,
    },
    /// A piece index at or past the piece count.
    #[error("metadata piece {piece} out of range (there are {count})")]
    OutOfRange {
        /// The index received.
        piece: u32,
        /// The number of pieces.
        count: u32,
    },
    /// A piece whose length is not 16 KiB (or the remainder, for the last).
    #[error("metadata piece {piece} is {got} bytes, expected {expected}")]
    WrongLength {
        /// The piece index.
        piece: u32,
        /// Its expected length, bytes.
        expected: usize,
        /// The length received, bytes.
        got: usize,
    },
}

/// Where one metadata piece stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot<P> {
    Missing,
    Requested(P),
    Have(P),
}

/// What [`MetadataFetch::received`] leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress<P> {
    /// More pieces are needed.
    Pending,
    /// Every piece is in and the SHA-1 matches: the bencoded info dictionary.
    Complete(Vec<u8>),
    /// Every piece is in but the SHA-1 does not match: all pieces were
    /// dropped (the fetch starts over) and these peers, which sent them,
    /// are suspects.
    HashMismatch(BTreeSet<P>),
}

/// The fetch of one info dictionary from any number of peers `P`.
#[derive(Clone, Debug)]
pub struct MetadataFetch<P> {
    info_hash: InfoHash,
    size: u32,
    slots: Vec<Slot<P>>,
    buffer: Vec<u8>,
}

impl<P: Copy + Ord> MetadataFetch<P> {
    /// A fetch of `size` bytes (the `metadata_size` a peer announced) that
    /// must hash to `info_hash`.
    ///
    /// # Errors
    /// [`FetchError::BadSize`] for 0 or more than [`MAX_METADATA_SIZE`]
    /// bytes, before anything is allocated.
    pub fn new(info_hash: InfoHash, size: u64) -> Result<Self, FetchError> {
        let size = u32::try_from(size)
            .ok()
            .filter(|&s| s > 0 && s as usize <= MAX_METADATA_SIZE)
            .ok_or(FetchError::BadSize(size))?;
        Ok(Self {
            info_hash,
            size,
            slots: vec![Slot::Missing; metadata_piece_count(size as usize)],
            buffer: vec![0; size as usize],
        })
    }

    /// The size of the info dictionary, bytes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// How many pieces (16 KiB each, the last one shorter).
    pub fn piece_count(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The length of piece `piece`, bytes.
    fn piece_len(&self, piece: usize) -> usize {
        let start = piece * METADATA_PIECE_LEN;
        (self.size as usize - start).min(METADATA_PIECE_LEN)
    }

    /// The next piece to request from `peer`: the lowest one nobody has
    /// been asked for, now marked as asked from `peer`; `None` when every
    /// missing piece is already asked for.
    pub fn next_request(&mut self, peer: P) -> Option<u32> {
        let piece = self.slots.iter().position(|s| *s == Slot::Missing)?;
        self.slots[piece] = Slot::Requested(peer);
        Some(piece as u32)
    }

    /// `peer` rejected `piece` (or will not send it): it may be asked of
    /// someone else. Pieces not asked of `peer` are left alone.
    pub fn rejected(&mut self, peer: P, piece: u32) {
        if let Some(slot) = self.slots.get_mut(piece as usize) {
            if *slot == Slot::Requested(peer) {
                *slot = Slot::Missing;
            }
        }
    }

    /// `peer` is gone: the pieces asked of it may be asked of others
    /// (pieces it already sent are kept).
    pub fn peer_gone(&mut self, peer: P) {
        for slot in &mut self.slots {
            if *slot == Slot::Requested(peer) {
                *slot = Slot::Missing;
            }
        }
    }

    /// `peer` sent `data` as piece `piece` of metadata it says is
    /// `total_size` bytes. A piece already held is ignored; an unrequested
    /// piece that is missing is taken.
    ///
    /// # Errors
    /// [`FetchError::SizeMismatch`], [`FetchError::OutOfRange`],
    /// [`FetchError::WrongLength`]: the peer lied; nothing was stored and
    /// the piece may be asked of someone else.
    pub fn received(
        &mut self,
        peer: P,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<Progress<P>, FetchError> {
        let index = piece as usize;
        let result = self.check(piece, total_size, data.len());
        if result.is_err() {
            self.rejected(peer, piece);
        }
        result?;
        if matches!(self.slots[index], Slot::Have(_)) {
            return Ok(Progress::Pending);
        }
        let start = index * METADATA_PIECE_LEN;
        self.buffer[start..start + data.len()].copy_from_slice(data);
        self.slots[index] = Slot::Have(peer);
        if !self.slots.iter().all(|s| matches!(s, Slot::Have(_))) {
            return Ok(Progress::Pending);
        }
        if Sha1::digest(&self.buffer).as_slice() == self.info_hash.0 {
            return Ok(Progress::Complete(std::mem::take(&mut self.buffer)));
        }
        let suspects = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Have(p) => Some(*p),
                _ => None,
            })
            .collect();
        self.slots.fill(Slot::Missing);
        Ok(Progress::HashMismatch(suspects))
    }

    fn check(&self, piece: u32, total_size: u32, len: usize) -> Result<(), FetchError> {
        if total_size != self.size {
            return Err(FetchError::SizeMismatch {
                expected: self.size,
                got: total_size,
            });
        }
        if piece >= self.piece_count() {
            return Err(FetchError::OutOfRange {
                piece,
                count: self.piece_count(),
            });
        }
        let expected = self.piece_len(piece as usize);
        if len != expected {
            return Err(FetchError::WrongLength {
                piece,
                expected,
                got: len,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
