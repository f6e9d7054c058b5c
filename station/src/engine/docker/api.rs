//! Docker's API as the Docker engine uses it (bollard), call by call. Everything the station
//! asks of Docker goes through here, so the isolation settings are in one place
//! ([`container_body`]).

use crate::engine::{
    EngineError, Leftover, LeftoverKind, OutputSink, ResultsFile, LABEL_HOST, LABEL_STATION,
    LABEL_WORKDIR,
};
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions, KillContainerOptions,
    LogsOptions, RemoveContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use train_lib::layout::MOUNT;

type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A bollard error as the neutral [`EngineError`]: a daemon that cannot be reached is
/// [`EngineError::Unreachable`] (the watcher does not count that run against the train).
fn neutral(what: String, source: bollard::errors::Error) -> EngineError {
    use bollard::errors::Error as B;
    let unreachable = match &source {
        B::HyperLegacyError { err } => err.is_connect(),
        B::IOError { .. } | B::SocketNotFoundError(_) => true,
        _ => false,
    };
    if unreachable {
        EngineError::Unreachable {
            engine: "Docker engine",
            detail: format!("{what}: {source}"),
            hint: UNREACHABLE_HINT,
        }
    } else {
        EngineError::Call {
            what,
            detail: source.to_string(),
        }
    }
}

const UNREACHABLE_HINT: &str =
    "is dockerd running (DOCKER_HOST or /var/run/docker.sock)? scripts/services.sh starts one";

/// `.ctx(|| what)` on an engine call: the error says what was asked.
trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, bollard::errors::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| neutral(what(), source))
    }
}

/// What the train container gets.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// `registry/repo@sha256:…` of the image to run (the master's when known).
    pub image: String,
    /// `uid:gid`, never root.
    pub user: String,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// The command (the train's entrypoint file).
    pub cmd: Vec<String>,
    /// Memory limit, bytes.
    pub memory_bytes: i64,
    /// CPU limit, billionths of a CPU.
    pub nano_cpus: i64,
    /// Process limit.
    pub pids: i64,
    /// Host paths mounted read-only at `/opt/train_data/<name>`.
    pub data: Vec<(String, PathBuf)>,
    /// Environment (`KEY=value`).
    pub env: Vec<String>,
    /// The volume mounted at `/opt` (the run's fixed-size disk).
    pub volume: String,
    /// Labels: the run, station, host, work directory and train.
    pub labels: Vec<(String, String)>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i64),
    /// It ran past the wall-clock limit and was killed.
    TimedOut,
    /// The job was cancelled while the container ran; it was killed.
    Cancelled,
}

/// What the Docker engine ([`super::Docker`]) needs of Docker's API, call by call. [`Bollard`]
/// is the real one; the unit tests of the container's life have a fake (the end-to-end tests
/// use Docker).
#[allow(async_fn_in_trait)]
pub trait DockerApi {
    /// Makes the engine hold `image` (pinned by digest), pulling it from `registry`.
    async fn ensure_image(&self, image: &str, registry: &str) -> Result<()>;
    /// Creates the volume `name` on the block device `device` (ext4), with `labels`.
    async fn create_volume(
        &self,
        name: &str,
        device: &str,
        labels: &[(String, String)],
    ) -> Result<()>;
    /// Removes the volume `name` (the engine unmounts it).
    async fn remove_volume(&self, name: &str) -> Result<()>;
    /// Creates the train container ([`container_body`]); returns its id.
    async fn create(&self, spec: &ContainerSpec) -> Result<String>;
    /// Streams a tar into `path` of the container (before start).
    async fn upload(
        &self,
        id: &str,
        path: &str,
        tar: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> Result<()>;
    /// Starts the container.
    async fn start(&self, id: &str) -> Result<()>;
    /// Waits up to `limit` for the exit, handing the container's output to `output` as it
    /// comes; kills the container at the limit, or when `cancel` fires.
    async fn wait(
        &self,
        id: &str,
        limit: Duration,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Exit>;
    /// Writes the tar of `path` in the container to `dest`, refusing more than `cap` bytes.
    async fn download(&self, id: &str, path: &str, dest: &Path, cap: u64) -> Result<u64>;
    /// Whether the kernel killed the container for going over its memory limit.
    async fn oom_killed(&self, id: &str) -> Result<bool>;
    /// Removes the container (killing it) and its anonymous volumes.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Containers and volumes labelled as this station's on this host.
    async fn leftovers(&self, station: &str, host: &str) -> Result<Vec<Leftover>>;
}

/// Docker's API over its socket (bollard).
pub struct Bollard {
    docker: Docker,
}

impl Bollard {
    /// Connects as the docker CLI would (`DOCKER_HOST` or the local socket).
    pub fn connect() -> Result<Self> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| neutral("connecting to the Docker engine".into(), e))?;
        Ok(Self { docker })
    }

