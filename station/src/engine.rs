//! The container engine, over the Docker API (bollard). Everything the station asks of Docker
//! goes through here, so the isolation settings are in one place.

use anyhow::{Context, Result};
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
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Label on every train container (its value: the station's pid), so an interrupted run can
/// remove its container and leftovers can be found (`docker ps -a --filter label=…`).
pub const LABEL_RUN: &str = "org.pht.station.run";

/// Label on every train container: the train image it runs (pinned).
pub const LABEL_TRAIN: &str = "org.pht.station.train";

/// What the train container gets.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// `registry/repo@sha256:…` of the image to run (the master's when known).
    pub image: String,
    /// The train image (for the container's label).
    pub train: String,
    /// `uid:gid`, never root.
    pub user: String,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// The command (the train's entrypoint file).
    pub cmd: Vec<String>,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
    /// Host paths mounted read-only at `/opt/train_data/<name>`.
    pub data: Vec<(String, PathBuf)>,
    pub env: Vec<String>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i64),
    TimedOut,
}

/// What the station needs of a container engine. [`Engine`] is Docker; the unit tests of the
/// run have a fake (the end-to-end tests use Docker).
#[allow(async_fn_in_trait)]
pub trait ContainerEngine {
    /// Makes the engine hold `image` (pinned by digest), pulling it from `registry`.
    async fn ensure_image(&self, image: &str, registry: &str) -> Result<()>;
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
    /// Waits up to `limit` for the exit, showing at most `cap` bytes of output; kills the
    /// container at the limit.
    async fn wait(&self, id: &str, limit: Duration, cap: u64) -> Result<Exit>;
    /// Writes the tar of `path` in the container to `dest`, refusing more than `cap` bytes.
    async fn download(&self, id: &str, path: &str, dest: &Path, cap: u64) -> Result<u64>;
    /// Removes the container and its anonymous volume.
    async fn remove(&self, id: &str) -> Result<()>;
}

/// The Docker engine.
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects as the docker CLI would (`DOCKER_HOST` or the local socket).
    pub fn connect() -> Result<Self> {
        let docker = Docker::connect_with_defaults()
            .context("cannot reach the Docker engine (DOCKER_HOST or /var/run/docker.sock); is dockerd running? scripts/services.sh starts one")?;
        Ok(Self { docker })
    }

    /// Removes the containers this process created (after an interrupt).
    pub async fn remove_own(&self) -> Result<usize> {
        use bollard::query_parameters::ListContainersOptions;
        let filter = format!("{LABEL_RUN}={}", std::process::id());
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([("label".to_string(), vec![filter])])),
                ..Default::default()
            }))
            .await?;
        let mut n = 0;
        for c in list {
            if let Some(id) = c.id {
                self.remove(&id).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

impl ContainerEngine for Engine {
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
            ev.with_context(|| format!("the Docker engine could not pull {image}"))?;
        }
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let body = container_body(spec);
        let r = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .with_context(|| format!("creating the train container from {}", spec.image))?;
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
            .with_context(|| format!("copying the train into the container at {path}"))
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .context("starting the train container")
    }

    /// Streams the container's output to stderr (prefixed, at most `cap` bytes) while waiting up
    /// to `limit` for it to exit; kills it at the limit.
    async fn wait(&self, id: &str, limit: Duration, cap: u64) -> Result<Exit> {
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
            let mut shown = 0u64;
            let mut err = std::io::stderr();
            while let Some(Ok(chunk)) = s.next().await {
                let b = chunk.into_bytes();
                if shown < cap {
                    let n = (cap - shown).min(b.len() as u64) as usize;
                    for line in String::from_utf8_lossy(&b[..n]).lines() {
                        let _ = writeln!(err, "  [train] {line}");
                    }
                    shown += b.len() as u64;
                    if shown >= cap {
                        let _ = writeln!(err, "  [train] … output beyond {cap} bytes not shown");
                    }
                }
            }
        });
        let mut w = self.docker.wait_container(id, None::<WaitContainerOptions>);
        let exit = match tokio::time::timeout(limit, w.next()).await {
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
            Ok(Some(Err(e))) => return Err(e).context("waiting for the train container"),
            Ok(None) => anyhow::bail!("the Docker engine closed the wait without an exit code"),
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
        let mut f = tokio::fs::File::create(dest)
            .await
            .with_context(|| format!("creating {}", dest.display()))?;
        let mut n = 0u64;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.with_context(|| format!("copying {path} out of the container"))?;
            n += chunk.len() as u64;
            if n > cap {
                anyhow::bail!("the train wrote more than the results limit ({cap} bytes)");
            }
            f.write_all(&chunk).await?;
        }
        f.flush().await?;
        Ok(n)
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
            .with_context(|| format!("removing container {id}"))
    }
}

/// The train container: no network, read-only root with a small tmpfs /tmp, no capabilities,
/// no privilege gain, a non-root user, memory/CPU/pids limits, /opt an empty anonymous volume
/// (so nothing of the image's /opt shows through), data read-only.
pub fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut mounts = vec![Mount {
        target: Some("/opt".into()),
        typ: Some(MountType::VOLUME),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }];
    for (name, host) in &spec.data {
        mounts.push(Mount {
            target: Some(format!("/opt/train_data/{name}")),
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
        working_dir: Some("/opt".into()),
        labels: Some(HashMap::from([
            (LABEL_RUN.to_string(), std::process::id().to_string()),
            (LABEL_TRAIN.to_string(), spec.train.clone()),
        ])),
        host_config: Some(host),
        ..Default::default()
    }
}

fn credentials(registry: &str) -> Result<Option<bollard::auth::DockerCredentials>> {
    use secrecy::ExposeSecret;
    Ok(
        match train_lib::image::Credentials::for_registry(registry)? {
            train_lib::image::Credentials::Basic { username, password } => {
                Some(bollard::auth::DockerCredentials {
                    username: Some(username),
                    password: Some(password.expose_secret().to_string()),
                    serveraddress: Some(registry.to_string()),
                    ..Default::default()
                })
            }
            _ => None,
        },
    )
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
