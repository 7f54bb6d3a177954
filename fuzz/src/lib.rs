//! Shared helpers for the fuzz targets in `fuzz_targets/`.

/// Reads fuzzer-chosen parameters off the front of an input.
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps the raw fuzzer input.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// The next byte, or 0 once the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes as a big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Splits the rest of the input the way a socket might deliver it: one
    /// byte picks 1-16 reads, the next `reads - 1` bytes the lengths of all
    /// but the last read (0-255 bytes each), and the last read takes what is
    /// left. Returns the whole stream and its reads (which concatenate to it).
    #[must_use]
    pub fn stream_in_reads(mut self) -> (&'a [u8], Vec<&'a [u8]>) {
        let reads = usize::from(self.byte() % 16) + 1;
        let lengths: Vec<usize> = (1..reads).map(|_| usize::from(self.byte())).collect();
        let stream = self.rest;
        let mut rest = stream;
        let mut pieces = Vec::with_capacity(reads);
        for len in lengths {
            let (read, tail) = rest.split_at(len.min(rest.len()));
            pieces.push(read);
            rest = tail;
        }
        pieces.push(rest);
        (stream, pieces)
    }
}
