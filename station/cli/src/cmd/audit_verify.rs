//! `station audit verify`: the audit log's chain and its signed head.

use super::{load_key, Ended};
use crate::cli::VerifyArgs;
use anyhow::{Context, Result};
use station::{audit, config, run::Decision};

/// Checks the log; a log that fails is a rejection (exit 3).
pub fn run(a: VerifyArgs) -> Result<Ended> {
    let cfg = match &a.config {
        Some(p) => config::StationConfig::load(p)?,
        None => config::StationConfig::default(),
    };
    let log = a
        .log
        .or(cfg.audit.log.clone())
        .context("no log: pass LOG or --config with [audit] log")?;
    let public = match (a.public_key, a.key.or(cfg.station.key.clone())) {
        (Some(p), _) => train_lib::keys::public_key_from_file(&p)?,
        (None, Some(k)) => load_key(&k, cfg.station.key_password_env.as_deref())?
            .public()
            .clone(),
        (None, None) => {
            anyhow::bail!("pass --public-key or --key (the head is signed with the station key)")
        }
    };
    Ok(match audit::AuditLog::new(&log).verify(&public) {
        Ok(records) => {
            pht_term::outln!(
                "{}: {} records, chain and signed head intact",
                log.display(),
                records.len()
            );
            Ended::Ok
        }
        Err(e) => Ended::Failed(Decision::Rejected, format!("rejected: {e}")),
    })
}
