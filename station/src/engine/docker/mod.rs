//! The Docker engine: a train's `/opt` is a fixed-size ext4 disk of its own (a loop device
//! under the run's private work directory, mounted as a Docker volume), the train a container
//! with no network, a read-only root, no capabilities and the limits of the station's
//! configuration ([`api::container_body`]). The decrypted tree goes in through the engine's
//! archive API before start; the results come out the same way after a clean exit. The
//! container, the volume and the disk are removed on every path out, also when the job is
//! cancelled (the engine call in flight is waited for first).

pub mod api;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use api::{container_body, Bollard, ContainerSpec, DockerApi, Exit};

use super::{
    DiskUse, End, EngineError, Leftover, LeftoverKind, OptStream, OutputSink, Ran, TrainEngine,
    TrainJob,
};
use crate::disk::ScratchDisk;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use train_lib::layout::{self, MOUNT};

/// The Docker engine over `A` (Docker's API; [`Bollard`] but in unit tests).
pub struct Docker<A = Bollard> {
    api: A,
}

impl Docker<Bollard> {
    /// Connects as the docker CLI would (`DOCKER_HOST` or the local socket).
    pub fn connect() -> Result<Self, EngineError> {
        Ok(Self {
            api: Bollard::connect()?,
        })
    }

    /// The engine's version and API version (`station doctor`).
    pub async fn version(&self) -> Result<(String, String), EngineError> {
        self.api.version().await
    }
}

impl<A: DockerApi> Docker<A> {
    /// The engine over `api`.
    pub fn over(api: A) -> Self {
        Self { api }
    }

    /// The API it calls.
    pub fn api(&self) -> &A {
        &self.api
    }
}

impl<A: DockerApi> TrainEngine for Docker<A> {
    async fn run(
        &self,
        job: &TrainJob<'_>,
        opt: OptStream,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Ran, EngineError> {
        let limits = job.limits;
        let quota = limits.disk_mib << 20;
        let dir = job.work.to_path_buf();
        let mut disk = tokio::task::spawn_blocking(move || ScratchDisk::create(&dir, quota))
            .await
            .map_err(|e| EngineError::Io {
                what: "making the train's disk".into(),
                source: std::io::Error::other(e),
            })??;
        let volume = format!("pht-{}", job.run_id);
        let made = self
            .api
            .create_volume(&volume, disk.device(), &job.labels)
            .await;
        let end = match made {
            Ok(()) => {
                let end = in_volume(&self.api, job, &volume, opt, output, cancel).await;
                let removed = self.api.remove_volume(&volume).await;
                removed.and(end)
            }
            Err(e) => Err(e),
        };
        disk.detach()?;
        let end = end?;
        let use_ = DiskUse {
            quota_bytes: quota,
            host_bytes: disk.host_bytes(),
            full: disk.full()?,
        };
        let results_bytes = end.1;
        Ok(Ran {
            end: end.0,
            results_bytes,
            disk: Some(use_),
        })
    }

    async fn leftovers(&self, station: &str, host: &str) -> Result<Vec<Leftover>, EngineError> {
        self.api.leftovers(station, host).await
    }

    async fn remove_leftover(&self, leftover: &Leftover) -> Result<(), EngineError> {
        match leftover.kind {
            LeftoverKind::Runner => self.api.remove(&leftover.id).await,
            LeftoverKind::Storage => self.api.remove_volume(&leftover.id).await,
        }
    }
}

/// The container's life on the volume `volume`: pull, create, fill `/opt`, start, wait, take
/// the results out after a clean exit; the container is removed on every path out. Returns how
/// it ended and the results archive's size.
async fn in_volume<A: DockerApi>(
    api: &A,
    job: &TrainJob<'_>,
    volume: &str,
    opt: OptStream,
    output: OutputSink,
    cancel: &CancellationToken,
) -> Result<(End, Option<u64>), EngineError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => return Ok((End::Cancelled, None)),
        r = api.ensure_image(job.image, job.registry) => r?,
    }
    let limits = job.limits;
    let spec = ContainerSpec {
        image: job.image.to_string(),
        user: limits.user.to_string(),
        entrypoint: job.entrypoint.map(<[String]>::to_vec),
        cmd: job.cmd.to_vec(),
        memory_bytes: (limits.memory_mib * 1024 * 1024) as i64,
        nano_cpus: (limits.cpus * 1e9) as i64,
        pids: limits.pids,
        env: job.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        data: job.data.clone(),
        volume: volume.to_string(),
        labels: job.labels.clone(),
    };
    // Created whatever the token says meanwhile (a create in flight would otherwise leave a
    // container behind), then removed below on every path.
    let id = api.create(&spec).await?;
    let out = in_container(api, job, &id, opt, output, cancel).await;
    let removed = api.remove(&id).await;
    let out = out?;
    removed?;
    Ok(out)
}

/// Upload, start, wait, take the results out: everything that happens to a created container.
async fn in_container<A: DockerApi>(
    api: &A,
    job: &TrainJob<'_>,
    id: &str,
    opt: OptStream,
    output: OutputSink,
    cancel: &CancellationToken,
) -> Result<(End, Option<u64>), EngineError> {
    if cancel.is_cancelled() {
        return Ok((End::Cancelled, None));
    }
    tokio::select! {
        r = api.upload(id, MOUNT, opt) => r?,
        () = cancel.cancelled() => return Ok((End::Cancelled, None)),
    }
    // The pipeline cancels before it closes a stream it could not finish: a train never
    // starts on a partial /opt.
    if cancel.is_cancelled() {
        return Ok((End::Cancelled, None));
    }
    api.start(id).await?;
    let limit = Duration::from_secs(job.limits.timeout_secs);
    let end = match api.wait(id, limit, output, cancel).await? {
        Exit::TimedOut => End::TimedOut,
        Exit::Cancelled => End::Cancelled,
        // Killed by the kernel's OOM killer (exit 137 with the flag set), told apart from a
        // train that exits 137 itself.
        Exit::Code(c) if c != 0 && api.oom_killed(id).await? => End::OutOfMemory,
        Exit::Code(c) => End::Exited(c),
    };
    if end != End::Exited(0) {
        return Ok((end, None));
    }
    let path = layout::results_in_container();
    let n = tokio::select! {
        r = api.download(id, &path, job.results, job.limits.results_bytes) => r,
        () = cancel.cancelled() => return Ok((End::Cancelled, None)),
    };
    match n {
        Ok(n) => Ok((end, Some(n))),
        // The engine gone or a local file: the station's trouble. Anything else (no
        // pht_results, more than the limit) is the train's.
        Err(e @ (EngineError::Unreachable { .. } | EngineError::Io { .. })) => Err(e),
        Err(EngineError::Results(m)) => Err(EngineError::Results(m)),
        Err(e) => Err(EngineError::Results(format!(
            "the train's results could not be taken out: {e}"
        ))),
    }
}
