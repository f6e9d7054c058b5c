//! `train verify`: every check that needs no private key, of a directory or an image (the
//! image checks are the image library's, the same the station applies).

use crate::cli::{RegistryArgs, VerifyArgs};
use crate::support::{as_image, pull_options, runtime, trust};
use anyhow::Result;
use std::path::PathBuf;
use train_image::{self as image, ImageRef};
use train_lib::{Check, MasterImage, ProtocolError, TrainDir};

/// Verifies `a.dir` and prints the report; a failed check is a rejection (exit 3).
pub fn run(a: &VerifyArgs) -> Result<()> {
    let trust = trust(&a.trust)?;
    let mut image_checks = None;
    let (_work, dir) = match as_image(&a.dir)? {
        None => {
            if a.master.is_some() {
                anyhow::bail!("--master applies to image references, not directories");
            }
            (None, a.dir.clone())
        }
        Some(r) => {
            let (work, pulled, checks) = verify_image(&r, a.master.as_deref(), &a.reg)?;
            image_checks = Some(checks);
            (Some(work), pulled)
        }
    };
    let mut rep = TrainDir::open(&dir)?.verify(&trust)?;
    if let Some(checks) = image_checks {
        let proto = std::mem::take(&mut rep.checks);
        rep.checks = checks;
        rep.checks.extend(proto);
    }
    if a.json {
        let mut v = serde_json::to_value(&rep)?;
        v["ok"] = rep.ok().into();
        pht_term::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        pht_term::outln!(
            "{} train {} — route: {} — {} stops done",
            rep.format,
            rep.train_id,
            rep.route.join(" → "),
            rep.stops_done
        );
        for c in &rep.checks {
            pht_term::outln!(
                "  [{}] {}: {}",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    if !rep.ok() {
        let failed: Vec<_> = rep
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        return Err(
            ProtocolError::Rejected(train_lib::Rejection::WrongState(format!(
                "verification failed: {}",
                failed.join(", ")
            )))
            .into(),
        );
    }
    Ok(())
}

/// Pulls `r` and runs the image checks on it; the protocol's checks follow on the directory.
fn verify_image(
    r: &ImageRef,
    master: Option<&str>,
    reg: &RegistryArgs,
) -> Result<(tempfile::TempDir, PathBuf, Vec<Check>)> {
    let registry = reg.registry();
    let rt = runtime()?;
    let work = tempfile::Builder::new().prefix("pht-train-").tempdir()?;
    let (bars, cancel) = (
        pht_term::Bars::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let opts = pull_options(&bars, &cancel);
    let pulled = rt.block_on(image::pull_train(&registry, r, work.path(), opts))?;
    let signed = match TrainDir::open(&pulled.dir).and_then(|t| t.master_image()) {
        Ok(MasterImage::Signed(d)) => Some(d),
        _ => None,
    };
    let master: Option<ImageRef> = master.map(str::parse).transpose()?;
    let checked = rt.block_on(image::check_image(
        &registry,
        &pulled,
        signed.as_deref(),
        master.as_ref(),
        work.path(),
        opts,
    ));
    let checks = checked
        .checks
        .into_iter()
        .map(|c| {
            let (ok, detail) = match c.result {
                Ok(d) => (true, d),
                Err(e) => (false, e.to_string()),
            };
            Check {
                name: c.name.into(),
                ok,
                detail,
            }
        })
        .collect();
    let dir = pulled.dir.clone();
    Ok((work, dir, checks))
}
