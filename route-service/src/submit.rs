//! Verification of a submitted train, with no private key: the image is read with the image
//! library (the station's own reader, so the same limits apply), its image checks and every
//! protocol check that needs no private key run with the creator's and the route's registered
//! keys pinned, and the signed route must be the submitted route with no stop done yet.

use crate::db::{CreatorRow, Db, DbError, NewTrain};
use route_wire::{Digest, Format, Repo, SubmitTrain, TrainId};
use std::path::Path;
use tokio_util::sync::CancellationToken;
use train_image::{self as image, ImageError, ImageRef, PullOptions, ReadLimits, Registry, Silent};
use train_lib::{keys::TrustStore, MasterImage, TrainDir};

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// A check failed (422, naming the check).
    #[error("{check}: {detail}")]
    Rejected {
        /// The check.
        check: String,
        /// What it found.
        detail: String,
    },
    /// The registry could not be read (502): nothing is known about the train yet.
    #[error("reading the image: {0}")]
    Registry(ImageError),
    /// The state store failed, or the train id is taken.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn reject(check: &str, detail: impl Into<String>) -> SubmitError {
    SubmitError::Rejected {
        check: check.into(),
        detail: detail.into(),
    }
}

/// Verifies `req` from `creator` and returns the train to store.
pub async fn verify(
    db: &Db,
    reg: &Registry,
    creator: &CreatorRow,
    req: &SubmitTrain,
    work: &Path,
) -> Result<NewTrain, SubmitError> {
    let r: ImageRef = req
        .image
        .parse()
        .map_err(|e| reject("image reference", format!("`{}`: {e}", req.image)))?;
    let submissions = route_wire::repository(&creator.namespace, Repo::Submissions);
    if r.registry() != creator.registry || r.repository() != submissions {
        return Err(reject(
            "submission repository",
            format!(
                "{} is not your submissions repository; push the train to {}/{submissions} and submit that",
                req.image, creator.registry
            ),
        ));
    }
    if req.route.is_empty() {
        return Err(reject("route", "the route is empty"));
    }
    let mut stations = Vec::new();
    for id in &req.route {
        match db.station(id).await? {
            Some(s) => stations.push(s),
            None => {
                return Err(reject(
                    "route",
                    format!(
                        "station `{id}` is not registered; `GET /v1/stations` lists those that are"
                    ),
                ))
            }
        }
    }
    // An image that is not there is the creator's to fix (422), not registry trouble (502).
    // It is also what a second submission of a train finds once the first was moved on: the
    // service removes a submission after moving it.
    match reg.try_resolve(&r).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(reject(
                "image reference",
                format!(
                    "{} is not in the registry (a train already submitted is removed from \
                     submissions once moved); push it, then submit",
                    req.image
                ),
            ))
        }
        Err(e) => return Err(SubmitError::Registry(e)),
    }
    let cancel = CancellationToken::new();
    let opts = || PullOptions {
        reporter: &Silent,
        limits: ReadLimits::default(),
        cancel: &cancel,
    };
    let pulled = image::pull_train(reg, &r, work, opts())
        .await
        .map_err(|e| {
            if e.is_rejection() {
                reject("image layers", e.to_string())
            } else if e.is_not_found() {
                // Removed between the lookup and the read: a second submission racing the
                // first one's move (which removes the submission).
                reject(
                    "image reference",
                    format!("{} is no longer in the registry (a train already submitted is removed from submissions once moved): {e}", req.image),
                )
            } else {
                SubmitError::Registry(e)
            }
        })?;
    let dir = TrainDir::open(&pulled.dir).map_err(|e| reject("configuration", e.to_string()))?;
    let signed = match dir.master_image() {
        Ok(MasterImage::Signed(d)) => Some(d),
        _ => None,
    };
    let checked = image::check_image(reg, &pulled, signed.as_deref(), None, work, opts()).await;
    for c in checked.checks {
        match c.result {
            Ok(_) => {}
            Err(e) if e.is_rejection() => return Err(reject(c.name, e.to_string())),
            // The registry failed, the image did not: 502, submit again.
            Err(e) => return Err(SubmitError::Registry(e)),
        }
    }
    let pins: Vec<(&str, &str)> = stations
        .iter()
        .map(|s| (s.id.as_str(), s.fingerprint.as_str()))
        .collect();
    let trust = TrustStore::pinned(&[(&creator.id, &creator.fingerprint)], &pins);
    let rep = dir
        .verify(&trust)
        .map_err(|e| reject("configuration", e.to_string()))?;
    if let Some(c) = rep.checks.iter().find(|c| !c.ok) {
        return Err(reject(&c.name, c.detail.clone()));
    }
    if rep.creator != creator.id.as_str() {
        return Err(reject(
            "creator",
            format!(
                "the train is signed by creator `{}`, not by you (`{}`)",
                rep.creator, creator.id
            ),
        ));
    }
    if !rep.route.iter().eq(req.route.iter().map(|s| s.as_str())) {
        let submitted: Vec<&str> = req.route.iter().map(|s| s.as_str()).collect();
        return Err(reject(
            "route",
            format!(
                "the signed route is {} but the submitted route is {}",
                rep.route.join(" → "),
                submitted.join(" → ")
            ),
        ));
    }
    // The train id is an image tag at every stop: the id grammar of docs/protocol.md.
    let id: TrainId = rep.train_id.parse().map_err(|e| {
        reject(
            "train id",
            format!("{e}; the service routes only trains whose id is a valid tag"),
        )
    })?;
    if rep.stops_done != 0 {
        return Err(reject(
            "state",
            format!(
                "{} stops are done already; submit the train as created",
                rep.stops_done
            ),
        ));
    }
    let format: Format = rep
        .format
        .parse()
        .map_err(|e: String| reject("format", e))?;
    let target = |registry: &str, namespace: &str, repo: Repo| {
        ImageRef::tagged(registry, &route_wire::repository(namespace, repo), &id)
            .map_err(|e| reject("registry", e.to_string()))
    };
    let mut targets = Vec::new();
    for s in &stations {
        targets.push((
            Some(s.id.clone()),
            target(&s.registry, &s.namespace, Repo::Inbox)?,
        ));
    }
    targets.push((
        None,
        target(&creator.registry, &creator.namespace, Repo::Results)?,
    ));
    let digest = Digest::parse(&pulled.pinned.digest).map_err(|e| {
        SubmitError::Registry(ImageError::Unsupported {
            reference: r.to_string(),
            reason: e.to_string(),
        })
    })?;
    Ok(NewTrain {
        detail: format!(
            "{format} train {id} verified: {} checks passed; image {digest}",
            rep.checks.len(),
        ),
        id,
        creator: creator.id.clone(),
        format,
        route: req.route.clone(),
        source: r.with_digest(&digest),
        digest,
        targets,
    })
}
