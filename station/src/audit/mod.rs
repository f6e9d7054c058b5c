//! The station's audit log: append-only, hash-chained JSON lines with a signed head
//! ([`chain`]), and the locks that keep it one chain when many runs share it.
//!
//! - Every read and append holds a lock on `LOG.lock` (shared to read, exclusive to append),
//!   so concurrent runs, in one process or many, never interleave a line, never give two
//!   records one number, and never read half a line. (Twelve runs at once without it lost
//!   records and forked the chain.)
//! - A run holds a lock on `LOG.locks/<identity hash>` from its replay check until its decision
//!   is appended: of two runs of one train, exactly one gets past the check; runs of other
//!   trains go on side by side.
//! - A log that fails its check stops runs: appending to it would fork the chain silently.

mod chain;

pub use chain::{read_chain, record, Record, RecordKind};

use std::fs::File;
use std::path::{Path, PathBuf};
use train_lib::keys::{KeyError, PrivateKey, PublicKey};

/// What went wrong with the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file of the log could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, and to which file.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The log fails its check (an edited, removed, inserted or truncated record, a head that
    /// does not verify).
    #[error("{0}")]
    Broken(String),
    /// A log that fails its check stops runs.
    #[error("the audit log {path} fails its check: {reason}. Runs are stopped until it is dealt with, since appending would fork its chain: see `station audit verify {path}`; keep the file as evidence, then restore it from a backup or move it (and its .head) aside to start a new log")]
    StopsRuns {
        /// The log.
        path: String,
        /// Why it fails.
        reason: Box<AuditError>,
    },
    /// The head could not be signed.
    #[error("signing the audit head: {0}")]
    Key(#[from] KeyError),
    /// The configured log path cannot be a log.
    #[error("[audit] log {0} is a directory; name a file")]
    NotAFile(String),
}

type Result<T, E = AuditError> = std::result::Result<T, E>;

fn io(what: String) -> impl FnOnce(std::io::Error) -> AuditError {
    move |source| AuditError::Io { what, source }
}

/// A station's audit log at a path.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

/// A held per-train lock; released on drop.
#[derive(Debug)]
pub struct TrainLock {
    _file: File,
}

impl AuditLog {
    /// The log at `path` (created at the first append, with its directory).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut p = self.path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    }

