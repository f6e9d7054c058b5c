//! `train_config.json` as PHT-meDIC 2.0.5 reads and writes it (a pydantic v1 model).

pub(crate) use crate::codec::{parse_key, unhex, unhex_n};
use crate::error::Rejection;
use crate::keys::PublicKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// An id that is an integer or a string (`Union[int, str]` in the reference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A JSON integer.
    Int(i64),
    /// A JSON string.
    Str(String),
}

impl Id {
    /// The string the reference's `str()` gives after pydantic has coerced the value: a string
    /// that Python's `int()` accepts becomes that integer's decimal form.
    pub fn python_str(&self) -> String {
        match self {
            Id::Int(i) => i.to_string(),
            Id::Str(s) => python_int_form(s).unwrap_or_else(|| s.clone()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.python_str())
    }
}

/// Python's `int(s)` for ASCII input: optional surrounding white space, a sign, digits with
/// single underscores between them. Returns the canonical decimal string.
fn python_int_form(s: &str) -> Option<String> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let plain: String = digits.chars().filter(|c| *c != '_').collect();
    let trimmed = plain.trim_start_matches('0');
    let body = if trimmed.is_empty() { "0" } else { trimmed };
    Some(if neg && body != "0" {
        format!("-{body}")
    } else {
        body.to_string()
    })
}

/// `source`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
}

/// `creator`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Creator {
    pub id: Id,
    pub rsa_public_key: String,
    #[serde(default)]
    pub paillier_public_key: Option<Value>,
    #[serde(default)]
    pub encrypted_key: Option<String>,
}

/// `route[i].signature`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[allow(missing_docs)]
pub struct StopSignature {
    pub digest: String,
    pub signature: String,
}

/// `route[i]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RouteEntry {
    pub station: Id,
    pub eco_system: String,
    pub rsa_public_key: String,
    pub index: i64,
    #[serde(default)]
    pub signature: Option<StopSignature>,
    #[serde(default)]
    pub encrypted_key: Option<String>,
}

/// `build`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Build {
    pub signature: String,
    pub rsa_public_key: String,
}

/// The whole configuration, fields in the reference's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LegacyConfig {
    pub source: Source,
    pub creator: Creator,
    pub proposal_id: Id,
    #[serde(rename = "@id")]
    pub id: String,
    #[serde(rename = "@context", default)]
    pub context: Option<Value>,
    pub session_id: String,
    pub route: Vec<RouteEntry>,
    pub file_list: Vec<String>,
    pub hash: String,
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(default)]
    pub result_hash: Option<String>,
    #[serde(default)]
    pub result_signature: Option<String>,
}

impl LegacyConfig {
    /// Parses and checks the shape of a configuration.
    pub fn parse(bytes: &[u8]) -> Result<Self, Rejection> {
        let c: LegacyConfig =
            serde_json::from_slice(bytes).map_err(|e| Rejection::ConfigSchema(e.to_string()))?;
        for (i, stop) in c.route.iter().enumerate() {
            if !matches!(stop.eco_system.as_str(), "tue" | "padme") {
                return Err(Rejection::ConfigSchema(format!(
                    "route[{i}].eco_system must be tue or padme"
                )));
            }
        }
        unhex_n("session_id", &c.session_id, 64)?;
        unhex_n("hash", &c.hash, 64)?;
        Ok(c)
    }

    /// Serialises as the reference does (`indent=2`).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serialises");
        v.push(b'\n');
        v
    }

    /// The route sorted by index, checked to be exactly 0..n with unique station ids.
    pub fn ordered_route(&self) -> Result<Vec<&RouteEntry>, Rejection> {
        let mut r: Vec<&RouteEntry> = self.route.iter().collect();
        r.sort_by_key(|s| s.index);
        for (i, s) in r.iter().enumerate() {
            if s.index != i as i64 {
                return Err(Rejection::RouteIndices);
            }
            if r[..i]
                .iter()
                .any(|o| o.station.python_str() == s.station.python_str())
            {
                return Err(Rejection::DuplicateStation(s.station.python_str()));
            }
        }
        Ok(r)
    }

    /// Raw session id bytes.
    pub fn session_id_bytes(&self) -> Vec<u8> {
        hex::decode(&self.session_id).expect("checked at parse")
    }

    /// The creator's public key.
    pub fn creator_key(&self) -> Result<PublicKey, Rejection> {
        parse_key("creator.rsa_public_key", &self.creator.rsa_public_key)
    }

    /// Train file names relative to `pht_train`, with the reference's prefixes removed and each
    /// checked to stay inside the directory.
    pub fn train_files(&self) -> Result<Vec<String>, Rejection> {
        let mut out = Vec::with_capacity(self.file_list.len());
        for f in &self.file_list {
            let f = f.strip_prefix("./").unwrap_or(f);
            let f = f.strip_prefix("pht_train/").unwrap_or(f);
            crate::tree::check_rel_path(f)?;
            if f == "query.json" {
                continue;
            }
            if out.iter().any(|o: &String| o == f) {
                return Err(Rejection::ConfigSchema(format!(
                    "file_list names `{f}` twice"
                )));
            }
            out.push(f.to_string());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_in_the_reference_string_form() {
        assert_eq!(Id::Int(2).python_str(), "2");
        assert_eq!(Id::Str("2".into()).python_str(), "2");
        assert_eq!(Id::Str(" 007 ".into()).python_str(), "7");
        assert_eq!(Id::Str("1_000".into()).python_str(), "1000");
        assert_eq!(Id::Str("-0".into()).python_str(), "0");
        assert_eq!(Id::Str("station_1".into()).python_str(), "station_1");
        assert_eq!(Id::Str("1__0".into()).python_str(), "1__0");
        assert_eq!(Id::Str("1.0".into()).python_str(), "1.0");
    }
}
