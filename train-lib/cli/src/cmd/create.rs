//! `train create`: an encrypted train directory, ready for its first station.

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
    let mut route: Vec<(String, PublicKey)> = Vec::new();
    for s in &a.stations {
        let (id, path) = s
            .split_once('=')
            .with_context(|| format!("--station `{s}`: expected ID=PUBLIC_KEY.pem"))?;
        route.push((id.to_string(), public_key_from_file(Path::new(path))?));
    }
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
