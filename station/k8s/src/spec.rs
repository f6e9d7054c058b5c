//! A train's run as Kubernetes objects: the per-run volume claim, the Job that runs the train,
//! and the short-lived helper pods that fill the volume with the decrypted `/opt` and read the
//! results back (through the API server's `exec`, never over the pod network, which a deny-all
//! NetworkPolicy closes). Pure functions: what they build is what the tests check.
//!
//! Every pod is what the `restricted` Pod Security Standard admits, and more: no service
//! account token, non-root with a fixed uid/gid, read-only root filesystem, every capability
//! dropped, no privilege escalation, `RuntimeDefault` seccomp, no host namespaces or host
//! paths, the image by digest, cpu, memory and ephemeral-storage limits.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, LocalObjectReference, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Label on every object of a run: its run id (as on the Docker engine's containers).
pub const LABEL_RUN: &str = "pht.station/run";
/// Label on every object the station makes: the station's id.
pub const LABEL_STATION: &str = "pht.station/id";
/// Label saying what an object is to the run: `train`, `loader`, `collector`, `work`.
pub const LABEL_PART: &str = "pht.station/part";

/// Where the run's volume is mounted in every pod: the train's `/opt` (its files, data and
/// results live under it, as on Docker).
pub const OPT: &str = "/opt";

/// What one run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The run's id (lower-case letters, digits and `-`: a DNS label).
    pub run_id: String,
    /// The station's id.
    pub station: String,
    /// The station's namespace.
    pub namespace: String,
    /// The train's image, `registry/repository@sha256:…`.
    pub image: String,
    /// The image the loader and collector run (it needs `sh`, `tar`, `sleep`), by digest.
    pub helper_image: String,
    /// Replaces the image's entrypoint when set.
    pub command: Option<Vec<String>>,
    /// The arguments (the train's entrypoint file).
    pub args: Vec<String>,
    /// The train's environment.
    pub env: Vec<(String, String)>,
    /// Local data: (name, claim), mounted read-only at `/opt/train_data/<name>` in the train's
    /// pod only (claims the operator made for the data; the station never writes them).
    pub data_claims: Vec<(String, String)>,
    /// A Secret (type `kubernetes.io/dockerconfigjson`) the admin made in the namespace, for
    /// clusters that cannot pull master images anonymously. Only master images are pulled by
    /// the cluster: the train itself reaches the pod through the loader, never a registry.
    pub pull_secret: Option<String>,
    /// Annotations of every object (the run's work directory, for the sweep: a path is no
    /// label value).
    pub annotations: Vec<(String, String)>,
    /// uid and gid the pods run as; never 0.
    pub uid: i64,
    /// The gid.
    pub gid: i64,
    /// Memory limit, MiB.
    pub memory_mib: u64,
    /// CPU limit, thousandths of a CPU.
    pub millicpus: u64,
    /// The volume's size, MiB: what a train can write, at most.
    pub disk_mib: u64,
    /// Ephemeral storage (logs, the container's own writable layer), MiB.
    pub ephemeral_mib: u64,
    /// Wall-clock seconds before the Job is ended (`activeDeadlineSeconds`).
    pub deadline_secs: u64,
    /// The storage class of the run's volume (none: the cluster's default).
    pub storage_class: Option<String>,
}

/// Why a spec cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The run id is not a DNS label.
    #[error("run id `{0}` is not a DNS label (a-z, 0-9, `-`, at most 40 characters)")]
    RunId(String),
    /// An image not pinned by digest.
    #[error("image `{0}` is not pinned by digest (`…@sha256:<64 hex>`): a tag can change between the check and the run")]
    NotPinned(String),
    /// uid or gid 0.
    #[error("pods never run as root: uid {uid}, gid {gid}")]
    Root {
        /// The uid asked for.
        uid: i64,
        /// The gid asked for.
        gid: i64,
    },
    /// A limit of zero.
    /// A data name or claim that is no DNS label, or a name given twice.
    #[error("data `{0}` cannot be mounted: names and claims are DNS labels (a-z, 0-9, `-`, at most 50 characters), each name once")]
    DataName(String),
    /// A limit of zero.
    #[error("{0} must be above zero")]
    NoLimit(&'static str),
}

