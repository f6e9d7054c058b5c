//! `train submit`: a pushed train image handed to the route service with its signed route.

use super::route;
use crate::cli::SubmitArgs;
use crate::support::{pull_with, runtime};
use anyhow::{Context, Result};
use train_image::ImageRef;
use train_lib::keys::TrustStore;
use train_lib::TrainDir;

/// Submits `a.image`.
pub fn run(a: &SubmitArgs) -> Result<()> {
    let client = route::required(&a.route, None)?;
    let r: ImageRef = a
        .image
        .parse()
        .with_context(|| format!("`{}` is not an image reference", a.image))?;
    let rt = runtime()?;
    // The route is what the creator signed: read it from the image rather than typed again.
    let reg = route::registry_for(&a.reg, &client, route::api_key(&a.route)?, r.registry());
    let (_work, pulled) =
        pull_with(&rt, &reg, &r).with_context(|| format!("reading the train image {r}"))?;
    let report = TrainDir::open(&pulled.dir)?.verify(&TrustStore::default())?;
    let pinned = pulled.pinned.reference.to_string();
    let route = report
        .route
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<route_wire::StationId>, _>>()
        .context("the train's route names a station id the route service cannot route to")?;
    let v = rt.block_on(client.submit(&pinned, &route))?;
    if a.json {
        pht_term::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        pht_term::outln!("{}", v.id);
        eprintln!(
            "submitted train {} ({}) along {}; follow it with: train status {} --follow",
            v.id,
            v.format,
            v.route
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" → "),
            v.id
        );
    }
    Ok(())
}
