//! The station's Kubernetes engine: each train runs as a Job in a namespace that enforces the
//! `restricted` Pod Security Standard, behind a deny-all NetworkPolicy, on a volume of its own
//! that only the station's pods mount. How `/opt` gets there and the results come back, and
//! why, is in `docs/kubernetes.md`; the objects are built by pure functions ([`spec`],
//! [`manifests`]) that the tests check against invariants and the upstream schemas; the engine
//! ([`KubeEngine`]) is tested against a mocked API server (`tests/`).

pub mod doctor;
mod engine;
pub mod errors;
mod exec;
pub mod manifests;
mod pods;
pub mod preflight;
pub mod spec;

pub use engine::{KubeEngine, ANNOTATION_WORKDIR};

#[cfg(test)]
mod schema_tests;