    /// Opens (creating) the lock file beside the log, and its directory.
    fn lock_file(&self) -> Result<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            train_lib::tree::private::create_dir_all(dir)
                .map_err(io(format!("creating {}", dir.display())))?;
        }
        let p = self.sibling(".lock");
        train_lib::tree::private::open_lock(&p)
            .map_err(io(format!("opening the audit lock {}", p.display())))
    }

    /// The records, after checking the chain and the signed head (under a shared lock).
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<Record>> {
        if self.path.is_dir() {
            return Err(AuditError::NotAFile(self.path.display().to_string()));
        }
        let lock = self.lock_file()?;
        lock.lock_shared()
            .map_err(io(format!("locking {}", self.path.display())))?;
        chain::verify(&self.path, key)
    }

    /// Checks the log before a run: a log that fails its check stops the station with what to
    /// do, rather than being appended to.
    pub fn check_before_run(&self, key: &PublicKey) -> Result<Vec<Record>> {
        self.verify(key).map_err(|e| match e {
            AuditError::Broken(_) => AuditError::StopsRuns {
                path: self.path.display().to_string(),
                reason: Box::new(e),
            },
            other => other,
        })
    }

    /// Appends `r` (numbered, chained and the head re-signed) under the exclusive lock, after
    /// checking the log as it is now.
    pub fn append(&self, key: &PrivateKey, r: Record) -> Result<Record> {
        self.append_with(key, |_| Some(r))
            .map(|v| v.into_iter().next().expect("one record"))
    }

    /// Under the exclusive lock: reads and checks the log, asks `make` which records to append
    /// given what is there (none is fine), appends them.
    pub fn append_with(
        &self,
        key: &PrivateKey,
        make: impl FnOnce(&[Record]) -> Option<Record>,
    ) -> Result<Vec<Record>> {
        self.append_many(key, |records| make(records).into_iter().collect())
    }

    /// Like [`AuditLog::append_with`], for any number of records.
    pub fn append_many(
        &self,
        key: &PrivateKey,
        make: impl FnOnce(&[Record]) -> Vec<Record>,
    ) -> Result<Vec<Record>> {
        let lock = self.lock_file()?;
        lock.lock()
            .map_err(io(format!("locking {}", self.path.display())))?;
        // A log that fails its check is never appended to: that would fork its chain.
        let mut records = chain::verify(&self.path, key.public()).map_err(|e| match e {
            AuditError::Broken(_) => AuditError::StopsRuns {
                path: self.path.display().to_string(),
                reason: Box::new(e),
            },
            other => other,
        })?;
        let mut out = Vec::new();
        for r in make(&records) {
            let r = chain::append(&self.path, key, &records, r)?;
            records.push(r.clone());
            out.push(r);
        }
        Ok(out)
    }

    /// Hands the log over to a new station key (an accepted rotation): checks it with `old`,
    /// appends a `key-rotated` record naming both fingerprints, and signs the head with `new`.
    /// From then on the log verifies with `new` only.
    pub fn rotate_key(&self, station: &str, old: &PrivateKey, new: &PrivateKey) -> Result<Record> {
        let lock = self.lock_file()?;
        lock.lock()
            .map_err(io(format!("locking {}", self.path.display())))?;
        let records = if self.path.exists() {
            chain::verify(&self.path, old.public())?
        } else {
            Vec::new()
        };
        let mut r = record(station, RecordKind::KeyRotated);
        r.reason = Some(format!(
            "station key {} replaced by {}",
            old.public().fingerprint(),
            new.public().fingerprint()
        ));
        chain::append(&self.path, new, &records, r)
    }

    /// Takes the lock of the train `identity` for as long as the returned guard lives; `None`
    /// when another run (in any process) holds it.
    pub fn lock_train(&self, identity: &str) -> Result<Option<TrainLock>> {
        let dir = self.sibling(".locks");
        train_lib::tree::private::create_dir_all(&dir)
            .map_err(io(format!("creating {}", dir.display())))?;
        let name = hex::encode(
            &aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, identity.as_bytes()).as_ref()
                [..16],
        );
        let p = dir.join(name);
        let f = train_lib::tree::private::open_lock(&p)
            .map_err(io(format!("opening {}", p.display())))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(TrainLock { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(format!("locking {}", p.display()))(e)),
        }
    }
}

/// The `pushed` record of this train at this station, if any: by the train's signed identity
/// (any encoding of any state of it), or, for records written before identities were kept, by
/// the image digest.
pub fn pushed_before<'a>(
    records: &'a [Record],
    identity: &str,
    digest: &str,
) -> Option<&'a Record> {
    records.iter().find(|r| {
        r.decision == RecordKind::Pushed
            && (r.identity.as_deref() == Some(identity) || r.digest_in.as_deref() == Some(digest))
    })
}

