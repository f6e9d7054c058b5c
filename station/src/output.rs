//! What reaches the operator's terminal from a train. A train's output (and any name or message
//! a train controls) is shown with control characters escaped, except newline and tab: with
//! `\r` and escape sequences a train could erase the `[train]` prefix, move the cursor and
//! print a fake "pushed" line. Bidirectional-text controls, which reorder what is shown, are
//! escaped too.

use std::io::Write;

/// `s` with every control character other than `\n` and `\t`, and every bidirectional
/// formatting character, replaced by its `\u{…}` escape.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n' && c != '\t') || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The container's output, shown line by line with a prefix, escaped, and capped.
pub struct TrainOutput<W: Write> {
    out: W,
    partial: Vec<u8>,
    shown: u64,
    cap: u64,
}

impl<W: Write> TrainOutput<W> {
    /// Shows at most `cap` bytes of output on `out`.
    pub fn new(out: W, cap: u64) -> Self {
        Self {
            out,
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
            let _ = writeln!(
                self.out,
                "  [train] … output beyond {} bytes not shown",
                self.cap
            );
        }
    }

    /// Shows what is left of an unfinished line.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    fn line(&mut self, bytes: &[u8]) {
        let _ = writeln!(
            self.out,
            "  [train] {}",
            escape(&String::from_utf8_lossy(bytes))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_train_cannot_rewrite_the_station_s_lines() {
        // A carriage return and an erase-line sequence, then a fake station line.
        let attack =
            b"working\r\x1b[2K\x1b[1Apushed 127.0.0.1:5001/x@sha256:00 (0.1 s)\n\xe2\x80\xaeevil\n";
        let mut out = TrainOutput::new(Vec::new(), 1 << 20);
        out.push(&attack[..10]);
        out.push(&attack[10..]);
        out.finish();
        let shown = String::from_utf8(out.out).unwrap();
        assert!(!shown.contains('\r') && !shown.contains('\x1b') && !shown.contains('\u{202e}'));
        for line in shown.lines() {
            assert!(line.starts_with("  [train] "), "{line:?}");
        }
        assert!(shown.contains("\\u{1b}[2K"), "{shown}");
        assert!(shown.contains("\\u{d}"), "{shown}");
        assert_eq!(escape("a\tb\nc"), "a\tb\nc");
    }

    #[test]
    fn output_is_capped() {
        let mut out = TrainOutput::new(Vec::new(), 10);
        out.push(b"0123456789abcdef\nmore\n");
        let shown = String::from_utf8(out.out).unwrap();
        assert!(
            shown.contains("0123456789") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(shown.contains("beyond 10 bytes"));
    }
}