    /// The engine's version and API version (`station doctor`).
    pub async fn version(&self) -> Result<(String, String)> {
        let v = self
            .docker
            .version()
            .await
            .ctx(|| "asking the Docker engine for its version".into())?;
        Ok((
            v.version.unwrap_or_else(|| "?".into()),
            v.api_version.unwrap_or_else(|| "?".into()),
        ))
    }
}

impl DockerApi for Bollard {
    /// Makes the engine hold `image` (pinned by digest), pulling it from its registry with the
    /// station's credentials for that registry.
    async fn ensure_image(&self, image: &str, registry: &str) -> Result<()> {
        if self.docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        let mut s = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(image.to_string()),
                ..Default::default()
            }),
            None,
            credentials(registry)?,
        );
        while let Some(ev) = s.next().await {
            ev.ctx(|| format!("the Docker engine could not pull {image}"))?;
        }
        Ok(())
    }

    async fn create_volume(
        &self,
        name: &str,
        device: &str,
        labels: &[(String, String)],
    ) -> Result<()> {
        use bollard::models::VolumeCreateRequest;
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.to_string()),
                driver: Some("local".into()),
                driver_opts: Some(HashMap::from([
                    ("type".to_string(), "ext4".to_string()),
                    ("device".to_string(), device.to_string()),
                    ("o".to_string(), "nodev,nosuid".to_string()),
                ])),
                labels: Some(labels.iter().cloned().collect()),
                ..Default::default()
            })
            .await
            .ctx(|| format!("creating the train's /opt volume on {device}"))?;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.docker
            .remove_volume(
                name,
                Some(bollard::query_parameters::RemoveVolumeOptions { force: true }),
            )
            .await
            .ctx(|| format!("removing volume {name}"))
    }

    async fn leftovers(&self, station: &str, host: &str) -> Result<Vec<Leftover>> {
        use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions};
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_STATION}={station}"),
                format!("{LABEL_HOST}={host}"),
            ],
        )]);
        let mut out = Vec::new();
        for c in self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .ctx(|| "listing the station's containers".into())?
        {
            if let Some(id) = c.id {
                out.push(Leftover {
                    kind: LeftoverKind::Runner,
                    id,
                    workdir: c.labels.and_then(|l| l.get(LABEL_WORKDIR).cloned()),
                });
            }
        }
        let vols = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .ctx(|| "listing the station's volumes".into())?;
        for v in vols.volumes.unwrap_or_default() {
            out.push(Leftover {
                kind: LeftoverKind::Storage,
                workdir: v.labels.get(LABEL_WORKDIR).cloned(),
                id: v.name,
            });
        }
        Ok(out)
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let body = container_body(spec);
        let r = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .ctx(|| format!("creating the train container from {}", spec.image))?;
        Ok(r.id)
    }

    /// Streams a tar into `path` of the container (before start).
    async fn upload(
        &self,
        id: &str,
        path: &str,
        tar: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> Result<()> {
        let stream = tokio_stream(tar);
        self.docker
            .upload_to_container(
                id,
                Some(UploadToContainerOptions {
                    path: path.to_string(),
                    ..Default::default()
                }),
                bollard::body_stream(stream),
            )
            .await
            .ctx(|| format!("copying the train into the container at {path}"))
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .ctx(|| "starting the train container".into())
    }

    /// Streams the container's output to `output` while waiting up to `limit` for it to exit;
    /// kills it at the limit or on cancellation.
    async fn wait(
        &self,
        id: &str,
        limit: Duration,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Exit> {
        let docker = self.docker.clone();
        let cid = id.to_string();
        let logs = tokio::spawn(async move {
            let mut s = docker.logs(
                &cid,
                Some(LogsOptions {
                    follow: true,
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                }),
            );
            while let Some(Ok(chunk)) = s.next().await {
                output(&chunk.into_bytes());
            }
        });
        let mut w = self.docker.wait_container(id, None::<WaitContainerOptions>);
        let exit = tokio::select! {
            r = tokio::time::timeout(limit, w.next()) => match r {
                Err(_) => {
                    let _ = self
                        .docker
                        .kill_container(id, None::<KillContainerOptions>)
                        .await;
                    Exit::TimedOut
                }
                Ok(Some(Ok(r))) => Exit::Code(r.status_code),
                // A non-zero exit arrives as an error carrying the code (bollard 0.21).
                Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
                    Exit::Code(code)
                }
                Ok(Some(Err(e))) => return Err(e).ctx(|| "waiting for the train container".into()),
                Ok(None) => {
                    return Err(EngineError::Call {
                        what: "waiting for the train container".into(),
                        detail: "the Docker engine closed the wait without an exit code".into(),
                    })
                }
            },
            () = cancel.cancelled() => {
                let _ = self
                    .docker
                    .kill_container(id, None::<KillContainerOptions>)
                    .await;
                Exit::Cancelled
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), logs).await;
        Ok(exit)
    }

    /// Writes the tar of `path` in the container to the file `dest`, at most `cap` bytes.
    async fn download(&self, id: &str, path: &str, dest: &Path, cap: u64) -> Result<u64> {
        let mut s = self.docker.download_from_container(
            id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut f = ResultsFile::create(dest, cap)?;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.ctx(|| format!("copying {path} out of the container"))?;
            f.write(&chunk).await?;
        }
        f.finish().await
    }

    async fn oom_killed(&self, id: &str) -> Result<bool> {
        let c = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ctx(|| format!("inspecting container {id}"))?;
        Ok(c.state.and_then(|s| s.oom_killed).unwrap_or(false))
    }

    /// Removes the container and its anonymous /opt volume.
    async fn remove(&self, id: &str) -> Result<()> {
        self.docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
            .ctx(|| format!("removing container {id}"))
    }
}

