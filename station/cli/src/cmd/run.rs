//! `station run`: one train through the station pipeline, its summary printed.

use super::{load_key, on_signals, Ended};
use crate::cli::RunArgs;
use anyhow::{Context, Result};
use station::{config, events, run};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use train_image::ImageRef;

/// Runs the train `a.reference` at this station.
pub async fn run(a: RunArgs) -> Result<Ended> {
    let mut cfg = match &a.config {
        Some(p) => config::StationConfig::load(p)?,
        None => config::StationConfig::default(),
    };
    cfg.registry.insecure.extend(a.insecure);
    let station = a
        .station
        .or_else(|| cfg.station.id.clone())
        .context("no station id: pass --station, set STATION_ID, or [station] id in the config")?;
    let key_path = a.key.or_else(|| cfg.station.key.clone()).context(
        "no station key: pass --key, set STATION_PRIVATE_KEY_PATH, or [station] key in the config",
    )?;
    let pw_env = a
        .key_password_env
        .or_else(|| cfg.station.key_password_env.clone());
    let key = load_key(&key_path, pw_env.as_deref())?;
    let reference: ImageRef = a.reference.parse()?;
    let push = a.push.map(|p| p.parse::<ImageRef>()).transpose()?;
    let quiet = a.quiet || a.json;
    let bars: Box<dyn train_image::Reporter> = if quiet {
        Box::new(train_image::Silent)
    } else {
        Box::new(pht_term::Bars::default())
    };
    let req = run::RunRequest {
        reference,
        station,
        key: Arc::new(key),
        push,
        data: a.data,
        config: cfg,
        events: Arc::new(events::Stderr::new(quiet, bars)),
        tmp: std::env::temp_dir(),
        credentials: Vec::new(),
    };
    let engine = super::engine::connect(&req.config).await?;
    // Ctrl-C or SIGTERM cancels the job: it stops at its next step (an engine call in flight
    // is waited for), removes its container, volume, disk and work directory, and records
    // `interrupted`. A second signal exits at once; the next start of the station removes what
    // that left.
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(on_signals(cancel.clone()));
    let mut summary = run::Summary::default();
    let out = run::run(&engine, &req, &cancel, &mut summary).await;
    watcher.abort();
    if a.json {
        pht_term::outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else if out.is_ok() {
        pht_term::outln!(
            "pushed {} ({:.2} s: pull {:.2}, pre-run {:.2}, run {:.2}, post-run {:.2}, push {:.2})",
            summary.pushed_to.as_deref().unwrap_or("?"),
            summary.seconds.total,
            summary.seconds.pull,
            summary.seconds.pre_run,
            summary.seconds.run,
            summary.seconds.post_run,
            summary.seconds.push
        );
    }
    Ok(match out {
        Ok(()) => Ended::Ok,
        Err(e) => Ended::Failed(e.decision(), e.to_string()),
    })
}
