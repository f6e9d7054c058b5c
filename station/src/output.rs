//! A train's output, made safe to show: split into lines, capped (`limits.log_bytes`), and with
//! control characters escaped ([`escape`]) except newline and tab. With `\r` and escape
//! sequences a train could otherwise erase the `[train]` prefix, move the cursor and print a
//! fake "pushed" line.

pub use train_lib::text::escape;

/// The container's output as escaped lines, at most `cap` bytes of it, handed to a sink.
pub struct TrainOutput<F: FnMut(&str)> {
    sink: F,
    partial: Vec<u8>,
    shown: u64,
    cap: u64,
}

impl<F: FnMut(&str)> TrainOutput<F> {
    /// Hands at most `cap` bytes of output, line by line, to `sink`.
    pub fn new(cap: u64, sink: F) -> Self {
        Self {
            sink,
            partial: Vec::new(),
            shown: 0,
            cap,
        }
    }

    /// Takes the next chunk of output.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.shown >= self.cap {
            return;
        }
        let take = ((self.cap - self.shown) as usize).min(chunk.len());
        self.shown += take as u64;
        self.partial.extend_from_slice(&chunk[..take]);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            self.line(&line[..line.len() - 1]);
        }
        if self.shown >= self.cap {
            self.finish();
            (self.sink)(&format!("… output beyond {} bytes not shown", self.cap));
        }
    }

    /// Hands over what is left of an unfinished line.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    fn line(&mut self, bytes: &[u8]) {
        (self.sink)(&escape(&String::from_utf8_lossy(bytes)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(cap: u64, chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut out = TrainOutput::new(cap, |l: &str| lines.push(l.to_string()));
        for c in chunks {
            out.push(c);
        }
        out.finish();
        drop(out);
        lines
    }

    #[test]
    fn a_train_cannot_rewrite_the_station_s_lines() {
        // A carriage return and an erase-line sequence, then a fake station line.
        let attack =
            b"working\r\x1b[2K\x1b[1Apushed 127.0.0.1:5001/x@sha256:00 (0.1 s)\n\xe2\x80\xaeevil\n";
        let lines = shown(1 << 20, &[&attack[..10], &attack[10..]]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        for l in &lines {
            assert!(!l.contains('\r') && !l.contains('\x1b') && !l.contains('\u{202e}'));
        }
        assert!(lines[0].contains("\\u{1b}[2K"), "{lines:?}");
        assert!(lines[0].contains("\\u{d}"), "{lines:?}");
        assert_eq!(escape("a\tb\nc"), "a\tb\nc");
    }

    #[test]
    fn output_is_capped() {
        let lines = shown(10, &[b"0123456789abcdef\nmore\n"]);
        assert_eq!(lines[0], "0123456789");
        assert!(lines[1].contains("beyond 10 bytes"), "{lines:?}");
        assert_eq!(lines.len(), 2);
    }
}
