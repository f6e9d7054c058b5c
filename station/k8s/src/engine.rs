//! The engine: a train's run as the API server sees it. Claim → loader pod (fill `/opt`) →
//! Job (the train; its output followed) → collector pod (disk check, results out) → everything
//! of the run deleted, on every path. Each object carries the run's labels, so what a killed
//! station left is found by the next start's sweep ([`TrainEngine::leftovers`]).

use crate::errors::{call, is_status, Ctx};
use crate::exec;
use crate::pods::{self, Seen};
use crate::spec::{Helper, RunSpec, LABEL_PART, LABEL_RUN, LABEL_STATION};
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::Client;
use station::config::KubernetesSection;
use station::engine::{
    DiskUse, End, EngineError, Leftover, LeftoverKind, OptStream, OutputSink, Ran, TrainEngine,
    TrainJob, LABEL_WORKDIR,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The annotation that carries the run's work directory (a path is no label value).
pub const ANNOTATION_WORKDIR: &str = "pht.station/workdir";

/// How long a helper pod may take to start (scheduling, attaching the volume, pulling the
/// helper image once per node); a helper lives at most [`HELPER_SECS`].
const HELPER_START: Duration = Duration::from_secs(300);
/// A helper's `sleep`: it ends by itself if the station dies while streaming.
const HELPER_SECS: u64 = 900;
/// Beyond the Job's own deadline, how long the station waits for the API server to say so
/// before it stops the run itself.
const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// Runs trains as Jobs in one namespace.
pub struct KubeEngine {
    client: Client,
    cfg: KubernetesSection,
    /// How long the train's pod may take to start (pulls of large images included).
    start_limit: Duration,
}

impl KubeEngine {
    /// The engine on `client` (from the kubeconfig or the pod's service account, or a test's
    /// mocked API server).
    pub fn new(client: Client, cfg: KubernetesSection) -> Self {
        Self {
            client,
            cfg,
            start_limit: Duration::from_secs(900),
        }
    }

    /// Connects as `kubectl` would: the kubeconfig (its `context` if configured) or, inside a
    /// pod, the service account.
    pub async fn connect(cfg: KubernetesSection) -> Result<Self, EngineError> {
        let config = match &cfg.context {
            Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                context: Some(context.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| call("reading the kubeconfig", e.to_string()))?,
            None => kube::Config::infer().await.map_err(|e| {
                call(
                    "finding the cluster (kubeconfig or service account)",
                    e.to_string(),
                )
            })?,
        };
        let client = Client::try_from(config).ctx(|| "connecting to the cluster".into())?;
        Ok(Self::new(client, cfg))
    }

    /// The client (preflight checks).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &KubernetesSection {
        &self.cfg
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.cfg.namespace)
    }

    /// The objects of `job`.
    pub fn spec(&self, job: &TrainJob<'_>) -> Result<RunSpec, EngineError> {
        let label = |k: &str| {
            job.labels
                .iter()
                .find(|(l, _)| l == k)
                .map(|(_, v)| v.clone())
        };
        let station_id = label(station::engine::LABEL_STATION).unwrap_or_default();
        let mut data_claims = Vec::new();
        for (name, host) in &job.data {
            let claim = self.cfg.data.get(name).ok_or_else(|| {
                call(
                    format!("mounting data `{name}` ({})", host.display()),
                    format!("a Kubernetes station mounts claims, not host paths: name a claim for it in [engine.kubernetes] data (`{name} = \"<claim>\"`)"),
                )
            })?;
            data_claims.push((name.clone(), claim.clone()));
        }
        let limits = job.limits;
        let spec = RunSpec {
            run_id: job.run_id.to_string(),
            station: station_id,
            namespace: self.cfg.namespace.clone(),
            image: job.image.to_string(),
            helper_image: self.cfg.helper_image.clone(),
            command: job.entrypoint.map(<[String]>::to_vec),
            args: job.cmd.to_vec(),
            env: job.env.clone(),
            data_claims,
            annotations: label(LABEL_WORKDIR)
                .map(|w| vec![(ANNOTATION_WORKDIR.to_string(), w)])
                .unwrap_or_default(),
            uid: limits.user.uid.into(),
            gid: limits.user.gid.into(),
            memory_mib: limits.memory_mib,
            millicpus: ((limits.cpus * 1000.0).ceil() as u64).max(1),
            disk_mib: limits.disk_mib,
            ephemeral_mib: self.cfg.ephemeral_mib,
            deadline_secs: limits.timeout_secs,
            storage_class: self.cfg.storage_class.clone(),
            pull_secret: self.cfg.image_pull_secret.clone(),
        };
        spec.check()
            .map_err(|e| call("describing the run for Kubernetes", e.to_string()))?;
        Ok(spec)
    }

    /// Creates `obj`; a 409 for an object of this same run (a create retried after a lost
    /// answer) is taken as done, one of anyone else's is an error.
    async fn create<K>(&self, obj: &K, run_id: &str) -> Result<(), EngineError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.api();
        let name = obj.meta().name.clone().unwrap_or_default();
        let kind = K::kind(&Default::default()).to_string();
        match api.create(&PostParams::default(), obj).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                let there = api
                    .get(&name)
                    .await
                    .ctx(|| format!("reading the existing {kind} {name}"))?;
                let ours = there
                    .meta()
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_RUN))
                    .is_some_and(|r| r == run_id);
                if ours {
                    Ok(())
                } else {
                    Err(call(
                        format!("creating {kind} {name}"),
                        "an object of that name exists and is not this run's; remove it or use a namespace of the station's own",
                    ))
                }
            }
            Err(e) => Err(e).ctx(|| format!("creating {kind} {name}")),
        }
    }

    /// Starts a helper and waits until it runs; its name.
    async fn helper(
        &self,
        spec: &RunSpec,
        part: Helper,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, EngineError> {
        let pod = spec
            .helper(part, HELPER_SECS)
            .map_err(|e| call("describing the helper pod", e.to_string()))?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.create(&pod, &spec.run_id).await?;
        let pods: Api<Pod> = self.api();
        let running = pods::wait_for(&pods, &name, HELPER_START, cancel, |p| {
            if let Some(why) = pods::stuck(p) {
                return Err(call(format!("starting helper pod {name}"), why));
            }
            Ok(match pods::phase(p) {
                "Running" => Seen::Done(()),
                "Pending" => Seen::Wait,
                other => {
                    return Err(call(
                        format!("starting helper pod {name}"),
                        format!("it ended ({other}) before it was used"),
                    ))
                }
            })
        })
        .await?;
        if running.is_none() && !cancel.is_cancelled() {
            return Err(call(
                format!("starting helper pod {name}"),
                format!("not running after {} s; `kubectl describe pod {name}` says why (a volume that does not attach, no node with room)", HELPER_START.as_secs()),
            ));
        }
        Ok(running.map(|()| name))
    }

    async fn delete_pod(&self, name: &str) -> Result<(), EngineError> {
        let pods: Api<Pod> = self.api();
        match pods
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(e).ctx(|| format!("deleting pod {name}")),
        }
    }

    /// Everything of the run: the Job, its pod, the helpers, the claim, each listed by the
    /// run's label and deleted by name (the Role grants no `deletecollection`). The first
    /// failure is returned after every other deletion was tried.
    async fn clean(&self, spec: &RunSpec) -> Result<(), EngineError> {
        let mut first = Ok(());
        for l in self.of(&format!("{LABEL_RUN}={}", spec.run_id)).await? {
            let r = self.remove_leftover(&l).await;
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// The Jobs, pods and claims that carry `selector`, runners first.
    async fn of(&self, selector: &str) -> Result<Vec<Leftover>, EngineError> {
        let lp = ListParams::default().labels(selector);
        let mut out = Vec::new();
        let workdir = |m: &kube::api::ObjectMeta| {
            m.annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_WORKDIR).cloned())
        };
        let jobs: Api<Job> = self.api();
        for j in jobs
            .list(&lp)
            .await
            .ctx(|| "listing the station's Jobs".into())?
        {
            out.push(Leftover {
                kind: LeftoverKind::Runner,
                id: format!("job/{}", j.metadata.name.clone().unwrap_or_default()),
                workdir: workdir(&j.metadata),
            });
        }
        let pods: Api<Pod> = self.api();
        for p in pods
            .list(&lp)
            .await
            .ctx(|| "listing the station's pods".into())?
        {
            out.push(Leftover {
                kind: LeftoverKind::Runner,
                id: format!("pod/{}", p.metadata.name.clone().unwrap_or_default()),
                workdir: workdir(&p.metadata),
            });
        }
        let claims: Api<PersistentVolumeClaim> = self.api();
        for c in claims
            .list(&lp)
            .await
            .ctx(|| "listing the station's volumes".into())?
        {
            out.push(Leftover {
                kind: LeftoverKind::Storage,
                id: format!("pvc/{}", c.metadata.name.clone().unwrap_or_default()),
                workdir: workdir(&c.metadata),
            });
        }
        Ok(out)
    }

    async fn run_parts(
        &self,
        spec: &RunSpec,
        job: &TrainJob<'_>,
        opt: OptStream,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Ran, EngineError> {
        let cancelled = || Ran {
            end: End::Cancelled,
            results_bytes: None,
            disk: None,
        };
        let claim = spec
            .claim()
            .map_err(|e| call("describing the run's volume", e.to_string()))?;
        self.create(&claim, &spec.run_id).await?;
        let Some(loader) = self.helper(spec, Helper::Loader, cancel).await? else {
            return Ok(cancelled());
        };
        let pods: Api<Pod> = self.api();
        tokio::select! {
            r = exec::tar_in(&pods, &loader, opt) => r?,
            () = cancel.cancelled() => return Ok(cancelled()),
        }
        self.delete_pod(&loader).await?;
        // The pipeline cancels before it closes a stream it could not finish: a train never
        // starts on a partial /opt.
        if cancel.is_cancelled() {
            return Ok(cancelled());
        }
        let end = self.train(spec, output, cancel).await?;
        let mut ran = Ran {
            end,
            results_bytes: None,
            disk: None,
        };
        if end != End::Exited(0) {
            return Ok(ran);
        }
        let Some(collector) = self.helper(spec, Helper::Collector, cancel).await? else {
            return Ok(cancelled());
        };
        ran.disk = Some(DiskUse {
            quota_bytes: job.limits.disk_mib << 20,
            host_bytes: 0,
            full: exec::full(&pods, &collector).await?,
        });
        let n = tokio::select! {
            r = exec::tar_out(&pods, &collector, job.results, job.limits.results_bytes) => r?,
            () = cancel.cancelled() => return Ok(cancelled()),
        };
        ran.results_bytes = Some(n);
        Ok(ran)
    }

    /// The Job: created, its pod followed to its end, its output handed on.
    async fn train(
        &self,
        spec: &RunSpec,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<End, EngineError> {
        let job = spec
            .job()
            .map_err(|e| call("describing the train's Job", e.to_string()))?;
        let job_name = job.metadata.name.clone().unwrap_or_default();
        self.create(&job, &spec.run_id).await?;
        let pods: Api<Pod> = self.api();
        // The Job's pod, by its labels (the Job controller names it).
        let selector = format!("{LABEL_RUN}={},{LABEL_PART}=train", spec.run_id);
        let pod = self.job_pod(&selector, cancel).await?;
        let Some(pod) = pod else {
            return Ok(End::Cancelled);
        };
        let started = pods::wait_for(&pods, &pod, self.start_limit, cancel, |p| {
            if let Some(why) = pods::stuck(p) {
                return Err(call(format!("starting the train (pod {pod})"), why));
            }
            Ok(match pods::phase(p) {
                "Pending" => Seen::Wait,
                _ => Seen::Done(()),
            })
        })
        .await?;
        if started.is_none() {
            if cancel.is_cancelled() {
                return Ok(End::Cancelled);
            }
            return Err(call(
                format!("starting the train (pod {pod})"),
                format!(
                    "still pending after {} s; `kubectl describe pod {pod}` says why",
                    self.start_limit.as_secs()
                ),
            ));
        }
        let logs = tokio::spawn(follow(pods.clone(), pod.clone(), output));
        let limit = Duration::from_secs(spec.deadline_secs) + DEADLINE_GRACE;
        let jobs: Api<Job> = self.api();
        let end = pods::wait_for(&pods, &pod, limit, cancel, |p| {
            Ok(match pods::phase(p) {
                "Succeeded" => Seen::Done(End::Exited(0)),
                "Failed" => Seen::Done(ended(p)),
                _ => Seen::Wait,
            })
        })
        .await?;
        let end = match end {
            // A pod killed at the Job's deadline fails like any other: the Job says why.
            Some(End::Exited(c)) if c != 0 && deadline_exceeded(&jobs, &job_name).await => {
                End::TimedOut
            }
            Some(e) => e,
            None if cancel.is_cancelled() => End::Cancelled,
            // The API server never said: the station stops it (deleted with the run).
            None => End::TimedOut,
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), logs).await;
        Ok(end)
    }

    /// The name of the Job's pod once the controller made it.
    async fn job_pod(
        &self,
        selector: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, EngineError> {
        let pods: Api<Pod> = self.api();
        let t0 = std::time::Instant::now();
        loop {
            let list = pods
                .list(&ListParams::default().labels(selector))
                .await
                .ctx(|| "finding the train's pod".into())?;
            if let Some(name) = list.items.first().and_then(|p| p.metadata.name.clone()) {
                return Ok(Some(name));
            }
            if t0.elapsed() > HELPER_START {
                return Err(call(
                    "finding the train's pod",
                    "the Job controller made none; `kubectl describe job` says why (a quota, an admission policy)",
                ));
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = cancel.cancelled() => return Ok(None),
            }
        }
    }
}

/// How a failed pod's train container ended.
fn ended(p: &Pod) -> End {
    let term = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == "train"))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    match term {
        Some(t) if t.reason.as_deref() == Some("OOMKilled") => End::OutOfMemory,
        Some(t) => End::Exited(i64::from(t.exit_code)),
        // Killed before its container ended (the deadline): told by the Job.
        None => End::Exited(-1),
    }
}

