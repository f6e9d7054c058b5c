//! One file per subcommand.

mod admin;
mod probe;
mod serve;

use crate::cli::{Cmd, DbArgs};
use anyhow::{Context, Result};
use route_service::{Config, Db};

pub fn run(cmd: Cmd) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        Cmd::Serve(a) => rt.block_on(serve::run(a)),
        Cmd::Openapi => {
            pht_term::outln!(
                "{}",
                serde_json::to_string_pretty(&route_service::api::openapi())?
            );
            Ok(())
        }
        Cmd::Admin(c) => rt.block_on(admin::admin(c)),
        Cmd::Station(c) => rt.block_on(admin::station(c)),
        Cmd::Creator(c) => rt.block_on(admin::creator(c)),
        Cmd::Probe(a) => rt.block_on(probe::run(a)),
    }
}

/// The configuration from `--config` (or defaults), with `--database` applied.
pub fn config(a: &DbArgs) -> Result<Config> {
    let mut cfg = match &a.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(d) = &a.database {
        cfg.database = d.clone();
    }
    Ok(cfg)
}

/// The database of `a`, opened and migrated.
pub async fn open(a: &DbArgs) -> Result<Db> {
    let cfg = config(a)?;
    cfg.validate()?;
    Ok(Db::open(&cfg.database).await?)
}
