//! `station trust add|list|remove`: the pinned keys in the trust file.

use super::Ended;
use crate::cli::{TrustAddArgs, TrustFileArgs, TrustRemoveArgs};
use anyhow::{Context, Result};
use station::config::StationConfig;
use station::trust_file::TrustFile;
use std::path::{Path, PathBuf};

fn file(a: &TrustFileArgs) -> Result<PathBuf> {
    if let Some(f) = &a.file {
        return Ok(f.clone());
    }
    let cfg = match &a.config {
        Some(p) => StationConfig::load(p)?,
        None => StationConfig::default(),
    };
    cfg.policy.trust.context(
        "no trust file: pass --file FILE, or --config with [policy] trust set (pre-run reads that file)",
    )
}

/// A fingerprint as given, or the fingerprint of a public key file.
fn fingerprint(key: &str) -> Result<String> {
    if key.starts_with("sha256:") {
        return Ok(key.to_string());
    }
    let k = train_lib::keys::public_key_from_file(Path::new(key)).with_context(|| {
        format!("`{key}` is neither a sha256: fingerprint nor a public key file")
    })?;
    Ok(k.fingerprint())
}

/// `trust add`.
pub fn add(a: TrustAddArgs) -> Result<Ended> {
    let path = file(&a.file)?;
    let fp = fingerprint(&a.key)?;
    let mut f = TrustFile::load(&path)?;
    let old = f.add(&a.role, &a.id, &fp)?;
    f.save(&path)?;
    match old {
        Some(o) if o != fp => pht_term::outln!("{} {} pinned to {fp} (was {o})", a.role, a.id),
        _ => pht_term::outln!("{} {} pinned to {fp}", a.role, a.id),
    }
    Ok(Ended::Ok)
}

/// `trust list`.
pub fn list(a: TrustFileArgs) -> Result<Ended> {
    let path = file(&a)?;
    let pins = TrustFile::load(&path)?.list();
    if pins.is_empty() {
        pht_term::outln!(
            "nothing pinned in {}: pre-run trusts the keys each train's configuration names",
            path.display()
        );
    }
    for (role, p) in pins {
        pht_term::outln!("{role:<8} {:<24} {}", p.id, p.key);
    }
    Ok(Ended::Ok)
}

/// `trust remove`.
pub fn remove(a: TrustRemoveArgs) -> Result<Ended> {
    let path = file(&a.file)?;
    let mut f = TrustFile::load(&path)?;
    let p = f.remove(&a.role, &a.id, &path)?;
    f.save(&path)?;
    pht_term::outln!("{} {} ({}) no longer pinned", a.role, p.id, p.key);
    Ok(Ended::Ok)
}