/// The train container: no network, read-only root with a small tmpfs /tmp, no capabilities,
/// no privilege gain, a non-root user, memory/CPU/pids limits, /opt the run's own fixed-size
/// volume (empty, so nothing of the image's /opt shows through), data read-only.
pub fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut mounts = vec![Mount {
        target: Some(MOUNT.into()),
        source: Some(spec.volume.clone()),
        typ: Some(MountType::VOLUME),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }];
    for (name, host) in &spec.data {
        mounts.push(Mount {
            target: Some(format!("{MOUNT}/train_data/{name}")),
            source: Some(host.display().to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        });
    }
    let host = HostConfig {
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            "rw,nosuid,nodev,noexec,size=64m".to_string(),
        )])),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        memory: Some(spec.memory_bytes),
        memory_swap: Some(spec.memory_bytes),
        nano_cpus: Some(spec.nano_cpus),
        pids_limit: Some(spec.pids),
        mounts: Some(mounts),
        ipc_mode: Some("private".into()),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([("max-size".to_string(), "10m".to_string())])),
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        user: Some(spec.user.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: Some(spec.cmd.clone()),
        env: Some(spec.env.clone()),
        network_disabled: Some(true),
        working_dir: Some(MOUNT.into()),
        labels: Some(spec.labels.iter().cloned().collect()),
        host_config: Some(host),
        ..Default::default()
    }
}

fn credentials(registry: &str) -> Result<Option<bollard::auth::DockerCredentials>> {
    use secrecy::ExposeSecret;
    Ok(match train_image::Credentials::for_registry(registry)? {
        train_image::Credentials::Basic { username, password } => {
            Some(bollard::auth::DockerCredentials {
                username: Some(username),
                password: Some(password.expose_secret().to_string()),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            })
        }
        _ => None,
    })
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
