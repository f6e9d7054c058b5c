//! `station trust add|list|remove`: the pinned keys pre-run enforces, kept in the JSON trust
//! file `[policy] trust` names (the format `train_lib::keys::TrustStore` reads). Edits are
//! written whole to a temporary file and renamed over the old one, and the result is read back
//! with the same parser pre-run uses before it replaces anything.

use serde::{Deserialize, Serialize};
use std::path::Path;
use train_lib::keys::TrustStore;

/// Why the trust file could not be changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFileError {
    /// Reading or writing it.
    #[error("trust file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not a trust file, or an edit would make it one pre-run refuses.
    #[error("trust file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The role is not one of the three.
    #[error("`{0}` is not a role: creator, builder or station")]
    Role(String),
    /// Nothing to remove.
    #[error("no {role} `{id}` is pinned in {path}")]
    NotPinned {
        /// The role.
        role: String,
        /// The id.
        id: String,
        /// The file.
        path: String,
    },
}

/// One pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Who (a creator's or station's id on routes; a name for builders).
    pub id: String,
    /// `sha256:` fingerprint.
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum BuilderEntry {
    Key(String),
    Named(Pin),
}

/// The file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    #[serde(default)]
    creators: Vec<Pin>,
    #[serde(default)]
    builders: Vec<BuilderEntry>,
    #[serde(default)]
    stations: Vec<Pin>,
}

/// The three roles, as the commands name them.
pub const ROLES: [&str; 3] = ["creator", "builder", "station"];

impl TrustFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, TrustFileError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| TrustFileError::Invalid {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TrustFileError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Every pin as (role, pin).
    pub fn list(&self) -> Vec<(&'static str, Pin)> {
        let mut out: Vec<(&'static str, Pin)> = Vec::new();
        out.extend(self.creators.iter().map(|p| ("creator", p.clone())));
        out.extend(self.builders.iter().map(|b| {
            (
                "builder",
                match b {
                    BuilderEntry::Key(k) => Pin {
                        id: "-".into(),
                        key: k.clone(),
                    },
                    BuilderEntry::Named(p) => p.clone(),
                },
            )
        }));
        out.extend(self.stations.iter().map(|p| ("station", p.clone())));
        out
    }

    /// Pins `key` for `role` `id`, replacing an earlier pin of that id; returns the replaced
    /// fingerprint.
    pub fn add(
        &mut self,
        role: &str,
        id: &str,
        key: &str,
    ) -> Result<Option<String>, TrustFileError> {
        let pin = Pin {
            id: id.to_string(),
            key: key.to_string(),
        };
        let replace = |v: &mut Vec<Pin>| {
            let old = v.iter().position(|p| p.id == id).map(|i| v.remove(i).key);
            v.push(pin.clone());
            old
        };
        Ok(match role {
            "creator" => replace(&mut self.creators),
            "station" => replace(&mut self.stations),
            "builder" => {
                let old = self
                    .builder_index(id)
                    .map(|i| match self.builders.remove(i) {
                        BuilderEntry::Key(k) => k,
                        BuilderEntry::Named(p) => p.key,
                    });
                self.builders.push(BuilderEntry::Named(pin));
                old
            }
            r => return Err(TrustFileError::Role(r.into())),
        })
    }

    fn builder_index(&self, id: &str) -> Option<usize> {
        self.builders.iter().position(|b| match b {
            BuilderEntry::Named(p) => p.id == id,
            BuilderEntry::Key(k) => k == id,
        })
    }

    /// Removes `role` `id` (for an unnamed builder pin, `id` is its fingerprint).
    pub fn remove(&mut self, role: &str, id: &str, path: &Path) -> Result<Pin, TrustFileError> {
        let missing = || TrustFileError::NotPinned {
            role: role.into(),
            id: id.into(),
            path: path.display().to_string(),
        };
        let take = |v: &mut Vec<Pin>| v.iter().position(|p| p.id == id).map(|i| v.remove(i));
        match role {
            "creator" => take(&mut self.creators).ok_or_else(missing),
            "station" => take(&mut self.stations).ok_or_else(missing),
            "builder" => {
                let i = self.builder_index(id).ok_or_else(missing)?;
                Ok(match self.builders.remove(i) {
                    BuilderEntry::Key(k) => Pin {
                        id: "-".into(),
                        key: k,
                    },
                    BuilderEntry::Named(p) => p,
                })
            }
            r => Err(TrustFileError::Role(r.into())),
        }
    }

    /// Writes the file (0644: it holds public fingerprints only), after checking that pre-run
    /// reads it.
    pub fn save(&self, path: &Path) -> Result<(), TrustFileError> {
        let shown = path.display().to_string();
        let body = serde_json::to_vec_pretty(self).expect("trust file serialises");
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let io = |source| TrustFileError::Io {
            path: shown.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::fs::write(tmp.path(), &body).map_err(io)?;
        TrustStore::from_file(tmp.path()).map_err(|e| TrustFileError::Invalid {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use train_lib::keys::{KeyRole, PrivateKey};

    #[test]
    fn pins_written_by_the_commands_are_what_pre_run_enforces() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("trust.json");
        let (alice, mallory) = (
            PrivateKey::generate(2048).unwrap(),
            PrivateKey::generate(2048).unwrap(),
        );
        let mut f = TrustFile::load(&path).unwrap();
        f.add("creator", "alice", &alice.public().fingerprint())
            .unwrap();
        f.add("builder", "ci", &alice.public().fingerprint())
            .unwrap();
        f.save(&path).unwrap();
        let t = TrustStore::from_file(&path).unwrap();
        assert!(t.allows(KeyRole::Creator, "alice", alice.public()));
        assert!(!t.allows(KeyRole::Creator, "alice", mallory.public()));
        assert!(!t.allows(KeyRole::Creator, "bob", alice.public()));
        assert!(t.allows(KeyRole::Builder, "any", alice.public()));
        assert!(!t.allows(KeyRole::Builder, "any", mallory.public()));
        // Replacing a pin keeps one per id; removing it unpins the role.
        let mut f = TrustFile::load(&path).unwrap();
        let old = f
            .add("creator", "alice", &mallory.public().fingerprint())
            .unwrap();
        assert_eq!(old, Some(alice.public().fingerprint()));
        assert_eq!(f.list().iter().filter(|(r, _)| *r == "creator").count(), 1);
        f.remove("creator", "alice", &path).unwrap();
        let err = f.remove("creator", "alice", &path).unwrap_err();
        assert!(matches!(err, TrustFileError::NotPinned { .. }), "{err}");
        assert!(matches!(
            f.add("admin", "x", "sha256:00").unwrap_err(),
            TrustFileError::Role(_)
        ));
    }

    #[test]
    fn a_pin_that_is_not_a_fingerprint_is_refused_and_the_file_is_left_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("trust.json");
        std::fs::write(&path, b"{}").unwrap();
        let mut f = TrustFile::load(&path).unwrap();
        f.add("station", "st-1", "sha256:short").unwrap();
        let err = f.save(&path).unwrap_err();
        assert!(err.to_string().contains("not a key fingerprint"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }
}