/// `started` records with no decision after them (same run id).
pub fn unfinished(records: &[Record]) -> Vec<&Record> {
    let mut open: Vec<&Record> = Vec::new();
    for r in records {
        match (r.decision, &r.run_id) {
            (RecordKind::Started, Some(_)) => open.push(r),
            (_, Some(id)) => open.retain(|o| o.run_id.as_deref() != Some(id.as_str())),
            _ => {}
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn key() -> PrivateKey {
        PrivateKey::generate(2048).unwrap()
    }

    fn pushed(log: &AuditLog, k: &PrivateKey, n: usize) {
        for i in 0..n {
            let mut r = record("s1", RecordKind::Pushed);
            r.digest_in = Some(format!("sha256:{i}"));
            log.append(k, r).unwrap();
        }
    }

    #[test]
    fn detects_edits_truncation_and_a_forged_head() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.jsonl");
        let log = AuditLog::new(&path);
        let k = key();
        pushed(&log, &k, 3);
        assert_eq!(log.verify(k.public()).unwrap().len(), 3);

        // Edit a decision.
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replacen("\"pushed\"", "\"rejected\"", 1)).unwrap();
        let e = log.verify(k.public()).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("edited"), "{e}");

        // Truncate the tail.
        let lines: Vec<&str> = text.lines().collect();
        fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        let e = log.verify(k.public()).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");

        // Remove a middle line.
        fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let e = log.verify(k.public()).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");

        // A head signed by another key.
        fs::write(&path, &text).unwrap();
        let other = key();
        assert!(log
            .verify(other.public())
            .unwrap_err()
            .to_string()
            .contains("signature"));
        // Appending to a broken log is refused, and a run is stopped with what to do.
        fs::write(&path, format!("{}\n", lines[0])).unwrap();
        assert!(log.append(&k, record("s1", RecordKind::Error)).is_err());
        let e = format!("{:#}", log.check_before_run(k.public()).unwrap_err());
        assert!(
            e.contains("Runs are stopped") && e.contains("station audit verify"),
            "{e}"
        );
    }

    #[test]
    fn concurrent_appends_in_one_process_keep_one_chain() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&d.path().join("audit.jsonl"));
        let k = std::sync::Arc::new(key());
        std::thread::scope(|s| {
            for t in 0..8 {
                let (log, k) = (log.clone(), k.clone());
                s.spawn(move || {
                    for i in 0..5 {
                        let mut r = record("s1", RecordKind::Error);
                        r.reason = Some(format!("{t}/{i}"));
                        log.append(&k, r).unwrap();
                    }
                });
            }
        });
        let records = log.verify(k.public()).unwrap();
        assert_eq!(records.len(), 40);
        let mut reasons: Vec<_> = records.iter().map(|r| r.reason.clone().unwrap()).collect();
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), 40, "every decision present once");
    }

    #[test]
    fn one_run_per_train_holds_its_lock() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&d.path().join("audit.jsonl"));
        let a = log.lock_train("native:aa").unwrap();
        assert!(a.is_some());
        assert!(
            log.lock_train("native:aa").unwrap().is_none(),
            "a second run of it waits out"
        );
        assert!(
            log.lock_train("native:bb").unwrap().is_some(),
            "another train goes on"
        );
        drop(a);
        assert!(log.lock_train("native:aa").unwrap().is_some());
    }

    #[test]
    fn replays_are_found_by_identity_or_old_digest_and_open_runs_by_id() {
        let mut a = record("s1", RecordKind::Pushed);
        a.identity = Some("native:aa".into());
        a.digest_in = Some("sha256:1".into());
        let mut old = record("s1", RecordKind::Pushed);
        old.digest_in = Some("sha256:2".into());
        let recs = vec![a, old];
        assert!(pushed_before(&recs, "native:aa", "sha256:other").is_some());
        assert!(pushed_before(&recs, "native:zz", "sha256:2").is_some());
        assert!(pushed_before(&recs, "native:zz", "sha256:3").is_none());

        let mut s1 = record("s1", RecordKind::Started);
        s1.run_id = Some("r1".into());
        let mut s2 = s1.clone();
        s2.run_id = Some("r2".into());
        let mut done = record("s1", RecordKind::Pushed);
        done.run_id = Some("r1".into());
        let recs = vec![s1, s2, done];
        let open = unfinished(&recs);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].run_id.as_deref(), Some("r2"));
    }

    #[test]
    fn old_records_hash_as_they_did() {
        // A record without the fields added later serialises without them.
        let r = record("s1", RecordKind::Pushed);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["decision"], "pushed");
        assert_eq!(
            serde_json::to_value(record("s1", RecordKind::TrainFailed)).unwrap()["decision"],
            "train-failed"
        );
        assert!(v.get("run_id").is_none() && v.get("identity").is_none());
    }
}
