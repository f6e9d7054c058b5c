//! `station.toml`: who the station is, what it accepts, and the limits a train runs under.
//!
//! ```toml
//! [station]
//! id = "hospital-a"
//! key = "/etc/pht/hospital-a.key.pem"
//! # key_password_env = "PHT_KEY_PASSWORD"
//!
//! [policy]
//! # Master images a train may be built on: a repository prefix (any digest from it) or an
//! # exact `repo@sha256:…`. Empty: any master (its lineage is still checked).
//! allowed_masters = ["127.0.0.1:5001/master/"]
//! allowed_creators = ["alice"]        # empty: any creator
//! trust = "/etc/pht/trust.json"       # pinned creator, builder and station keys
//!
//! [limits]
//! memory_mib = 512
//! cpus = 1.0
//! pids = 256
//! timeout_secs = 3600
//! log_bytes = 1048576
//! results_bytes = 10737418240
//! user = "65534:65534"                # never root
//!
//! [registry]
//! insecure = []                       # non-loopback registries spoken to over plain HTTP
//!
//! [audit]
//! log = "/var/lib/pht-station/audit.jsonl"
//! ```

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole file; every section is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    #[serde(default)]
    pub station: Identity,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub registry: RegistrySection,
    #[serde(default)]
    pub audit: AuditSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub id: Option<String>,
    pub key: Option<PathBuf>,
    pub key_password_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub allowed_masters: Vec<String>,
    #[serde(default)]
    pub allowed_creators: Vec<String>,
    pub trust: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub memory_mib: u64,
    pub cpus: f64,
    pub pids: i64,
    pub timeout_secs: u64,
    pub log_bytes: u64,
    pub results_bytes: u64,
    pub user: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 1024,
            cpus: 1.0,
            pids: 256,
            timeout_secs: 3600,
            log_bytes: 1 << 20,
            results_bytes: 16 << 30,
            user: "65534:65534".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    #[serde(default)]
    pub insecure: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub log: Option<PathBuf>,
}

impl StationConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the station configuration {}", path.display()))?;
        let c: Self = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid station configuration", path.display()))?;
        c.check()
            .with_context(|| format!("{}: invalid limits", path.display()))?;
        Ok(c)
    }

    /// Limits that would weaken isolation are refused, not clamped.
    pub fn check(&self) -> Result<()> {
        let l = &self.limits;
        let (uid, gid) = l
            .user
            .split_once(':')
            .context("limits.user must be UID:GID (numeric)")?;
        let (uid, _gid): (u32, u32) = (
            uid.parse().context("limits.user: UID must be numeric")?,
            gid.parse().context("limits.user: GID must be numeric")?,
        );
        if uid == 0 {
            bail!("limits.user must not be root (uid 0)");
        }
        if l.memory_mib < 16 || l.cpus <= 0.0 || l.pids < 8 || l.timeout_secs == 0 {
            bail!("limits: memory_mib ≥ 16, cpus > 0, pids ≥ 8 and timeout_secs > 0 are required");
        }
        Ok(())
    }

    /// Whether `master` (`registry/repo`) at `digest` is allowed.
    pub fn master_allowed(&self, master_repo: &str, digest: &str) -> bool {
        let allowed = &self.policy.allowed_masters;
        allowed.is_empty()
            || allowed.iter().any(|a| match a.split_once('@') {
                Some((repo, d)) => repo == master_repo && d == digest,
                None => master_repo.starts_with(a.as_str()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let c: StationConfig = toml::from_str(include_str!("../station.example.toml")).unwrap();
        c.check().unwrap();
        assert_eq!(c.station.id.as_deref(), Some("hospital-a"));
    }

    #[test]
    fn refuses_root_and_unknown_keys_and_matches_masters() {
        let c: StationConfig = toml::from_str("[limits]\nuser = \"0:0\"\n").unwrap();
        assert!(c.check().unwrap_err().to_string().contains("root"));
        assert!(toml::from_str::<StationConfig>("[limits]\nprivileged = true\n").is_err());
        let c: StationConfig = toml::from_str(
            "[policy]\nallowed_masters = [\"r:1/master/\", \"r:1/other@sha256:aa\"]\n",
        )
        .unwrap();
        c.check().unwrap();
        assert!(c.master_allowed("r:1/master/busybox", "sha256:x"));
        assert!(c.master_allowed("r:1/other", "sha256:aa"));
        assert!(!c.master_allowed("r:1/other", "sha256:bb"));
        assert!(!c.master_allowed("r:2/master/busybox", "sha256:x"));
    }
}
