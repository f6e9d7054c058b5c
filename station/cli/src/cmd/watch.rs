//! `station watch`: the station's daemon (the loop is `station::watch`).

use super::service::Ctx;
use super::{load_key, on_signals, Ended};
use crate::cli::WatchArgs;
use crate::ui;
use anyhow::{Context, Result};
use station::watch;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Watches until SIGTERM or Ctrl-C.
pub async fn run(a: WatchArgs) -> Result<Ended> {
    let mut ctx = Ctx::load(&a.service)?;
    if let Some(n) = a.concurrency {
        ctx.cfg.watch.concurrency = n;
    }
    ctx.cfg.watch.data.extend(a.data);
    if ctx.cfg.watch.registries.is_empty() {
        anyhow::bail!(
            "[watch] registries is empty: name the registries (host:port) of this station's inbox and outbox, e.g. registries = [\"registry.example.org\"]; the station sends its API key to those only"
        );
    }
    let client = ctx.client()?;
    let api_key = ctx.cfg.watch.api_key()?;
    let key_path = ctx.cfg.station.key.clone().context(
        "no station key: set [station] key in the config (`station keys create` makes one)",
    )?;
    let pw = ctx.cfg.station.key_password_env.clone();
    let key = load_key(&key_path, pw.as_deref())?;
    let engine = super::engine::connect(&ctx.cfg).await?;
    let stop = CancellationToken::new();
    let signals = tokio::spawn(on_signals(stop.clone()));
    let live = Arc::new(watch::live::LiveRuns::default());
    let tmp = std::env::temp_dir();
    let dashboard = match a.ui {
        Some(addr) => {
            ui::check_addr(addr, a.ui_remote)?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("the dashboard cannot listen on {addr} (--ui): is another program on that port?"))?;
            let state = Arc::new(ui::Ui::new(
                ctx.station.clone(),
                ctx.client()?,
                ctx.cfg.clone(),
                live.clone(),
                api_key.clone(),
                key_path.clone(),
                tmp.clone(),
            ));
            eprintln!(
                "station dashboard on http://{}/ (sign in with this station's API key)",
                listener.local_addr().unwrap_or(addr)
            );
            Some(tokio::spawn(ui::serve(listener, state, stop.child_token())))
        }
        None => None,
    };
    let req = watch::WatchRequest {
        station: ctx.station.clone(),
        key_path,
        key_password_env: pw,
        key: Arc::new(key),
        api_key,
        config: ctx.cfg,
        client,
        tmp,
        live,
    };
    let out = watch::watch(&engine, req, stop.clone()).await;
    signals.abort();
    // The dashboard ends with the watcher, whatever ended it.
    stop.cancel();
    if let Some(d) = dashboard {
        let _ = d.await;
    }
    out?;
    eprintln!("station watch stopped; runs in hand were reported interrupted and run again at the next start");
    Ok(Ended::Ok)
}
