//! What the station checks before it runs any train on a cluster: that it holds exactly the
//! rights it uses (a `SelfSubjectAccessReview` per rule of [`manifests::RULES`]), and that the
//! namespace's deny-all NetworkPolicy is enforced: an egress canary pod, with the restricted
//! spec every train gets, tries to connect out and must fail. A network plugin that does not
//! enforce policies (flannel alone, kubenet) would let a train send the data it reads anywhere.

use crate::errors::{call, Ctx};
use crate::manifests;
use crate::pods::{self, Seen};
use crate::spec::{Helper, RunSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use station::engine::EngineError;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the station will not run trains on this cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreflightError {
    /// A right the station uses is not granted.
    #[error("the station may not {verb} {resource} in namespace {namespace}: apply the Role that `station k8s manifests` prints (kubectl apply -f -)")]
    Missing {
        /// The verb.
        verb: String,
        /// The resource (with its subresource).
        resource: String,
        /// The namespace.
        namespace: String,
    },
    /// The canary connected out.
    #[error("the egress canary reached {target} from namespace {namespace}: the cluster's network plugin does not enforce NetworkPolicies, so a train could send its data anywhere. The station runs no train here; use a plugin that enforces them (Calico, Cilium) and apply the deny-all policy `station k8s manifests` prints")]
    Egress {
        /// What it reached.
        target: String,
        /// The namespace.
        namespace: String,
    },
    /// The API server.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Checks every rule the station's Role grants it, and only fails on what is missing.
pub async fn rights(client: &kube::Client, namespace: &str) -> Result<usize, PreflightError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut n = 0;
    for (group, resource, verbs) in manifests::RULES {
        let (resource, sub) = resource
            .split_once('/')
            .map_or((*resource, None), |(r, s)| (r, Some(s)));
        for verb in *verbs {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(namespace.to_string()),
                        verb: Some(verb.to_string()),
                        group: Some(group.to_string()),
                        resource: Some(resource.to_string()),
                        subresource: sub.map(str::to_string),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .ctx(|| "asking the API server what the station may do".into())?;
            let allowed = answer.status.is_some_and(|s| s.allowed);
            if !allowed {
                return Err(PreflightError::Missing {
                    verb: verb.to_string(),
                    resource: match sub {
                        Some(s) => format!("{resource}/{s}"),
                        None => resource.to_string(),
                    },
                    namespace: namespace.to_string(),
                });
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Runs the egress canary: a pod with a train's spec (helper image, no volume of a run) that
/// tries `target` for 5 s. Exit 0 means it connected: refused. It is deleted on every path.
pub async fn egress(
    client: &kube::Client,
    spec: &RunSpec,
    target: &str,
) -> Result<(), PreflightError> {
    let mut pod = spec
        .helper(Helper::Loader, 60)
        .map_err(|e| call("describing the egress canary", e.to_string()))?;
    let name = format!("pht-canary-{}", spec.run_id);
    pod.metadata.name = Some(name.clone());
    let ps = pod.spec.as_mut().expect("a helper has a spec");
    // The canary needs no volume: it must not wait for a claim.
    ps.volumes = None;
    let c = &mut ps.containers[0];
    c.volume_mounts = None;
    c.name = "canary".into();
    let (host, port) = target.rsplit_once(':').unwrap_or((target, "443"));
    // busybox `nc`: exit 0 once connected (stdin is closed), non-zero when refused or
    // dropped within 5 s.
    c.command = Some(vec![
        "nc".into(),
        "-w".into(),
        "5".into(),
        host.into(),
        port.into(),
    ]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    pods.create(&PostParams::default(), &pod)
        .await
        .ctx(|| format!("creating the egress canary {name}"))?;
    let cancel = CancellationToken::new();
    let seen = pods::wait_for(&pods, &name, Duration::from_secs(300), &cancel, |p| {
        if let Some(why) = pods::stuck(p) {
            return Err(call("starting the egress canary", why));
        }
        Ok(match pods::phase(p) {
            "Succeeded" => Seen::Done(true),
            "Failed" => Seen::Done(false),
            _ => Seen::Wait,
        })
    })
    .await;
    let _ = pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await;
    match seen? {
        Some(true) => Err(PreflightError::Egress {
            target: target.to_string(),
            namespace: spec.namespace.clone(),
        }),
        Some(false) => Ok(()),
        None => Err(call(
            "running the egress canary",
            "it did not finish within 300 s",
        )
        .into()),
    }
}

/// Both checks for `engine`, as the station runs them at start: its rights, then the canary
/// against `[engine.kubernetes] canary_target`. The number of rights checked.
pub async fn check(engine: &crate::KubeEngine) -> Result<usize, PreflightError> {
    let n = rights(engine.client(), &engine.config().namespace).await?;
    canary(engine).await?;
    Ok(n)
}

/// The egress canary alone, with the namespace's settings and a fresh run id.
pub async fn canary(engine: &crate::KubeEngine) -> Result<(), PreflightError> {
    let cfg = engine.config();
    let limits = station::config::Limits::default();
    let work = std::env::temp_dir();
    let run_id = station::run::new_run_id();
    let job = station::engine::TrainJob {
        run_id: &run_id,
        image: &cfg.helper_image,
        registry: "",
        entrypoint: None,
        cmd: &[],
        env: vec![],
        data: vec![],
        limits: &limits,
        work: &work,
        results: &work,
        labels: vec![],
    };
    let spec = engine.spec(&job)?;
    egress(engine.client(), &spec, &cfg.canary_target).await
}
