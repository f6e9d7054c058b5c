//! The Kubernetes engine (feature `kubernetes`, issue 22), work in progress: so far the pure
//! functions that build what the station creates in its namespace (a train's Job, the
//! per-run loader and collector pods, the namespace's guard rails), each checked by invariant
//! tests. How decrypted data reaches a pod and results come back is in `docs/kubernetes.md`.

pub mod manifests;
pub mod spec;

#[cfg(test)]
mod schema_tests;
