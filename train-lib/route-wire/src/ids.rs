//! The values of the API that have rules, as types: train ids, principal ids (stations,
//! creators, admins) and manifest digests. Each is checked once, where it enters (a request,
//! a notification, a database row, an answer read by a client), and passed on as its type;
//! serde reads them through the same check, so a body with a bad id is refused as such.
//!
//! Ids follow the grammar of `docs/protocol.md`: 1–128 characters of `A-Z a-z 0-9 . _ -`,
//! starting with a letter or digit, without `..`. Ids become image tags, label values, file
//! names and log fields, so nothing else may get in.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a value is not what its type allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?}: {reason}")]
pub struct BadValue {
    /// Which kind of value.
    pub what: &'static str,
    /// The value (escaped when shown).
    pub value: String,
    /// The rule it breaks.
    pub reason: &'static str,
}

/// The longest id: Docker's limit for a tag.
pub const MAX_ID_LEN: usize = 128;

/// The id grammar's regular expression (for the OpenAPI document and for people), beside a
/// maximum length of [`MAX_ID_LEN`]: a letter or digit, then characters of `A-Z a-z 0-9 . _ -`
/// where a dot is never followed by another (no `..`). Written without a lookahead, which
/// not every JSON Schema tool reads; schemathesis sent `FRp..e` to the earlier
/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, which the service rightly refused.
pub const ID_PATTERN: &str = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$";

fn id_rule(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        Err("it is empty")
    } else if s.len() > MAX_ID_LEN {
        Err("it is longer than 128 characters")
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err("it holds a character other than A-Z a-z 0-9 . _ -")
    } else if !s.as_bytes()[0].is_ascii_alphanumeric() {
        Err("it does not start with a letter or digit")
    } else if s.contains("..") {
        Err("it holds `..`")
    } else {
        Ok(())
    }
}

fn digest_rule(s: &str) -> Result<(), &'static str> {
    match s.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(())
        }
        _ => Err("it is not `sha256:` and 64 lower-case hex digits"),
    }
}

macro_rules! checked {
    ($(#[$m:meta])* $name:ident, $what:literal, $rule:ident, $pattern:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s`.
            pub fn parse(s: &str) -> Result<Self, BadValue> {
                $rule(s).map_err(|reason| BadValue {
                    what: $what,
                    value: s.to_string(),
                    reason,
                })?;
                Ok(Self(s.to_string()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = BadValue;
            fn from_str(s: &str) -> Result<Self, BadValue> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadValue;
            fn try_from(s: String) -> Result<Self, BadValue> {
                $rule(&s).map_err(|reason| BadValue {
                    what: $what,
                    value: s.clone(),
                    reason,
                })?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, o: &str) -> bool {
                self.0 == o
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, o: &&str) -> bool {
                self.0 == *o
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, o: &String) -> bool {
                &self.0 == o
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .pattern(Some($pattern))
                    .max_length(($pattern == ID_PATTERN).then_some(MAX_ID_LEN))
                    .description(Some(concat!("a ", $what)))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

checked!(
    /// A train's id (its configuration's): an image tag at every stop.
    TrainId,
    "train id",
    id_rule,
    ID_PATTERN
);
checked!(
    /// The id of a principal: a station, a creator or an admin (one namespace, so that
    /// `ApiKey <id> <key>` names one).
    PrincipalId,
    "principal id",
    id_rule,
    ID_PATTERN
);
checked!(
    /// A manifest digest, `sha256:` and 64 lower-case hex digits.
    Digest,
    "digest",
    digest_rule,
    "^sha256:[0-9a-f]{64}$"
);

/// A station's id.
pub type StationId = PrincipalId;
/// A creator's id.
pub type CreatorId = PrincipalId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_grammar_and_serde_checks_them() {
        for ok in ["s1", "hospital-a", "Station_2.eu", "0", &"a".repeat(128)] {
            TrainId::parse(ok).unwrap();
            PrincipalId::parse(ok).unwrap();
        }
        for bad in [
            "",
            "st\n1",
            " st1",
            "a..b",
            "-x",
            ".x",
            "a/b",
            &"a".repeat(129),
        ] {
            assert!(TrainId::parse(bad).is_err(), "{bad:?}");
        }
        let e = PrincipalId::parse("a b").unwrap_err();
        assert!(e.to_string().contains("principal id \"a b\""), "{e}");
        let t: TrainId = serde_json::from_str("\"t-1\"").unwrap();
        assert_eq!(t, "t-1");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"t-1\"");
        assert!(serde_json::from_str::<TrainId>("\"../x\"").is_err());
    }

    #[test]
    fn the_openapi_pattern_says_what_the_rule_says() {
        let re = regex::Regex::new(ID_PATTERN).unwrap();
        let long = "a".repeat(MAX_ID_LEN);
        let samples = [
            "a", "A9", "a.b", "a.b.c", "a.", "a-.b", "a_.-x", "t-1.2", "a..b", "a...", ".a", "-a",
            "_a", "", "a b", "a/b", "a..", "é", "a\n", &long,
        ];
        for s in samples {
            let by_pattern = re.is_match(s) && s.len() <= MAX_ID_LEN;
            assert_eq!(by_pattern, id_rule(s).is_ok(), "{s:?}");
        }
        // Every string of up to four characters over a small alphabet.
        let alphabet = ['a', '0', '.', '_', '-', '/'];
        let mut all = vec![String::new()];
        for _ in 0..4 {
            let next: Vec<String> = all
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            for s in &next {
                assert_eq!(re.is_match(s), id_rule(s).is_ok(), "{s:?}");
            }
            all = next;
        }
    }

    #[test]
    fn digests_are_sha256_in_lower_case_hex() {
        let d = format!("sha256:{}", "ab".repeat(32));
        Digest::parse(&d).unwrap();
        for bad in [
            "sha256:00".to_string(),
            d.to_uppercase(),
            format!("sha512:{}", "ab".repeat(32)),
            format!("{d}\n"),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
