//! `[engine]`: what runs the trains. Docker on the station's host by default; Kubernetes for a
//! station whose trains run as Jobs in a cluster (the `station` binary built with the cargo
//! feature `kubernetes`; `docs/kubernetes.md`).

use serde::Deserialize;
use std::collections::BTreeMap;

/// `[engine]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// `docker` (default) or `kubernetes`.
    #[serde(default)]
    pub kind: EngineKind,
    /// `[engine.kubernetes]`, read when `kind = "kubernetes"`.
    pub kubernetes: Option<KubernetesSection>,
}

/// Which engine runs trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The host's Docker engine.
    #[default]
    Docker,
    /// A Kubernetes cluster.
    Kubernetes,
}

/// `[engine.kubernetes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSection {
    /// The namespace the station's Role is bound in (`station k8s manifests` makes it).
    pub namespace: String,
    /// The image of the loader and collector pods, by digest: it needs `sh`, `tar`, `df`
    /// and `sleep` (a busybox image does).
    pub helper_image: String,
    /// The storage class of each run's volume; the cluster's default if unset. Choose one with
    /// encryption at rest: decrypted train files and results live on it while the train runs.
    pub storage_class: Option<String>,
    /// Local data as claims the operator made: `name = "claim"`, mounted read-only at
    /// `/opt/train_data/<name>` in the train's pod (the `--data` of a Docker station).
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// An address outside the cluster that the egress canary tries to reach at start
    /// (`host:port`); if it connects, the network plugin does not enforce NetworkPolicies and
    /// the station refuses to run trains.
    #[serde(default = "default_canary")]
    pub canary_target: String,
    /// A pull Secret the admin made in the namespace, for a cluster that cannot pull the
    /// master images anonymously (masters are public-pull on a consortium's registry). Only
    /// masters are pulled by the cluster: a train's own image never is (its `/opt` comes in
    /// through the loader pod).
    pub image_pull_secret: Option<String>,
    /// The kubeconfig context; the current one if unset (in a pod: its service account).
    pub context: Option<String>,
    /// Ephemeral storage per pod, MiB (logs and `/tmp`-less writable layers).
    #[serde(default = "default_ephemeral")]
    pub ephemeral_mib: u64,
}

fn default_canary() -> String {
    "1.1.1.1:443".into()
}

fn default_ephemeral() -> u64 {
    256
}
