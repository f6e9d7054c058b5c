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

/// `e` and its sources joined by `: `, each cause left out when the text before it already
/// says it. Many errors here name their cause in their own message and also hand it on as
/// their source; anyhow's `{:#}` then said it twice ("cannot read key file k.pem: No such file
/// or directory (os error 2): No such file or directory (os error 2)").
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !message.contains(&s_text) {
            message = format!("{message}: {s_text}");
        }
        src = s.source();
    }
    message
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

    #[test]
    fn a_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read key file k.pem: {source}")]
        struct Read {
            source: std::io::Error,
        }
        #[derive(Debug, thiserror::Error)]
        #[error("loading the station's key")]
        struct Load(#[source] Read);
        let e = Load(Read {
            source: std::io::Error::other("gone"),
        });
        assert_eq!(
            chain(&e),
            "loading the station's key: cannot read key file k.pem: gone"
        );
    }
}
