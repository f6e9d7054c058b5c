//! `train results`: the creator's decrypted results, from a directory or a final image.

use super::route;
use crate::cli::{Cli, ResultsArgs};
use crate::support::{as_image, load_key, print_step, pull_image, pull_with, runtime, trust};
use anyhow::Result;
use train_lib::TrainDir;

/// Decrypts the results of `a.dir` into `a.out`.
pub fn run(a: &ResultsArgs, cli: &Cli) -> Result<()> {
    let key = load_key(&a.key, cli)?;
    let trust = trust(&a.trust)?;
    let (_work, dir) = match train_id(a) {
        Some(id) => {
            let (work, d) = from_service(a, id)?;
            (Some(work), d)
        }
        None => match as_image(&a.dir)? {
            None => (None, a.dir.clone()),
            Some(r) => {
                let (work, d) = pull_image(&r, &a.reg)?;
                (Some(work), d)
            }
        },
    };
    let r = TrainDir::open(&dir)?.results(&key, &trust, &a.out)?;
    print_step(
        &format!("results written to {}", a.out.display()),
        &r,
        a.json,
    );
    Ok(())
}

/// With a route service, an argument that is not a path and holds no `/` is a train id.
fn train_id(a: &ResultsArgs) -> Option<&str> {
    let s = a.dir.to_str()?;
    (a.route.url.is_some() && !a.dir.exists() && !s.contains('/')).then_some(s)
}

/// The finished train `id`, found through the route service and pulled from the creator's
/// results repository (logging in with the creator's API key).
fn from_service(a: &ResultsArgs, id: &str) -> Result<(tempfile::TempDir, std::path::PathBuf)> {
    let client = route::required(&a.route, None)?;
    let rt = runtime()?;
    let id: route_wire::TrainId = id.parse()?;
    let v = rt.block_on(client.train(&id))?;
    let Some(results) = v
        .results
        .filter(|_| v.state == route_wire::TrainState::Finished)
    else {
        anyhow::bail!(
            "train {id} is {}{}: its results exist once it is finished (`train status {id} --follow`)",
            v.state,
            v.reason.map(|r| format!(" ({r})")).unwrap_or_default()
        );
    };
    let r: train_image::ImageRef = results.parse()?;
    let reg = route::registry_for(&a.reg, &client, route::api_key(&a.route)?, r.registry());
    let (work, pulled) = pull_with(&rt, &reg, &r)?;
    let dir = pulled.dir;
    Ok((work, dir))
}
