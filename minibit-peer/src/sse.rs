//! Decoder of a server-sent event stream (`text/event-stream`, the
//! WHATWG HTML standard's "event stream interpretation"): bytes in as they
//! arrive, whole events out. Lines end with LF, CRLF or CR; `event:` names
//! the event, `data:` lines are joined with LF, a blank line dispatches,
//! lines starting with `:` are comments (keep-alives). `id:` and `retry:`
//! are ignored. A leaf module.

/// Longest line, and longest event data, accepted, bytes: a server sending
/// more without a line end (or a blank line) is refused rather than
/// buffered without limit.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when there was none.
    pub event: String,
    /// The `data:` lines joined with LF.
    pub data: String,
}

/// A line or an event's data longer than [`MAX_LINE_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("event stream line or event longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

/// Turns chunks of an event stream into events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The current line so far.
    line: Vec<u8>,
    /// The last byte was a CR (a following LF is part of the same line end).
    after_cr: bool,
    event: String,
    data: Option<String>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `chunk`; returns the events it completes, in order.
    ///
    /// # Errors
    /// [`LineTooLong`]; the decoder must not be used afterwards.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut events = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    events.extend(self.line_ended(&String::from_utf8_lossy(&line))?);
                }
                _ if self.line.len() >= MAX_LINE_BYTES => return Err(LineTooLong),
                _ => self.line.push(byte),
            }
        }
        Ok(events)
    }

    fn line_ended(&mut self, line: &str) -> Result<Option<SseEvent>, LineTooLong> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let Some(data) = self.data.take() else {
                return Ok(None);
            };
            return Ok(Some(SseEvent {
                event: if event.is_empty() {
                    "message".to_owned()
                } else {
                    event
                },
                data,
            }));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => match &mut self.data {
                Some(data) if data.len() + value.len() >= MAX_LINE_BYTES => {
                    return Err(LineTooLong);
                }
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_are_dispatched_at_blank_lines_whatever_the_chunking() {
        let stream = b":\n\nevent: publish\ndata: {\"a\":1}\n\n: keep-alive\r\n\r\ndata:x\r\ndata: y\r\rid: 3\nevent:remove\ndata\n\n";
        let expected = [
            event("publish", "{\"a\":1}"),
            event("message", "x\ny"),
            event("remove", ""),
        ];
        for size in [1, 2, 3, 7, stream.len()] {
            let mut decoder = SseDecoder::new();
            let mut events = Vec::new();
            for chunk in stream.chunks(size) {
                events.extend(decoder.push(chunk).unwrap());
            }
            assert_eq!(events, expected, "chunks of {size}");
        }
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_dispatched() {
        let mut decoder = SseDecoder::new();
        assert!(
            decoder
                .push(b"event: publish\ndata: 1\n")
                .unwrap()
                .is_empty()
        );
        assert_eq!(decoder.push(b"\n").unwrap(), [event("publish", "1")]);
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut decoder = SseDecoder::new();
        let line = format!("data: {}\n", "x".repeat(1000));
        let refused = (0..=MAX_LINE_BYTES / 1000).any(|_| decoder.push(line.as_bytes()).is_err());
        assert!(refused);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut decoder = SseDecoder::new();
        let chunk = vec![b'x'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=MAX_LINE_BYTES / chunk.len() {
            result = decoder.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }
}
