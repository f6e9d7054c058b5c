//! A Server-Sent Events reader over a streamed response: frames split at blank lines, the
//! `id:`, `event:` and `data:` fields read, comments (keep-alives) skipped. The last id seen is
//! kept so that a caller reconnects with `Last-Event-ID` and misses nothing.

use crate::EventView;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

/// Why a feed ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// The connection broke or the service closed it; reconnect with [`EventStream::last_id`].
    #[error("the event feed ended: {0}; reconnect with Last-Event-ID")]
    Broken(String),
    /// An event's data is not an event view.
    #[error("an event of the feed is not understood: {0}")]
    Decode(String),
    /// One frame grew past 1 MiB: not a feed of this service.
    #[error("an event of the feed is over 1 MiB; is this a PHT route service?")]
    TooLarge,
}

/// A frame larger than this is refused: events are small (details are capped at 2 KiB).
const MAX_FRAME: usize = 1 << 20;

/// The events of one feed, in order.
pub struct EventStream {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    last_id: i64,
}

impl EventStream {
    pub(super) fn new(resp: reqwest::Response, last_id: i64) -> Self {
        Self {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            last_id,
        }
    }

    /// The id of the last event returned (what to resume after).
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// The next event; `Err(Broken)` when the stream ends.
    pub async fn next(&mut self) -> Result<EventView, SseError> {
        loop {
            if let Some(frame) = take_frame(&mut self.buf) {
                if let Some(ev) = parse_frame(&frame)? {
                    self.last_id = self.last_id.max(ev.id);
                    return Ok(ev);
                }
                continue;
            }
            if self.buf.len() > MAX_FRAME {
                return Err(SseError::TooLarge);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(SseError::Broken(e.to_string())),
                None => return Err(SseError::Broken("closed by the service".into())),
            }
        }
    }
}

/// The events `bytes` (a feed's body) hold, read frame by frame as [`EventStream`] reads them:
/// for fuzzing and tests of the reader.
#[doc(hidden)]
pub fn frames(bytes: &[u8]) -> Vec<Result<Option<EventView>, SseError>> {
    let mut buf = bytes.to_vec();
    let mut out = Vec::new();
    while let Some(frame) = take_frame(&mut buf) {
        out.push(parse_frame(&frame));
    }
    out
}

/// The first complete frame (up to a blank line), removed from `buf`.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let normalised = |b: &[u8]| -> Option<(usize, usize)> {
        (0..b.len()).find_map(|i| {
            if b[i..].starts_with(b"\n\n") {
                Some((i, 2))
            } else if b[i..].starts_with(b"\r\n\r\n") {
                Some((i, 4))
            } else {
                None
            }
        })
    };
    let (at, len) = normalised(buf)?;
    let frame = buf[..at].to_vec();
    buf.drain(..at + len);
    Some(frame)
}

/// The event a frame carries; `None` for a comment-only frame (a keep-alive).
fn parse_frame(frame: &[u8]) -> Result<Option<EventView>, SseError> {
    let text = String::from_utf8_lossy(frame);
    let mut data = String::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&data)
        .map(Some)
        .map_err(|e| SseError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_blank_lines_and_keep_alives_are_skipped() {
        let mut buf = b": keep-alive\n\nid: 7\nevent: delivered\ndata: {\"id\":7,\"kind\":\"delivered\",\"detail\":\"d\",\"at\":1}\n\nid: 8\nda".to_vec();
        let f = take_frame(&mut buf).unwrap();
        assert!(parse_frame(&f).unwrap().is_none());
        let f = take_frame(&mut buf).unwrap();
        let ev = parse_frame(&f).unwrap().unwrap();
        assert_eq!((ev.id, ev.kind.as_str()), (7, "delivered"));
        assert!(take_frame(&mut buf).is_none(), "an unfinished frame waits");
        assert_eq!(buf, b"id: 8\nda");
    }

    #[test]
    fn data_that_is_not_an_event_is_refused() {
        let err = parse_frame(b"data: {\"nope\":1}").unwrap_err();
        assert!(matches!(err, SseError::Decode(_)), "{err}");
    }
}
