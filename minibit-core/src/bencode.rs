//! One bounded, non-recursive bencode scanner (BEP 3 "bencoding") for every
//! parser of untrusted bencode: extension payloads (BEP 10, 11, 9), tracker
//! responses, `.torrent` files.
//!
//! [`value_end`] walks one value with an explicit stack of at most
//! [`Limits::max_depth`] entries, checks it is well formed (integers are
//! `i<optional ->digits e`, strings `<digits>:<bytes>` within the input,
//! dictionary keys are strings, every key has a value) and at most
//! [`Limits::max_len`] bytes long, and returns where it ends. It allocates
//! nothing but that stack and never recurses, so the recursive decoder
//! (serde_bencode) may then be run on the span safely.

/// Bounds of a scan.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest list/dictionary nesting, counting the outermost container as 1.
    pub max_depth: usize,
    /// Longest value, bytes.
    pub max_len: usize,
}

/// Why a value was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Lists and dictionaries nest deeper than [`Limits::max_depth`].
    #[error("bencode nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The value is longer than [`Limits::max_len`] bytes.
    #[error("bencoded value longer than {max} bytes")]
    TooLong {
        /// The limit, bytes.
        max: usize,
    },
    /// Not well-formed bencode.
    #[error("malformed bencode at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

fn malformed(offset: usize, reason: &'static str) -> ScanError {
    ScanError::Malformed { offset, reason }
}

/// One open container of the scan.
struct Frame {
    dict: bool,
    /// In a dictionary: the next item is a key.
    want_key: bool,
}

/// The end (exclusive offset) of the one bencoded value that starts at
/// `input[start]`; bytes after it are not looked at.
///
/// # Errors
/// [`ScanError::TooDeep`], [`ScanError::TooLong`] (checked as the scan
/// goes, so a long input is not read past the limit),
/// [`ScanError::Malformed`] (with the offset in `input`).
pub fn value_end(input: &[u8], start: usize, limits: Limits) -> Result<usize, ScanError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = start;
    loop {
        if pos - start > limits.max_len {
            return Err(ScanError::TooLong {
                max: limits.max_len,
            });
        }
        let byte = *input
            .get(pos)
            .ok_or_else(|| malformed(pos, "unexpected end of input"))?;
        if let Some(top) = stack.last_mut() {
            if byte == b'e' {
                if top.dict && !top.want_key {
                    return Err(malformed(pos, "dictionary key without a value"));
                }
                stack.pop();
                pos += 1;
                if stack.is_empty() {
                    break;
                }
                value_done(&mut stack);
                continue;
            }
            if top.dict && top.want_key {
                if !byte.is_ascii_digit() {
                    return Err(malformed(pos, "dictionary key is not a string"));
                }
                pos = string_end(input, pos)?;
                top.want_key = false;
                continue;
            }
        }
        match byte {
            b'l' | b'd' => {
                if stack.len() == limits.max_depth {
                    return Err(ScanError::TooDeep {
                        max: limits.max_depth,
                    });
                }
                stack.push(Frame {
                    dict: byte == b'd',
                    want_key: true,
                });
                pos += 1;
                continue;
            }
            b'i' => pos = int_end(input, pos)?,
            b'0'..=b'9' => pos = string_end(input, pos)?,
            _ => return Err(malformed(pos, "not the start of a value")),
        }
        if stack.is_empty() {
            break;
        }
        value_done(&mut stack);
    }
    if pos - start > limits.max_len {
        return Err(ScanError::TooLong {
            max: limits.max_len,
        });
    }
    Ok(pos)
}

/// A value of the innermost container is complete.
fn value_done(stack: &mut [Frame]) {
    if let Some(top) = stack.last_mut() {
        if top.dict {
            top.want_key = true;
        }
    }
}

/// The end of the byte string whose length prefix starts at `pos`.
///
/// # Errors
/// [`ScanError::Malformed`]: no `:`, a bad length, or a string running
/// past the end of `input`.
pub fn string_end(input: &[u8], pos: usize) -> Result<usize, ScanError> {
    let colon = input[pos..]
        .iter()
        .position(|&b| b == b':')
        .map(|i| pos + i)
        .ok_or_else(|| malformed(pos, "string length without `:`"))?;
    let digits = &input[pos..colon];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed(pos, "bad string length"));
    }
    let length = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or_else(|| malformed(pos, "string length too large"))?;
    (colon + 1)
        .checked_add(length)
        .filter(|&end| end <= input.len())
        .ok_or_else(|| malformed(pos, "string runs past the end of the input"))
}

/// The end of the integer whose `i` is at `pos`.
fn int_end(input: &[u8], pos: usize) -> Result<usize, ScanError> {
    let e = input[pos..]
        .iter()
        .position(|&b| b == b'e')
        .map(|i| pos + i)
        .ok_or_else(|| malformed(pos, "integer without `e`"))?;
    let body = &input[pos + 1..e];
    let digits = body.strip_prefix(b"-").unwrap_or(body);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed(pos, "bad integer"));
    }
    Ok(e + 1)
}

#[cfg(test)]
mod tests;
