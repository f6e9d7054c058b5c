//! Showing untrusted text: names and messages that come from a train, an image or a registry
//! reach terminals and logs with control characters escaped (except newline and tab), so they
//! cannot move the cursor, erase a line or fake another program's output. Bidirectional-text
//! controls, which reorder what is shown, are escaped too.

/// `s` with every control character other than `\n` and `\t`, and every bidirectional
/// formatting character, replaced by its `\u{…}` escape.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        );
        if (c.is_control() && c != '\n' && c != '\t') || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_shown_not_interpreted() {
        assert_eq!(escape("a\tb\nc"), "a\tb\nc");
        assert_eq!(escape("x\r\u{1b}[2K"), "x\\u{d}\\u{1b}[2K");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
    }
}
