//! The engine `[engine] kind` names: Docker (default), or Kubernetes in a binary built with the
//! cargo feature `kubernetes` (`cargo build --release -p station-cli --features kubernetes`).
//! A Kubernetes engine is checked before any train runs: the station's rights, and an egress
//! canary that must not get out (`station_k8s::preflight`).

#[cfg(feature = "kubernetes")]
use anyhow::Context;
use station::config::{EngineKind, StationConfig};
use station::engine::docker::Docker;
use station::engine::{EngineError, Leftover, OptStream, OutputSink, Ran, TrainEngine, TrainJob};
use tokio_util::sync::CancellationToken;

/// One of the engines.
pub enum AnyEngine {
    /// The host's Docker.
    Docker(Docker),
    /// A cluster.
    #[cfg(feature = "kubernetes")]
    Kubernetes(station_k8s::KubeEngine),
}

/// The configured engine, connected (and, for Kubernetes, checked).
pub async fn connect(cfg: &StationConfig) -> anyhow::Result<AnyEngine> {
    match cfg.engine.kind {
        EngineKind::Docker => Ok(AnyEngine::Docker(Docker::connect()?)),
        #[cfg(feature = "kubernetes")]
        EngineKind::Kubernetes => {
            let k = cfg.engine.kubernetes.clone().context(
                "[engine] kind = \"kubernetes\" needs an [engine.kubernetes] section (namespace, helper_image; docs/kubernetes.md)",
            )?;
            let engine = station_k8s::KubeEngine::connect(k).await?;
            let n = station_k8s::preflight::check(&engine)
                .await
                .context("the station runs no train on this cluster")?;
            tracing::info!(rights = n, "kubernetes: rights checked, egress canary stayed in");
            Ok(AnyEngine::Kubernetes(engine))
        }
        #[cfg(not(feature = "kubernetes"))]
        EngineKind::Kubernetes => anyhow::bail!(
            "[engine] kind = \"kubernetes\", but this station binary was built without the Kubernetes engine: build it with `cargo build --release -p station-cli --features kubernetes`"
        ),
    }
}

impl TrainEngine for AnyEngine {
    async fn run(
        &self,
        job: &TrainJob<'_>,
        opt: OptStream,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Ran, EngineError> {
        match self {
            AnyEngine::Docker(e) => e.run(job, opt, output, cancel).await,
            #[cfg(feature = "kubernetes")]
            AnyEngine::Kubernetes(e) => e.run(job, opt, output, cancel).await,
        }
    }

    async fn leftovers(&self, station: &str, host: &str) -> Result<Vec<Leftover>, EngineError> {
        match self {
            AnyEngine::Docker(e) => e.leftovers(station, host).await,
            #[cfg(feature = "kubernetes")]
            AnyEngine::Kubernetes(e) => e.leftovers(station, host).await,
        }
    }

    async fn remove_leftover(&self, leftover: &Leftover) -> Result<(), EngineError> {
        match self {
            AnyEngine::Docker(e) => e.remove_leftover(leftover).await,
            #[cfg(feature = "kubernetes")]
            AnyEngine::Kubernetes(e) => e.remove_leftover(leftover).await,
        }
    }
}
