//! The ids a native train names: its own, its creator's and its stations'. They end up in
//! image tags, labels, file names, audit records and terminal output, so they are restricted to
//! characters that are safe in all of those, and checked wherever a configuration is read or
//! made: a station refuses what `train create` would, with the same message.
//!
//! An id is 1–128 characters of `A`–`Z`, `a`–`z`, `0`–`9`, `.`, `_` and `-`, starts with a
//! letter or digit, and holds no `..`. That is a subset of Docker's tag grammar, so a station id
//! is its own image tag. (Legacy trains keep PHT-meDIC's ids, compared in their Python form.)

use crate::error::Rejection;

/// The longest id: Docker's limit for a tag.
pub const MAX_LEN: usize = 128;

/// Checks `id`, the value of `field`, against the id grammar.
pub fn check(field: &str, id: &str) -> Result<(), Rejection> {
    let reason = if id.is_empty() {
        Some("it is empty")
    } else if id.len() > MAX_LEN {
        Some("it is longer than 128 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("it holds a character other than A-Z a-z 0-9 . _ -")
    } else if !id.as_bytes()[0].is_ascii_alphanumeric() {
        Some("it does not start with a letter or digit")
    } else if id.contains("..") {
        Some("it holds `..`")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Rejection::BadId {
            field: field.to_string(),
            // Debug form: a newline or escape sequence in an id is shown, never interpreted.
            id: format!("{id:?}"),
            reason: reason.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tag_safe_ids_and_refuses_the_rest() {
        for ok in ["s1", "hospital-a", "Station_2.eu", "0", &"a".repeat(128)] {
            check("id", ok).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("st\n1", "character"),
            (" st1", "character"),
            ("st1 ", "character"),
            ("a..b", "`..`"),
            ("..", "start"),
            ("-x", "start"),
            (".hidden", "start"),
            ("a/b", "character"),
            ("a:b", "character"),
            ("\u{1b}[2Kpushed", "character"),
            (&"a".repeat(129), "longer"),
        ] {
            let e = check("train.route[0].id", bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
            assert!(!e.to_string().contains('\n') && !e.to_string().contains('\u{1b}'));
        }
    }
}
