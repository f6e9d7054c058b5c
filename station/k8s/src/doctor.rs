//! `station doctor`'s checks of a Kubernetes station's cluster, in place of the Docker host's:
//! the API server (reachable, its version), the station's rights, the egress canary, and the
//! helper image. A check that needs one that failed is skipped and says so.

use crate::preflight::{self, PreflightError};
use crate::KubeEngine;
use station::config::KubernetesSection;
use station::doctor::Check;

const FIX_RIGHTS: &str = "apply what `station k8s manifests --namespace <ns>` prints (kubectl apply -f -) and run the station as its ServiceAccount (or a kubeconfig bound to that Role)";
const FIX_EGRESS: &str = "use a network plugin that enforces NetworkPolicies (Calico, Cilium) and apply the deny-all policy `station k8s manifests` prints";

/// The cluster's checks for `cfg` (`[engine.kubernetes]`).
pub async fn checks(cfg: Option<&KubernetesSection>) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(cfg) = cfg else {
        out.push(Check::failed(
            "kubernetes",
            "[engine] kind = \"kubernetes\" but there is no [engine.kubernetes] section",
            "add it: namespace, helper_image (docs/kubernetes.md)",
        ));
        return out;
    };
    let engine = match KubeEngine::connect(cfg.clone()).await {
        Ok(e) => e,
        Err(e) => {
            out.push(Check::failed(
                "kubernetes",
                e.to_string(),
                "check the kubeconfig and [engine.kubernetes] context",
            ));
            return out;
        }
    };
    check(&engine, &mut out).await;
    out
}

/// The checks on a connected engine.
pub async fn check(engine: &KubeEngine, out: &mut Vec<Check>) {
    let cfg = engine.config();
    match tokio::time::timeout(
        std::time::Duration::from_secs(20),
        engine.client().apiserver_version(),
    )
    .await
    {
        Ok(Ok(v)) => out.push(Check::ok(
            "kubernetes",
            format!("API server {}, namespace {}", v.git_version, cfg.namespace),
        )),
        Ok(Err(e)) => {
            out.push(Check::failed(
                "kubernetes",
                format!("the API server does not answer: {e}"),
                "check the kubeconfig ([engine.kubernetes] context) and that the cluster is up",
            ));
            for name in ["cluster rights", "egress canary"] {
                out.push(Check::skipped(name, "the API server did not answer"));
            }
            return;
        }
        Err(_) => {
            out.push(Check::failed(
                "kubernetes",
                "no answer within 20 s",
                "check the network path to the API server",
            ));
            return;
        }
    }
    match preflight::rights(engine.client(), &cfg.namespace).await {
        Ok(n) => out.push(Check::ok(
            "cluster rights",
            format!("all {n} the station uses in {}", cfg.namespace),
        )),
        Err(e) => {
            out.push(Check::failed("cluster rights", e.to_string(), FIX_RIGHTS));
            out.push(Check::skipped(
                "egress canary",
                "the station lacks the rights to start it",
            ));
            return;
        }
    }
    // The rights were reviewed just above: only the canary is left.
    match preflight::canary(engine).await {
        Ok(()) => out.push(Check::ok(
            "egress canary",
            format!(
                "could not reach {}: policies are enforced",
                cfg.canary_target
            ),
        )),
        Err(e @ PreflightError::Egress { .. }) => {
            out.push(Check::failed("egress canary", e.to_string(), FIX_EGRESS))
        }
        Err(e) => out.push(Check::failed(
            "egress canary",
            e.to_string(),
            "`kubectl describe pod -l pht.station/part=loader` says why it did not run",
        )),
    }
}
