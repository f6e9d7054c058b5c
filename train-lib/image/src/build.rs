//! Building a train image, with its rules: a native train runs the entrypoint its creator
//! signed and records the master it is built on in its signed configuration (re-signed by the
//! creator if it was not recorded at creation); a legacy train names its entrypoint here. The
//! `train` command and the route service build the same way.

use super::assemble::LABEL_TRAIN_ID;
use super::progress::Reporter;
use super::push::{build_train_image, PushReport};
use super::registry::{Pinned, Registry};
use super::{ImageError, ImageRef};
use std::path::Path;
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{Format, MasterImage, ProtocolError, TrainDir};

/// Why a build was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A rule of building was not met (the message says what to pass or do).
    #[error("{0}")]
    Rule(String),
    /// The train directory failed a check or could not be read.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The registry side failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl BuildError {
    /// Whether the train or an image was refused (exit 3), as for the errors it wraps.
    pub fn is_rejection(&self) -> bool {
        match self {
            BuildError::Rule(_) => false,
            BuildError::Protocol(e) => e.rejection().is_some(),
            BuildError::Image(e) => e.is_rejection(),
        }
    }
}

/// What to build.
#[derive(Debug)]
pub struct BuildRequest<'a> {
    /// The train directory (as `train create` wrote it).
    pub dir: &'a Path,
    /// The master image.
    pub master: &'a ImageRef,
    /// Where to push the train image.
    pub tag: &'a ImageRef,
    /// The entrypoint file under `pht_train`: required for legacy trains, checked against the
    /// signed one for native trains.
    pub entrypoint: Option<&'a str>,
    /// The creator's key, to record the master in a native train that has none signed.
    pub creator_key: Option<&'a PrivateKey>,
    /// The builder's key, when the native train carries a builder countersignature.
    pub builder_key: Option<&'a PrivateKey>,
}

/// What a build made.
#[derive(Debug)]
pub struct Built {
    /// The master, pinned.
    pub master: Pinned,
    /// The push.
    pub report: PushReport,
}

/// Builds the train image of `req.dir` on `req.master` and pushes it to `req.tag`.
pub async fn build(
    reg: &Registry,
    req: &BuildRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<Built, BuildError> {
    let pinned = reg.resolve(req.master).await?;
    let train = TrainDir::open(req.dir)?;
    let entry = match (train.format(), req.entrypoint) {
        (Format::Legacy, Some(e)) => e.to_string(),
        (Format::Legacy, None) => {
            return Err(BuildError::Rule(
                "legacy trains do not name their entrypoint: pass --entrypoint REL".into(),
            ))
        }
        (_, given) => {
            let signed = train
                .entrypoint()?
                .expect("a native train signs its entrypoint");
            if let Some(g) = given.filter(|g| *g != signed) {
                return Err(BuildError::Rule(format!(
                    "--entrypoint {g} differs from the signed entrypoint {signed}"
                )));
            }
            match train.master_image()? {
                MasterImage::Signed(d) if d == pinned.digest => {}
                MasterImage::Signed(d) => {
                    return Err(BuildError::Rule(format!(
                        "the train's creator signed master image {d}, but {} is {}; build on that master, or recreate the train",
                        req.master, pinned.digest
                    )))
                }
                _ => {
                    let ck = req.creator_key.ok_or_else(|| BuildError::Rule(
                        "this native train has no signed master image: pass --creator-key to record it, or create the train with --master-image DIGEST".into(),
                    ))?;
                    train_lib::native::record_master_image(
                        req.dir,
                        &pinned.digest,
                        ck,
                        req.builder_key,
                    )?;
                }
            }
            signed
        }
    };
    train_lib::tree::check_rel_path(&entry)
        .map_err(|e| ProtocolError::from(train_lib::Rejection::from(e)))?;
    let train_id = TrainDir::open(req.dir)?
        .verify(&TrustStore::default())?
        .train_id;
    let cmd = vec![train_lib::layout::train_file_in_container(&entry)];
    let report = build_train_image(
        reg,
        req.dir,
        &pinned,
        req.tag,
        cmd,
        &[(LABEL_TRAIN_ID, &train_id)],
        reporter,
    )
    .await?;
    Ok(Built {
        master: pinned,
        report,
    })
}