/// A DNS label (RFC 1123) of at most `max` characters.
fn dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn pinned(image: &str) -> bool {
    image.rsplit_once("@sha256:").is_some_and(|(repo, hex)| {
        !repo.is_empty()
            && hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl RunSpec {
    /// Checks what the objects rely on.
    pub fn check(&self) -> Result<(), SpecError> {
        let id = &self.run_id;
        if !dns_label(id, 40) {
            return Err(SpecError::RunId(id.clone()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (name, claim) in &self.data_claims {
            if !dns_label(name, 50) || !dns_label(claim, 63) || !seen.insert(name) {
                return Err(SpecError::DataName(name.clone()));
            }
        }
        for image in [&self.image, &self.helper_image] {
            if !pinned(image) {
                return Err(SpecError::NotPinned(image.clone()));
            }
        }
        if self.uid == 0 || self.gid == 0 {
            return Err(SpecError::Root {
                uid: self.uid,
                gid: self.gid,
            });
        }
        for (v, what) in [
            (self.memory_mib, "memory"),
            (self.millicpus, "cpu"),
            (self.disk_mib, "the disk"),
            (self.ephemeral_mib, "ephemeral storage"),
            (self.deadline_secs, "the deadline"),
        ] {
            if v == 0 {
                return Err(SpecError::NoLimit(what));
            }
        }
        Ok(())
    }

    fn labels(&self, part: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_RUN.to_string(), self.run_id.clone()),
            (LABEL_STATION.to_string(), self.station.clone()),
            (LABEL_PART.to_string(), part.to_string()),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "pht-station".to_string(),
            ),
        ])
    }

    fn meta(&self, name: String, part: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(part)),
            annotations: (!self.annotations.is_empty())
                .then(|| self.annotations.iter().cloned().collect()),
            ..ObjectMeta::default()
        }
    }

    /// The name of the run's volume claim.
    pub fn claim_name(&self) -> String {
        format!("pht-work-{}", self.run_id)
    }

    /// The run's volume: it holds `/opt` (decrypted files, data, results) for this run only
    /// and is deleted with it.
    pub fn claim(&self) -> Result<PersistentVolumeClaim, SpecError> {
        self.check()?;
        Ok(PersistentVolumeClaim {
            metadata: self.meta(self.claim_name(), "work"),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: self.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        Quantity(format!("{}Mi", self.disk_mib)),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        })
    }

    fn container(
        &self,
        name: &str,
        image: &str,
        command: Option<Vec<String>>,
        args: Vec<String>,
        read_only_opt: bool,
    ) -> Container {
        let limits = BTreeMap::from([
            ("cpu".to_string(), Quantity(format!("{}m", self.millicpus))),
            (
                "memory".to_string(),
                Quantity(format!("{}Mi", self.memory_mib)),
            ),
            (
                "ephemeral-storage".to_string(),
                Quantity(format!("{}Mi", self.ephemeral_mib)),
            ),
        ]);
        Container {
            name: name.to_string(),
            image: Some(image.to_string()),
            image_pull_policy: Some("IfNotPresent".into()),
            command,
            args: (!args.is_empty()).then_some(args),
            resources: Some(ResourceRequirements {
                // Requests equal limits: the pod is Guaranteed, never the first evicted.
                requests: Some(limits.clone()),
                limits: Some(limits),
                ..ResourceRequirements::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                privileged: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                run_as_user: Some(self.uid),
                run_as_group: Some(self.gid),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "opt".into(),
                mount_path: OPT.into(),
                read_only: Some(read_only_opt),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        }
    }

    fn pod_spec(&self, containers: Vec<Container>) -> PodSpec {
        PodSpec {
            automount_service_account_token: Some(false),
            image_pull_secrets: self
                .pull_secret
                .as_ref()
                .map(|name| vec![LocalObjectReference { name: name.clone() }]),
            enable_service_links: Some(false),
            host_network: Some(false),
            host_pid: Some(false),
            host_ipc: Some(false),
            restart_policy: Some("Never".into()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(self.uid),
                run_as_group: Some(self.gid),
                fs_group: Some(self.gid),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            volumes: Some(vec![Volume {
                name: "opt".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: self.claim_name(),
                    read_only: Some(false),
                }),
                ..Volume::default()
            }]),
            containers,
            ..PodSpec::default()
        }
    }

    /// The Job that runs the train: one pod, never retried (`backoffLimit: 0`; the watcher
    /// decides about another run), ended at the deadline.
    pub fn job(&self) -> Result<Job, SpecError> {
        self.check()?;
        let mut train = self.container(
            "train",
            &self.image,
            self.command.clone(),
            self.args.clone(),
            false,
        );
        train.env = (!self.env.is_empty()).then(|| {
            self.env
                .iter()
                .map(|(k, v)| EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    ..EnvVar::default()
                })
                .collect()
        });
        for (name, _) in &self.data_claims {
            train
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .push(VolumeMount {
                    name: format!("data-{name}"),
                    mount_path: format!("{OPT}/train_data/{name}"),
                    read_only: Some(true),
                    ..VolumeMount::default()
                });
        }
        let mut pod = self.pod_spec(vec![train]);
        for (name, claim) in &self.data_claims {
            pod.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: format!("data-{name}"),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: Some(true),
                }),
                ..Volume::default()
            });
        }
        Ok(Job {
            metadata: self.meta(format!("pht-run-{}", self.run_id), "train"),
            spec: Some(JobSpec {
                backoff_limit: Some(0),
                active_deadline_seconds: Some(self.deadline_secs as i64),
                // Kept until the station has read the outcome and removes it with the run.
                ttl_seconds_after_finished: None,
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels("train")),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(pod),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        })
    }

    /// A helper pod (`loader` before the run, `collector` after it) that waits while the
    /// station streams a tar archive in or out through `exec`; it ends by itself after
    /// `wait_secs` should the station die meanwhile.
    pub fn helper(&self, part: Helper, wait_secs: u64) -> Result<Pod, SpecError> {
        self.check()?;
        let name = part.as_str();
        let c = self.container(
            name,
            &self.helper_image,
            Some(vec!["sleep".into(), wait_secs.to_string()]),
            vec![],
            part == Helper::Collector,
        );
        Ok(Pod {
            metadata: self.meta(format!("pht-{name}-{}", self.run_id), name),
            spec: Some(self.pod_spec(vec![c])),
            ..Pod::default()
        })
    }
}

/// Which helper pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// Writes the decrypted `/opt` into the run's volume.
    Loader,
    /// Reads the results back (the volume mounted read-only).
    Collector,
}

impl Helper {
    /// Its name and label.
    pub fn as_str(self) -> &'static str {
        match self {
            Helper::Loader => "loader",
            Helper::Collector => "collector",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
