//! The image checks, once, for `train verify REF` and `station run` alike: the master its
//! creator signed against the image's label, lineage by layer digests against a master, and the
//! base layers that are not proven to be that master's read for content under the train paths.
//! The verifier reports every check; the station stops at the first that fails.

use super::assemble::{ImageConfig, LABEL_MASTER};
use super::lineage::lineage;
use super::pull::{scan_base_layers, PullOptions, PulledTrain};
use super::registry::{Pinned, Registry};
use super::{ImageError, ImageRef};
use std::path::Path;

/// One image check and how it went.
#[derive(Debug)]
pub struct ImageCheck {
    /// What was checked.
    pub name: &'static str,
    /// What it found, or why it failed.
    pub result: Result<String, ImageError>,
}

/// A master image the train was proven to descend from.
#[derive(Debug, Clone)]
pub struct ProvenMaster {
    /// The master, pinned.
    pub pinned: Pinned,
    /// Its configuration (its `Entrypoint` is the interpreter a train runs under).
    pub config: ImageConfig,
    /// How many of the train's base layers are the master's.
    pub layers: usize,
}

/// The checks of one image.
#[derive(Debug)]
pub struct Checked {
    /// Every check, in order.
    pub checks: Vec<ImageCheck>,
    /// The master, when one was given and lineage held.
    pub master: Option<ProvenMaster>,
}

impl Checked {
    /// The master, or the first check's error.
    pub fn into_result(self) -> Result<Option<ProvenMaster>, ImageError> {
        for c in self.checks {
            c.result?;
        }
        Ok(self.master)
    }
}

/// That the image's label names the master its creator signed (`signed`, a digest).
pub fn signed_master_is_labelled(pulled: &PulledTrain, signed: &str) -> Result<(), ImageError> {
    let label = pulled.config.label(LABEL_MASTER);
    if label == Some(signed) {
        Ok(())
    } else {
        Err(ImageError::Lineage(format!(
            "the image is labelled as built on {label:?} but its creator signed master image {signed:?}"
        )))
    }
}

/// Checks the pulled image `pulled`: that its label names the master its creator signed
/// (`signed`, for a native train), that it descends from `master` (when given), and that no
/// base layer not proven to be `master`'s holds content under the train paths.
pub async fn check_image(
    reg: &Registry,
    pulled: &PulledTrain,
    signed: Option<&str>,
    master: Option<&ImageRef>,
    work: &Path,
    opts: PullOptions<'_>,
) -> Checked {
    let mut checks = vec![ImageCheck {
        name: "image layers",
        result: Ok(format!(
            "{}: {} base layers, {} train layer(s) touching only the train paths",
            pulled.pinned.digest,
            pulled.base_count,
            pulled.pinned.manifest.layers.len() - pulled.base_count
        )),
    }];
    if let Some(signed) = signed {
        checks.push(ImageCheck {
            name: "signed master image",
            result: signed_master_is_labelled(pulled, signed).map(|()| signed.to_string()),
        });
    }
    let mut proven = None;
    match master {
        None => checks.push(ImageCheck {
            name: "lineage",
            result: Ok("not checked (pass --master REF)".into()),
        }),
        Some(m) => {
            let result = async {
                let pinned = reg.resolve(m).await?;
                let config = reg.config(&pinned).await?;
                let l = lineage(pulled, &pinned, &config)?;
                let detail = format!(
                    "the train's base layers start with exactly the {} layers of {} ({})",
                    l.master_layers, m, pinned.digest
                );
                proven = Some(ProvenMaster {
                    pinned,
                    config,
                    layers: l.master_layers,
                });
                Ok(detail)
            }
            .await;
            checks.push(ImageCheck {
                name: "lineage",
                result,
            });
        }
    }
    let skip = proven.as_ref().map_or(0, |p| p.layers);
    let scanned = scan_base_layers(reg, pulled, skip, work, opts).await;
    checks.push(ImageCheck {
        name: "base layers",
        result: scanned.map(|n| {
            format!("{n} base layer(s) not proven to be the master's read; none touches the train paths")
        }),
    });
    Checked {
        checks,
        master: proven,
    }
}
