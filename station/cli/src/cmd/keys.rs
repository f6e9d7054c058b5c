//! `station keys create|show|rotate`: the station's key pair and its registration.

use super::service::Ctx;
use super::{load_key, Ended};
use crate::cli::{KeysArgs, RotateArgs};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use train_lib::keys::PrivateKey;

fn key_path(a: &KeysArgs, ctx: &Ctx) -> Result<PathBuf> {
    a.key
        .clone()
        .or_else(|| ctx.cfg.station.key.clone())
        .context(
            "no key file: pass --key, set STATION_PRIVATE_KEY_PATH, or [station] key in the config",
        )
}

/// `NAME.key.pem` → `NAME.pub.pem`; otherwise `FILE.pub.pem`.
fn public_path(key: &Path) -> PathBuf {
    let s = key.to_string_lossy();
    match s.strip_suffix(".key.pem") {
        Some(stem) => PathBuf::from(format!("{stem}.pub.pem")),
        None => PathBuf::from(format!("{s}.pub.pem")),
    }
}

/// Writes `key` to `path` (0600, created new) and its public half beside it.
fn write_pair(key: &PrivateKey, path: &Path) -> Result<PathBuf> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut f = train_lib::tree::private::create_file(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    f.write_all(key.to_pkcs8_pem()?.as_bytes())?;
    let pubp = public_path(path);
    std::fs::write(&pubp, key.public().to_pem())
        .with_context(|| format!("writing {}", pubp.display()))?;
    Ok(pubp)
}

/// `keys create`.
pub fn create(a: KeysArgs) -> Result<Ended> {
    let ctx = Ctx::load(&a.service)?;
    let path = key_path(&a, &ctx)?;
    if path.exists() && !a.force {
        eprintln!(
            "{} exists: reusing it (--force replaces it)",
            path.display()
        );
        return show(a);
    }
    if path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    let key = PrivateKey::generate(a.bits)?;
    let pubp = write_pair(&key, &path)?;
    eprintln!("created {} (0600) and {}", path.display(), pubp.display());
    show(a)
}

/// `keys show`.
pub fn show(a: KeysArgs) -> Result<Ended> {
    let ctx = Ctx::load(&a.service)?;
    let path = key_path(&a, &ctx)?;
    let key = load_key(&path, ctx.cfg.station.key_password_env.as_deref())?;
    let fp = key.public().fingerprint();
    let id = &ctx.station;
    pht_term::out!("{}", key.public().to_pem());
    pht_term::outln!("fingerprint: {fp}");
    pht_term::outln!();
    pht_term::outln!("The route service's admin registers this station with its public key:");
    pht_term::outln!(
        "  route-service station add {id} --registry <REGISTRY> --namespace {id} --public-key {} [--approval manual]",
        public_path(&path).display()
    );
    pht_term::outln!(
        "and gives you the API key it prints once (keep it in [watch] api_key_file, mode 0600)."
    );
    pht_term::outln!("Other stations that pin route keys run:");
    pht_term::outln!("  station trust add station {id} {fp}");
    pht_term::outln!("Creators building routes through the service check it with:");
    pht_term::outln!("  train create --route-service <URL> --station {id} --pin {id}={fp} …");
    Ok(Ended::Ok)
}

/// `keys rotate`.
pub async fn rotate(a: RotateArgs) -> Result<Ended> {
    let ctx = Ctx::load(&a.keys.service)?;
    let path = key_path(&a.keys, &ctx)?;
    let pw = ctx.cfg.station.key_password_env.clone();
    let client = ctx.client()?;
    let key = if a.reuse {
        load_key(&path, pw.as_deref())?
    } else {
        let next = station::watch::next_key_path(&path);
        if next.exists() {
            eprintln!(
                "{} exists (an earlier rotation): proposing it again",
                next.display()
            );
            load_key(&next, pw.as_deref())?
        } else {
            let key = PrivateKey::generate(a.keys.bits)?;
            write_pair(&key, &next)?;
            eprintln!("created the next key {} (0600)", next.display());
            key
        }
    };
    let fp = key.public().fingerprint();
    let held = client
        .propose_key(&ctx.station, &key.public().to_pem())
        .await?;
    if held.pending_fingerprint.as_deref() != Some(fp.as_str()) && held.fingerprint != fp {
        bail!(
            "the route service did not record the proposal (it holds {}, pending {:?})",
            held.fingerprint,
            held.pending_fingerprint
        );
    }
    pht_term::outln!("proposed {fp} for station {}", ctx.station);
    pht_term::outln!(
        "Tell the route service's admin this fingerprint by a channel you trust; they run:"
    );
    pht_term::outln!(
        "  route-service station accept-key {} --fingerprint {fp}",
        ctx.station
    );
    pht_term::outln!(
        "`station watch` takes the key into use once it is accepted (at its next inbox read)."
    );
    Ok(Ended::Ok)
}
