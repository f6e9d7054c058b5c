//! The watcher's own state: one JSON file in its state directory, rewritten whole (write to a
//! temporary file, fsync, rename) after every change, so a crash leaves the old or the new
//! version, never half of one. A lock file keeps a second watcher off the same directory.
//!
//! It records, per train stop, what the watcher did and what it still owes the route service
//! (a report that did not get through). The audit log stays the record of what ran; this file
//! only lets a restarted watcher finish its reports and not start a run twice.

use super::item::Stop;
use route_wire::{Digest, TrainId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use train_lib::tree::private;

/// Why the state could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The directory or file could not be read or written.
    #[error("watch state in {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Another watcher holds the directory.
    #[error("another `station watch` uses the state directory {0}; stop it first, or give this one its own [watch] state_dir")]
    Locked(String),
    /// The file is not a state file.
    #[error("watch state {path} is unreadable ({message}); move it away to start afresh (runs already pushed are still known from the audit log)")]
    Corrupt {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// Where one train stop stands at this station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// A run was started (if the watcher finds this at start, the run died with it).
    Running,
    /// Pushed; the digest is reported as `done`.
    Pushed {
        /// The pushed manifest digest.
        digest: Digest,
    },
    /// Failed for good; the reason is reported as `failed`.
    Failed {
        /// Why, as the creator sees it.
        reason: String,
    },
    /// Stopped before it finished (SIGTERM); reported as `interrupted`, run again later.
    Interrupted,
}

/// One train stop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Where it stands.
    #[serde(flatten)]
    pub status: Status,
    /// The inbox image's digest.
    pub digest_in: Digest,
    /// Runs started.
    pub attempts: u32,
    /// Whether the service has the last report.
    pub reported: bool,
    /// Unix seconds of the last change.
    pub updated: u64,
    /// Why the last run ended in trouble that was not the train's, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a reviewer sees of a train waiting for approval (`station queue`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    /// The inbox image's digest it was read from.
    pub digest: Digest,
    /// The file the image runs.
    pub entrypoint: Option<String>,
    /// The train's files (names and sizes as shipped, encrypted).
    pub files: Vec<(String, u64)>,
    /// Whether the signatures verified; the failed checks otherwise.
    pub problems: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    #[serde(default)]
    stops: BTreeMap<String, Entry>,
    #[serde(default)]
    inspected: BTreeMap<String, Inspection>,
}

