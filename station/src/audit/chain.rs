//! The chain itself: records as JSON lines, each carrying the hash of the one before, and a
//! head file holding the last line's number and hash, signed with the station key. An edited
//! line breaks the chain; a truncated or deleted tail no longer matches the signed head. Callers
//! go through [`super::AuditLog`], which holds the lock these functions assume.

use super::AuditError;
use aws_lc_rs::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use train_lib::keys::{PrivateKey, PublicKey};

/// What a record records (its `decision` field; the spelling is the log's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// A run is about to start its container (its decision follows with the same run id).
    Started,
    /// The train ran and its next image was pushed.
    Pushed,
    /// A check refused the train; nothing ran or was pushed.
    Rejected,
    /// The train ran and failed.
    TrainFailed,
    /// Registry, engine, file or key trouble.
    Error,
    /// Stopped before it finished (a signal, or found dead at the next start).
    Interrupted,
    /// The station's key was rotated; the log is signed with the new key from here.
    KeyRotated,
}

/// One decision of the station (or, `started`, a run about to start its container).
///
/// Fields added after the first release are left out of the JSON when empty, so that the
/// records written before them hash to what they always did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When (UTC, RFC 3339).
    pub time: String,
    /// The train's id, once known.
    pub train_id: Option<String>,
    /// This station's id.
    pub station: String,
    /// The manifest digest of the image the run pulled.
    pub digest_in: Option<String>,
    /// The manifest digest of the image it pushed.
    pub digest_out: Option<String>,
    /// Where it pushed (`repo:tag@digest`).
    pub pushed_to: Option<String>,
    /// `started`, then one of `pushed`, `rejected`, `train-failed`, `error`, `interrupted`;
    /// or `key-rotated`.
    pub decision: RecordKind,
    /// The train's exit code, when it ran.
    pub exit_code: Option<i64>,
    /// Digest of the pushed train layer: the encrypted train and results this station signed.
    pub result_digest: Option<String>,
    /// Why, for anything but `pushed` (escaped).
    pub reason: Option<String>,
    /// The run this record belongs to (its containers, volume and work directory carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The train's signed identity (`native:…`/`legacy:…`): what replays are refused by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The run's work directory (on a `started` record: where its leftovers would be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The hash of the record before (or all zeros for the first).
    pub prev: String,
    /// This record's hash (over its JSON with this field empty).
    pub hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
    signature: String,
}

const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn line_hash(r: &Record) -> String {
    let mut r = r.clone();
    r.hash = String::new();
    let body = serde_json::to_vec(&r).expect("record serialises");
    format!("sha256:{}", hex::encode(digest(&SHA256, &body).as_ref()))
}

pub(super) fn head_path(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

fn head_message(seq: u64, hash: &str) -> Vec<u8> {
    digest(
        &SHA256,
        format!("pht-station audit head\n{seq}\n{hash}").as_bytes(),
    )
    .as_ref()
    .to_vec()
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AuditError {
    let what = what.into();
    move |source| AuditError::Io { what, source }
}

fn broken(msg: String) -> AuditError {
    AuditError::Broken(msg)
}

/// Reads every record and checks the chain; returns them.
pub fn read_chain(log: &Path) -> Result<Vec<Record>, AuditError> {
    let shown = log.display();
    let f = match fs::File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("reading {shown}"))(e)),
    };
    let mut prev = GENESIS.to_string();
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(io(format!("reading {shown}")))?;
        let r: Record = serde_json::from_str(&line)
            .map_err(|e| broken(format!("{shown}: line {n} is not an audit record: {e}")))?;
        if r.seq != n as u64 {
            return Err(broken(format!(
                "{shown}: line {n}: sequence number {} (lines were removed or reordered)",
                r.seq
            )));
        }
        if r.prev != prev {
            return Err(broken(format!("{shown}: line {n}: does not chain to the line before (a line was edited, removed or inserted)")));
        }
        if line_hash(&r) != r.hash {
            return Err(broken(format!(
                "{shown}: line {n}: its hash does not match its content (the line was edited)"
            )));
        }
        prev = r.hash.clone();
        out.push(r);
    }
    Ok(out)
}

/// Checks the chain and the signed head; returns the records.
pub fn verify(log: &Path, key: &PublicKey) -> Result<Vec<Record>, AuditError> {
    let records = read_chain(log)?;
    let hp = head_path(log);
    let head: Head = match fs::read(&hp) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| broken(format!("{}: not an audit head: {e}", hp.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && records.is_empty() => {
            return Ok(records)
        }
        Err(e) => {
            return Err(io(format!(
                "reading {} (the signed head of the log)",
                hp.display()
            ))(e))
        }
    };
    let sig = hex::decode(&head.signature)
        .map_err(|_| broken(format!("{}: its signature is not hex", hp.display())))?;
    if !key.verify_pss_sha256(&head_message(head.seq, &head.hash), &sig) {
        return Err(broken(format!(
            "{}: the head's signature does not verify with the station key",
            hp.display()
        )));
    }
    let (seq, hash) = records
        .last()
        .map_or((0, GENESIS.to_string()), |r| (r.seq, r.hash.clone()));
    if seq != head.seq || hash != head.hash {
        return Err(broken(format!(
            "{}: the log ends at record {seq} but the signed head says {} (the log was truncated or its tail replaced)",
            log.display(),
            head.seq
        )));
    }
    Ok(records)
}

/// Appends `r` (its seq, prev and hash are filled in) after `records` (the log as it is, read
/// and checked under the same lock) and re-signs the head.
pub fn append(
    log: &Path,
    key: &PrivateKey,
    records: &[Record],
    mut r: Record,
) -> Result<Record, AuditError> {
    r.seq = records.last().map_or(1, |l| l.seq + 1);
    r.prev = records
        .last()
        .map_or(GENESIS.to_string(), |l| l.hash.clone());
    r.hash = line_hash(&r);
    let shown = log.display().to_string();
    let mut f =
        train_lib::tree::private::open_append(log).map_err(io(format!("opening {shown}")))?;
    let mut line = serde_json::to_vec(&r).expect("record serialises");
    line.push(b'\n');
    f.write_all(&line)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("appending to {shown}")))?;
    let head = Head {
        seq: r.seq,
        hash: r.hash.clone(),
        signature: hex::encode(key.sign_pss_sha256(&head_message(r.seq, &r.hash))?),
    };
    // A unique temporary name beside the head, renamed over it: two writers can never mix
    // their heads, and a reader sees the old head or the new one.
    let hp = head_path(log);
    let dir = hp.parent().unwrap_or(Path::new("."));
    let what = format!("writing the audit head {}", hp.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".audit-head-")
        .tempfile_in(dir)
        .map_err(io(what.clone()))?;
    tmp.write_all(&serde_json::to_vec(&head).expect("head serialises"))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io(what.clone()))?;
    tmp.persist(&hp).map_err(|e| io(what)(e.error))?;
    Ok(r)
}

/// A record of `kind` with the chain fields left for [`append`].
pub fn record(station: &str, kind: RecordKind) -> Record {
    Record {
        seq: 0,
        time: now_rfc3339(),
        train_id: None,
        station: station.to_string(),
        digest_in: None,
        digest_out: None,
        pushed_to: None,
        decision: kind,
        exit_code: None,
        result_digest: None,
        reason: None,
        run_id: None,
        identity: None,
        workdir: None,
        prev: String::new(),
        hash: String::new(),
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
