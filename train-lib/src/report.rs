//! What the operations report, and the station they run as.

use crate::error::{Rejection, Result};
use crate::keys::{KeyRole, PrivateKey, PublicKey, TrustStore};
use serde::Serialize;

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
    /// An empty report of `format`, filled in as the checks run.
    pub(crate) fn new(format: &'static str) -> Self {
        Self {
            format,
            train_id: String::new(),
            identity: String::new(),
            creator: String::new(),
            route: Vec::new(),
            stops_done: 0,
            checks: Vec::new(),
        }
    }

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

impl StepReport {
    /// A report of `format` for `train_id` at `station` (stop `index`), counts still zero.
    pub(crate) fn new(
        format: &'static str,
        train_id: impl Into<String>,
        station: impl Into<String>,
        index: usize,
    ) -> Self {
        Self {
            format,
            train_id: train_id.into(),
            station: station.into(),
            index,
            train_files: 0,
            result_files: 0,
            bytes: 0,
        }
    }
}

/// Refuses a key that the trust store pins away.
pub(crate) fn require_trusted(
    trust: &TrustStore,
    role: KeyRole,
    id: &str,
    key: &PublicKey,
) -> Result<()> {
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
