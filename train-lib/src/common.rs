//! What both formats share: the station's identity, the layout of a train directory, and the
//! reports operations return.

use crate::error::{Rejection, Result};
use crate::keys::{KeyRole, PrivateKey, PublicKey, TrustStore};
use crate::tree::{self, Entry, EntryKind};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// The configuration file's name in a train directory.
pub const CONFIG: &str = "train_config.json";
/// Train files directory.
pub const TRAIN_DIR: &str = "pht_train";
/// Results directory.
pub const RESULTS_DIR: &str = "pht_results";
/// The legacy creator key file.
pub const USER_KEY: &str = "user_sym_key.key";
/// The optional query file inside `pht_train`.
pub const QUERY: &str = "query.json";

/// A station running the protocol: its id, private key and pinned keys.
#[derive(Debug)]
pub struct Station<'a> {
    /// The station's id on the route (compared by string form).
    pub id: &'a str,
    /// Its private key.
    pub key: &'a PrivateKey,
    /// Keys it trusts.
    pub trust: &'a TrustStore,
}

/// What a pre-run or post-run did.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `legacy` or `native`.
    pub format: &'static str,
    /// Train id.
    pub train_id: String,
    /// The station.
    pub station: String,
    /// Its stop index.
    pub index: usize,
    /// Train files processed.
    pub train_files: usize,
    /// Results files processed.
    pub result_files: usize,
    /// Plaintext bytes processed.
    pub bytes: u64,
}

/// One check of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed, or what it found.
    pub detail: String,
}

/// The result of `verify`: every check that needs no private key.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// `legacy` or `native`.
    pub format: &'static str,
    /// Train id.
    pub train_id: String,
    /// What identifies this train in every encoding of it, for a station's replay check:
    /// `native:` and the hex of the creator-signed body digest, or `legacy:` and the
    /// creator-signed `hash` (both bind the train's files and a per-train random value). Empty
    /// when the configuration does not parse.
    pub identity: String,
    /// The creator's id (legacy: in the reference's string form).
    pub creator: String,
    /// Stations in route order.
    pub route: Vec<String>,
    /// How many stops have run.
    pub stops_done: usize,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// Appends a check: `Ok(detail)` passed, `Err(reason)` failed.
    pub fn check(&mut self, name: &str, r: std::result::Result<String, String>) {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }
}

/// Checks that the directory's top level holds only the entries a train may have.
pub fn check_top_level(dir: &Path, allowed: &[&str]) -> Result<()> {
    for ent in std::fs::read_dir(dir).map_err(tree::io_err(dir))? {
        let ent = ent.map_err(tree::io_err(dir))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name == crate::tree::rewrite::MARKER {
            return Err(Rejection::Interrupted(ent.path().display().to_string()).into());
        }
        if !allowed.contains(&name.as_str()) {
            return Err(Rejection::BadEntry(format!(
                "unexpected entry `{name}` in the train directory (allowed: {})",
                allowed.join(", ")
            ))
            .into());
        }
        let ft = ent.file_type().map_err(tree::io_err(&ent.path()))?;
        let want_dir = name == TRAIN_DIR || name == RESULTS_DIR;
        if (want_dir && !ft.is_dir()) || (!want_dir && !ft.is_file()) {
            return Err(Rejection::BadEntry(format!("`{name}` has the wrong file type")).into());
        }
    }
    Ok(())
}

/// Compares the files found with the files listed: an extra file or a missing one is rejected.
pub fn match_listing(found: &[Entry], listed: &BTreeSet<String>, dir: &str) -> Result<()> {
    let found_files: BTreeSet<&str> = found
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(_)))
        .map(|e| e.path.as_str())
        .collect();
    if let Some(extra) = found_files.iter().find(|f| !listed.contains(**f)) {
        return Err(Rejection::UnlistedFile(format!("{dir}/{extra}")).into());
    }
    if let Some(missing) = listed.iter().find(|f| !found_files.contains(f.as_str())) {
        return Err(Rejection::MissingFile(format!("{dir}/{missing}")).into());
    }
    Ok(())
}

/// Total bytes of the files in a listing.
pub fn total_size(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File(n) => n,
            EntryKind::Dir => 0,
        })
        .sum()
}

/// Refuses a key that the trust store pins away.
pub fn require_trusted(trust: &TrustStore, role: KeyRole, id: &str, key: &PublicKey) -> Result<()> {
    if trust.allows(role, id, key) {
        Ok(())
    } else {
        Err(Rejection::UntrustedKey {
            role: role.to_string(),
            id: id.to_string(),
            fingerprint: key.fingerprint(),
        }
        .into())
    }
}