/// Whether the Job was stopped at its `activeDeadlineSeconds`.
async fn deadline_exceeded(jobs: &Api<Job>, name: &str) -> bool {
    let Ok(j) = jobs.get(name).await else {
        return false;
    };
    j.status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| {
            c.type_ == "Failed"
                && c.status == "True"
                && c.reason.as_deref() == Some("DeadlineExceeded")
        })
}

/// The train's output as it comes (`kubectl logs -f`).
async fn follow(pods: Api<Pod>, pod: String, output: OutputSink) {
    let lp = LogParams {
        follow: true,
        container: Some("train".into()),
        ..LogParams::default()
    };
    let Ok(stream) = pods.log_stream(&pod, &lp).await else {
        return;
    };
    let mut lines = stream.lines();
    while let Some(Ok(line)) = lines.next().await {
        output(format!("{line}\n").as_bytes());
    }
}

impl TrainEngine for KubeEngine {
    async fn run(
        &self,
        job: &TrainJob<'_>,
        opt: OptStream,
        output: OutputSink,
        cancel: &CancellationToken,
    ) -> Result<Ran, EngineError> {
        let spec = self.spec(job)?;
        let out = self.run_parts(&spec, job, opt, output, cancel).await;
        let cleaned = self.clean(&spec).await;
        let ran = out?;
        cleaned?;
        Ok(ran)
    }

    async fn leftovers(&self, station: &str, _host: &str) -> Result<Vec<Leftover>, EngineError> {
        // The namespace is the station's own: its host does not matter, its work area does
        // (the sweep decides by the work directory's lock).
        self.of(&format!("{LABEL_STATION}={station}")).await
    }

    async fn remove_leftover(&self, l: &Leftover) -> Result<(), EngineError> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let (kind, name) = l.id.split_once('/').unwrap_or(("", &l.id));
        let r = match kind {
            "job" => self.api::<Job>().delete(name, &dp).await.map(|_| ()),
            "pod" => self.api::<Pod>().delete(name, &dp).await.map(|_| ()),
            "pvc" => self
                .api::<PersistentVolumeClaim>()
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ()),
            _ => {
                return Err(call(
                    format!("removing {}", l.id),
                    "not an object this engine makes",
                ))
            }
        };
        match r {
            Err(e) if is_status(&e, 404) => Ok(()),
            r => r.ctx(|| format!("removing {}", l.id)),
        }
    }
}
