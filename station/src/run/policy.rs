//! The station's policy on a pulled train: which master image it may run on, which creators it
//! accepts, and what the container runs.
//!
//! The image's configuration (labels, `Entrypoint`, `Cmd`, `Env`) is covered by no signature.
//! A native train's creator signs its master's digest, so the label must agree and lineage by
//! layer digests proves the image is built on it. A legacy train signs no master: whoever
//! rebases its (validly signed) train layer onto a master of their own would have the station
//! run their entrypoint on its data. So a train whose master is not signed runs only on a
//! master the station's own policy names, proven by lineage; with no policy it is refused.

use super::outcome::{image, protocol, rejected, Failure};
use crate::config::StationConfig;
use std::path::Path;
use train_image::{self as img, ImageRef, ProvenMaster, PullOptions, PulledTrain, Registry};
use train_lib::{layout, MasterImage, TrainDir, VerifyReport};

/// The message for a train whose master nobody signed, on a station without a policy.
pub const UNSIGNED_NEEDS_POLICY: &str = "its master image is not signed by its creator (legacy trains and native trains built without one), so this station runs it only on a master its policy names; set [policy] allowed_masters in station.toml to the master repositories you accept (e.g. allowed_masters = [\"registry.example.org/master/python\"]) or to exact `repo@sha256:…` images";

/// Finds the train's master, checks it against the policy, and runs the image checks (the
/// signed master against the label, lineage, the base layers not proven to be the master's):
/// the same checks as `train verify REF --master`.
pub async fn master(
    reg: &Registry,
    cfg: &StationConfig,
    pulled: &PulledTrain,
    train: &TrainDir,
    work: &Path,
    opts: PullOptions<'_>,
) -> Result<ProvenMaster, Failure> {
    let label = pulled.config.label(img::LABEL_MASTER);
    let label_repo = pulled.config.label(img::LABEL_MASTER_REPO);
    let (reference, signed) = match train.master_image().map_err(protocol)? {
        MasterImage::Signed(d) => {
            // The label must say the same (checked before anything is fetched by it); the
            // repository label is only where to find the master.
            img::signed_master_is_labelled(pulled, &d).map_err(image)?;
            let repo = label_repo.ok_or_else(|| {
                rejected(
                    "the image does not say where its master is (label org.pht.master.repository)",
                )
            })?;
            (format!("{repo}@{d}"), Some(d))
        }
        claim => {
            if cfg.policy.allowed_masters.is_empty() {
                return Err(rejected(format!(
                    "a {} train: {UNSIGNED_NEEDS_POLICY}",
                    train.format()
                )));
            }
            match (label_repo, label, claim) {
                (Some(repo), Some(d), _) => (format!("{repo}@{d}"), None),
                (_, _, MasterImage::Claimed(r)) => (r, None),
                _ => return Err(rejected(
                    "the image names no master image (labels org.pht.master.digest and org.pht.master.repository, or the legacy configuration's source), and this station allows only the masters its policy names",
                )),
            }
        }
    };
    let r: ImageRef = reference.parse().map_err(|e| {
        rejected(format!(
            "the train's master image `{reference}` is not an image reference: {e}"
        ))
    })?;
    let pinned = reg.resolve(&r).await.map_err(image)?;
    let repo = format!("{}/{}", r.registry(), r.repository());
    let allowed = if signed.is_some() {
        cfg.master_allowed(&r, &pinned.digest)
    } else {
        cfg.policy_names_master(&r, &pinned.digest)
    };
    if !allowed {
        return Err(rejected(format!(
            "master image {repo}@{} is not allowed by this station's policy (policy.allowed_masters)",
            pinned.digest
        )));
    }
    let checked = img::check_image(
        reg,
        pulled,
        signed.as_deref(),
        Some(&pinned.reference),
        work,
        opts,
    )
    .await;
    checked
        .into_result()
        .map_err(image)?
        .ok_or_else(|| rejected("no master was proven"))
}

/// Refuses a creator the policy does not list.
pub fn creator(cfg: &StationConfig, report: &VerifyReport) -> Result<(), Failure> {
    let allowed = &cfg.policy.allowed_creators;
    if !allowed.is_empty() && !allowed.contains(&report.creator) {
        return Err(rejected(format!(
            "creator `{}` is not allowed by this station's policy (policy.allowed_creators)",
            crate::output::escape(&report.creator)
        )));
    }
    Ok(())
}

/// What the container runs.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The image run (the verified master, by digest).
    pub image: String,
    /// Its registry (for the engine's pull credentials).
    pub registry: String,
    /// The master's entrypoint (its interpreter).
    pub entrypoint: Option<Vec<String>>,
    /// The train's entrypoint file.
    pub cmd: Vec<String>,
}

/// The verified master image, with its interpreter and the train's entrypoint file: the one
/// the creator signed (native), or the image's `CMD` checked to name one of the train's files
/// (legacy).
pub fn launch(
    pulled: &PulledTrain,
    train: &TrainDir,
    master: &ProvenMaster,
) -> Result<Launch, Failure> {
    let file = match train.entrypoint().map_err(protocol)? {
        Some(f) => f,
        None => {
            let cmd = pulled.config.cmd();
            match cmd.as_slice() {
                [one] => layout::train_file_from_container(one)
                    .map(String::from)
                    .ok_or_else(|| {
                        rejected(format!(
                            "the image's CMD `{}` is not a file under /opt/pht_train",
                            crate::output::escape(one)
                        ))
                    })?,
                _ => {
                    return Err(rejected(format!(
                        "the image's CMD {} must be exactly one train file under /opt/pht_train",
                        crate::output::escape(&format!("{cmd:?}"))
                    )))
                }
            }
        }
    };
    train_lib::tree::check_rel_path(&file).map_err(|e| rejected(format!("entrypoint: {e}")))?;
    if !train.path().join(layout::TRAIN_DIR).join(&file).is_file() {
        return Err(rejected(format!(
            "the entrypoint pht_train/{file} is not one of the train's files"
        )));
    }
    Ok(Launch {
        image: master.pinned.reference.to_string(),
        registry: master.pinned.reference.registry().to_string(),
        entrypoint: Some(master.config.entrypoint()),
        cmd: vec![layout::train_file_in_container(&file)],
    })
}