/// Reads the configuration file.
pub fn read_config(dir: &Path) -> Result<Vec<u8>> {
    let p = dir.join(CONFIG);
    let mut f = tree::open_regular(&p)?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut buf).map_err(tree::io_err(&p))?;
    Ok(buf)
}

/// What `train create` needs, for either format.
#[derive(Debug)]
pub struct CreateSpec<'a> {
    /// Directory of train files (becomes `pht_train`).
    pub files: &'a Path,
    /// The file the image runs, relative to `files`.
    pub entrypoint: &'a str,
    /// The creator's id.
    pub creator_id: &'a str,
    /// The creator's private key.
    pub creator_key: &'a PrivateKey,
    /// The route: station ids and public keys, in order.
    pub stations: Vec<(String, PublicKey)>,
    /// An optional `query.json` to ship.
    pub query: Option<&'a Path>,
    /// The builder's key (required for legacy, optional for native).
    pub builder_key: Option<&'a PrivateKey>,
    /// Train id; random when absent.
    pub train_id: Option<String>,
    /// Proposal id; the train id when absent.
    pub proposal_id: Option<String>,
    /// Master image reference (legacy `source`) or digest (native, signed).
    pub master_image: Option<String>,
}

/// Train files by relative path and size, in walk order.
pub type SourceFiles = Vec<(String, u64)>;

/// The train files of a source directory: every regular file in walk order, with a top-level
/// `query.json` split off as the query. Returns (files, query path).
pub fn source_files(spec: &CreateSpec<'_>) -> Result<(SourceFiles, Option<std::path::PathBuf>)> {
    let entries = tree::walk(spec.files)?;
    if entries.is_empty() && !spec.files.is_dir() {
        return Err(crate::error::ProtocolError::Input(format!(
            "--files {} is not a directory",
            spec.files.display()
        )));
    }
    let mut files = Vec::new();
    let mut query = spec.query.map(Path::to_path_buf);
    for e in entries {
        if let EntryKind::File(n) = e.kind {
            if e.path == QUERY {
                if spec.query.is_some() {
                    return Err(crate::error::ProtocolError::Input(format!(
                        "{} has a query.json and --query was given too; keep one",
                        spec.files.display()
                    )));
                }
                query = Some(spec.files.join(QUERY));
                continue;
            }
            files.push((e.path, n));
        }
    }
    if !files.iter().any(|(p, _)| p == spec.entrypoint) {
        return Err(crate::error::ProtocolError::Input(format!(
            "entrypoint `{}` is not a file under {}",
            spec.entrypoint,
            spec.files.display()
        )));
    }
    if spec.stations.is_empty() {
        return Err(crate::error::ProtocolError::Input(
            "the route needs at least one --station".into(),
        ));
    }
    // Duplicate stations are refused by each format's own route check, in its own comparison.
    Ok((files, query))
}

/// A random train id.
pub fn random_train_id() -> String {
    format!("train-{}", hex::encode(crate::keys::random_bytes::<8>()))
}

/// Decodes a hex field of the configuration, naming it in the error. Only lowercase is
/// accepted (both formats write it): otherwise a byte of the file could change (`a` → `A`)
/// while every signature still verifies.
pub(crate) fn unhex(field: &str, v: &str) -> std::result::Result<Vec<u8>, Rejection> {
    if v.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::ConfigSchema(format!(
            "{field} must be lowercase hex"
        )));
    }
    hex::decode(v).map_err(|_| Rejection::ConfigSchema(format!("{field} is not hex")))
}

/// Decodes a hex field that must hold exactly `n` bytes.
pub(crate) fn unhex_n(field: &str, v: &str, n: usize) -> std::result::Result<Vec<u8>, Rejection> {
    let b = unhex(field, v)?;
    if b.len() != n {
        return Err(Rejection::ConfigSchema(format!(
            "{field} must be {n} bytes, is {}",
            b.len()
        )));
    }
    Ok(b)
}

/// Parses a public key field (PEM, or hex of PEM).
pub(crate) fn parse_key(field: &str, v: &str) -> std::result::Result<PublicKey, Rejection> {
    crate::keys::public_key_from_text(v.as_bytes(), field)
        .map_err(|e| Rejection::ConfigSchema(e.to_string()))
}
