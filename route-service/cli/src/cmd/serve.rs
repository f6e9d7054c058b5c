//! `route-service serve`.

use crate::cli::ServeArgs;
use anyhow::{Context, Result};
use route_service::serve::Service;
use tokio_util::sync::CancellationToken;

pub async fn run(a: ServeArgs) -> Result<()> {
    let mut cfg = super::config(&a.db)?;
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(s) = a.reconcile_secs {
        cfg.mover.reconcile_secs = s;
    }
    if let Some(s) = a.lease_secs {
        cfg.mover.lease_secs = s;
    }
    cfg.load_secrets()?;
    cfg.validate()?;
    // Connections are file descriptors; the soft limit (often 1,024) is for programs that
    // never asked. The cap follows what is raised here (route_service::capacity).
    let (before, after) = route_service::capacity::raise_file_limit();
    if before != after {
        tracing::info!(
            from = before.map_or("unlimited".into(), |l| l.to_string()),
            to = after.map_or("unlimited".into(), |l| l.to_string()),
            "raised the open-file limit to its hard limit"
        );
    }
    for r in cfg.registries.iter().filter(|r| r.secret.is_none()) {
        tracing::warn!(registry = %r.address, "no notification secret: its notifications are refused; only reconciliation sees its pushes");
    }
    let svc = Service::bind(cfg)
        .await
        .context("starting the route service")?;
    eprintln!("route-service: listening on http://{}", svc.addr());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping: no new work; finishing or releasing moves in hand");
        s.cancel();
    });
    svc.run(stop).await?;
    Ok(())
}
