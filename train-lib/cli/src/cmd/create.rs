//! `train create`: an encrypted train directory, ready for its first station.

use super::route;
use crate::cli::{Cli, CreateArgs};
use crate::support::{load_key, print_step};
use anyhow::{Context, Result};
use std::path::Path;
use train_lib::keys::{public_key_from_file, PublicKey};
use train_lib::{CreateSpec, Format};

/// Creates the train `a.out`.
pub fn run(a: &CreateArgs, cli: &Cli) -> Result<()> {
    let creator = load_key(&a.creator_key, cli)?;
    let builder = a
        .builder_key
        .as_ref()
        .map(|p| load_key(p, cli))
        .transpose()?;
    let route = route_keys(a)?;
    let spec = CreateSpec {
        files: &a.files,
        entrypoint: &a.entrypoint,
        creator_id: &a.creator_id,
        creator_key: &creator,
        stations: route,
        query: a.query.as_deref(),
        builder_key: builder.as_ref(),
        train_id: a.train_id.clone(),
        proposal_id: a.proposal_id.clone(),
        master_image: a.master_image.clone(),
    };
    let format: Format = a.format.parse().map_err(anyhow::Error::msg)?;
    let r = train_lib::create(&spec, format, &a.out)?;
    print_step("created", &r, false);
    Ok(())
}

/// The route's keys: from files (`ID=PUB.pem`), or from the route service (`ID`), each
/// fetched key checked against `--pin ID=FINGERPRINT` when one is given.
fn route_keys(a: &CreateArgs) -> Result<Vec<(String, PublicKey)>> {
    let client = route::client(&a.route, Some(&a.creator_id))?;
    let mut pins = std::collections::HashMap::new();
    for p in &a.pins {
        let (id, fp) = p
            .split_once('=')
            .with_context(|| format!("--pin `{p}`: expected ID=sha256:…"))?;
        pins.insert(id.to_string(), fp.to_string());
    }
    let rt = crate::support::runtime()?;
    let mut route = Vec::new();
    for s in &a.stations {
        if let Some((id, path)) = s.split_once('=') {
            route.push((id.to_string(), public_key_from_file(Path::new(path))?));
            continue;
        }
        let c = client.as_ref().with_context(|| {
            format!("--station `{s}`: give ID=PUBLIC_KEY.pem, or --route-service URL to fetch the key of {s}")
        })?;
        let station: route_wire::StationId = s
            .parse()
            .map_err(|e| anyhow::anyhow!("--station `{s}`: {e}"))?;
        let held = rt.block_on(c.station_key(&station))?;
        let key = train_lib::keys::public_key_from_text(held.public_key.as_bytes(), "public key")?;
        // The service's answer is checked, not trusted: its fingerprint must be the key's.
        anyhow::ensure!(
            key.fingerprint() == held.fingerprint,
            "the route service sent a key for {s} whose fingerprint is {}, not the {} it claims",
            key.fingerprint(),
            held.fingerprint
        );
        if let Some(want) = pins.remove(s.as_str()) {
            anyhow::ensure!(
                want == held.fingerprint,
                "the route service holds key {} for station {s}, but you pinned {want}: the train was not created. Ask {s}'s operator for its fingerprint (`station keys show`) before you trust either",
                held.fingerprint
            );
        } else {
            eprintln!(
                "station {s}: key {} from the route service (pin it with --pin {s}=… to check it)",
                held.fingerprint
            );
        }
        route.push((s.clone(), key));
    }
    if let Some(id) = pins.keys().next() {
        anyhow::bail!("--pin {id}=…: {id} is not a --station fetched from the route service");
    }
    Ok(route)
}
