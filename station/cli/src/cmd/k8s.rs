//! `station k8s manifests`: what a cluster admin applies once for a Kubernetes station.

use super::Ended;
use crate::cli::K8sManifestsArgs;

/// Prints the namespace, deny-all NetworkPolicy, ServiceAccount, Role and RoleBinding as one
/// JSON `List` (`kubectl apply -f -` reads it).
#[cfg(feature = "kubernetes")]
pub fn manifests(a: K8sManifestsArgs) -> anyhow::Result<Ended> {
    let text = serde_json::to_string_pretty(&station_k8s::manifests::all(&a.namespace))?;
    pht_term::outln!("{text}");
    Ok(Ended::Ok)
}

/// Without the engine built in, says how to get it.
#[cfg(not(feature = "kubernetes"))]
pub fn manifests(_: K8sManifestsArgs) -> anyhow::Result<Ended> {
    anyhow::bail!(
        "this station binary was built without the Kubernetes engine: build it with `cargo build --release -p station-cli --features kubernetes`"
    )
}
