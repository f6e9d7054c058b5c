//! The PHT station as a library: the run pipeline (`run`), the audit log, the engine seam
//! (`engine`: a job-level trait, Docker behind it; Kubernetes in `station-k8s`), and what keeps
//! a host clean (work directories, disks, sweeps). The
//! `station` binary parses arguments and maps a run's outcome to an exit code.

pub mod audit;
pub mod config;
pub mod disk;
pub mod doctor;
pub mod engine;
pub mod events;
pub mod output;
pub mod results;
pub mod run;
pub mod sweep;
pub mod trust_file;
pub mod watch;
pub mod workdir;
