//! Key pinning. A station operator lists the creator, builder and station keys it trusts; once a
//! role has pins, a key that appears only in a train's configuration is refused for that role.

use super::PublicKey;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// Which party a key speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The train's creator.
    Creator,
    /// The party that built the train image.
    Builder,
    /// A station on the route.
    Station,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::Creator => "creator",
            KeyRole::Builder => "builder",
            KeyRole::Station => "station",
        })
    }
}

/// Errors from reading a trust file or from a key that is not pinned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The trust file could not be read or parsed.
    #[error("trust file {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinnedId {
    id: String,
    key: String,
}

/// A builder pin: a bare fingerprint, or one with a name for people (`station trust add`
/// writes names; the check uses only the key).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BuilderPin {
    Key(String),
    Named(PinnedId),
}

impl BuilderPin {
    fn key(&self) -> &String {
        match self {
            BuilderPin::Key(k) => k,
            BuilderPin::Named(p) => &p.key,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    creators: Vec<PinnedId>,
    #[serde(default)]
    builders: Vec<BuilderPin>,
    #[serde(default)]
    stations: Vec<PinnedId>,
}

/// The keys a station trusts. The default store has no pins and trusts the configuration.
#[derive(Debug, Default)]
pub struct TrustStore {
    file: TrustFile,
}

impl TrustStore {
    /// Reads a JSON trust file:
    /// `{"creators":[{"id":"alice","key":"sha256:…"}],"builders":["sha256:…"],"stations":[{"id":"s1","key":"sha256:…"}]}`.
    pub fn from_file(path: &Path) -> Result<Self, TrustError> {
        let err = |detail: String| TrustError::File {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let file: TrustFile = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
        for k in file
            .creators
            .iter()
            .map(|p| &p.key)
            .chain(file.stations.iter().map(|p| &p.key))
            .chain(file.builders.iter().map(BuilderPin::key))
        {
            if !is_fingerprint(k) {
                return Err(err(format!(
                    "`{k}` is not a key fingerprint (sha256:<64 hex>)"
                )));
            }
        }
        Ok(Self { file })
    }

    /// A store pinning exactly these creators and stations (`(id, fingerprint)`; fingerprints
    /// as [`PublicKey::fingerprint`] prints them), with builders unpinned: what a party that
    /// registered the keys itself (the route service) checks a train against.
    pub fn pinned(creators: &[(&str, &str)], stations: &[(&str, &str)]) -> Self {
        let pins = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(id, key)| PinnedId {
                    id: id.to_string(),
                    key: key.to_string(),
                })
                .collect()
        };
        Self {
            file: TrustFile {
                creators: pins(creators),
                builders: Vec::new(),
                stations: pins(stations),
            },
        }
    }

    /// True when this role has pins, so configuration keys alone are not trusted.
    pub fn pins(&self, role: KeyRole) -> bool {
        match role {
            KeyRole::Creator => !self.file.creators.is_empty(),
            KeyRole::Builder => !self.file.builders.is_empty(),
            KeyRole::Station => !self.file.stations.is_empty(),
        }
    }

    /// Whether `key` may speak for `role` under the id `id` (ids compare by string form).
    pub fn allows(&self, role: KeyRole, id: &str, key: &PublicKey) -> bool {
        if !self.pins(role) {
            return true;
        }
        let fp = key.fingerprint();
        match role {
            KeyRole::Creator => self.file.creators.iter().any(|p| p.id == id && p.key == fp),
            KeyRole::Builder => self.file.builders.iter().any(|b| *b.key() == fp),
            KeyRole::Station => self.file.stations.iter().any(|p| p.id == id && p.key == fp),
        }
    }
}

fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