/// The state, held open (and locked) by one watcher.
pub struct State {
    path: PathBuf,
    doc: Doc,
    _lock: File,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Entries untouched for longer than this are dropped: a week, far past any redelivery.
const KEEP_SECS: u64 = 7 * 24 * 3600;

impl State {
    /// Opens (creating) the state in `dir` and locks it.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| StateError::Io { path, source }
        };
        // The state names the trains this station runs and why it refused some: the watcher's
        // alone (0700, 0600; a directory an older version left 0755 is tightened).
        private::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let lock_path = dir.join("watch.lock");
        let lock = private::open_lock(&lock_path).map_err(io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(StateError::Locked(dir.display().to_string()));
        }
        let doc = Self::read(dir)?;
        Ok(Self {
            path: dir.join("state.json"),
            doc,
            _lock: lock,
        })
    }

    /// Reads the state in `dir` without locking it (`station queue` beside a running watcher).
    pub fn peek(dir: &Path) -> Result<Vec<(String, Inspection)>, StateError> {
        Ok(Self::read(dir)?.inspected.into_iter().collect())
    }

    fn read(dir: &Path) -> Result<Doc, StateError> {
        let path = dir.join("state.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StateError::Corrupt {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Doc::default()),
            Err(source) => Err(StateError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// One train stop's entry.
    pub fn get(&self, stop: &Stop) -> Option<&Entry> {
        self.doc.stops.get(&stop.to_string())
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.doc.stops.iter()
    }

    /// Sets `stop` to `status` (not yet reported) and saves.
    pub fn set(
        &mut self,
        stop: &Stop,
        digest_in: &Digest,
        status: Status,
    ) -> Result<(), StateError> {
        self.set_with(stop, digest_in, status, None)
    }

    /// Sets `stop` to `status` after trouble that was not the train's (`error`), and saves.
    pub fn set_with(
        &mut self,
        stop: &Stop,
        digest_in: &Digest,
        status: Status,
        error: Option<String>,
    ) -> Result<(), StateError> {
        let e = self.doc.stops.entry(stop.to_string()).or_insert(Entry {
            status: Status::Running,
            digest_in: digest_in.clone(),
            attempts: 0,
            reported: false,
            updated: 0,
            last_error: None,
        });
        if status == Status::Running {
            e.attempts += 1;
        }
        e.status = status;
        e.digest_in = digest_in.clone();
        e.reported = false;
        e.updated = now();
        if error.is_some() {
            e.last_error = error;
        }
        self.save()
    }

    /// Takes back the attempt `stop`'s last run counted (the engine could not be reached: the
    /// station's trouble, not the train's), and saves.
    pub fn not_an_attempt(&mut self, stop: &Stop) -> Result<(), StateError> {
        if let Some(e) = self.doc.stops.get_mut(&stop.to_string()) {
            e.attempts = e.attempts.saturating_sub(1);
        }
        self.save()
    }

    /// Marks `stop`'s last report as received by the service and saves.
    pub fn reported(&mut self, stop: &Stop) -> Result<(), StateError> {
        if let Some(e) = self.doc.stops.get_mut(&stop.to_string()) {
            e.reported = true;
            e.updated = now();
        }
        self.save()
    }

    /// Records what a reviewer should see of `train`, and saves.
    pub fn inspected(&mut self, train: &TrainId, i: Inspection) -> Result<(), StateError> {
        self.doc.inspected.insert(train.to_string(), i);
        self.save()
    }

    /// The inspection of `train`, if made from `digest`.
    pub fn inspection(&self, train: &TrainId, digest: &Digest) -> Option<&Inspection> {
        self.doc
            .inspected
            .get(train.as_str())
            .filter(|i| i.digest == *digest)
    }

    /// Forgets inspections of trains no longer waiting, and entries untouched for a week (by
    /// then the service has moved on: reconciliation finds any push a report missed).
    pub fn prune(&mut self, waiting: &[TrainId]) -> Result<(), StateError> {
        let before = (self.doc.stops.len(), self.doc.inspected.len());
        let cutoff = now().saturating_sub(KEEP_SECS);
        self.doc.stops.retain(|_, e| e.updated >= cutoff);
        self.doc
            .inspected
            .retain(|t, _| waiting.iter().any(|w| w == t));
        if before != (self.doc.stops.len(), self.doc.inspected.len()) {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), StateError> {
        let tmp = self.path.with_extension("json.tmp");
        let io = |source| StateError::Io {
            path: tmp.display().to_string(),
            source,
        };
        let body = serde_json::to_vec_pretty(&self.doc).expect("the state serialises");
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut f = private::create_file(&tmp).map_err(io)?;
        f.write_all(&body).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn the_state_is_private_even_where_an_older_version_left_it_open() {
        let d0 = tempfile::tempdir().unwrap();
        let dir = d0.path().join("watch");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = State::open(&dir).unwrap();
        s.save().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("state.json")), 0o600);
        assert_eq!(mode(&dir.join("watch.lock")), 0o600);
    }

    #[test]
    fn state_survives_a_reopen_and_a_second_watcher_is_refused() {
        let d0 = tempfile::tempdir().unwrap();
        let stop = Stop {
            train: "t1".parse().unwrap(),
            index: 0,
        };
        let mut s = State::open(d0.path()).unwrap();
        s.set(&stop, &d('a'), Status::Running).unwrap();
        s.set_with(
            &stop,
            &d('a'),
            Status::Running,
            Some("registry down".into()),
        )
        .unwrap();
        let err = State::open(d0.path()).err().expect("locked");
        assert!(matches!(err, StateError::Locked(_)), "{err}");
        s.set(&stop, &d('a'), Status::Pushed { digest: d('b') })
            .unwrap();
        drop(s);
        let s = State::open(d0.path()).unwrap();
        let e = s.get(&stop).unwrap();
        assert_eq!(e.attempts, 2);
        assert_eq!(e.status, Status::Pushed { digest: d('b') });
        assert_eq!(e.last_error.as_deref(), Some("registry down"));
        assert!(!e.reported);
        // The file keeps its keys and spellings.
        let text = std::fs::read_to_string(d0.path().join("state.json")).unwrap();
        assert!(
            text.contains("\"t1#0\"") && text.contains("\"status\": \"pushed\""),
            "{text}"
        );
    }

    #[test]
    fn a_corrupt_state_file_is_named_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("state.json"), b"{not json").unwrap();
        let err = State::open(d.path()).err().unwrap();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert_eq!(
            std::fs::read(d.path().join("state.json")).unwrap(),
            b"{not json"
        );
    }
}
