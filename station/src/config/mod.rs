//! `station.toml`: who the station is, what it accepts, and the limits a train runs under.
//!
//! ```toml
//! [station]
//! id = "hospital-a"
//! key = "/etc/pht/hospital-a.key.pem"
//! # key_password_env = "PHT_KEY_PASSWORD"
//!
//! [policy]
//! # Master images a train may be built on: a repository or a parent path of repositories
//! # (matched by whole path segments, any digest) or an exact `repo@sha256:…`. Empty: any
//! # master a native train's creator signed; legacy trains (whose masters nobody signs) and
//! # unlabelled images are then refused.
//! allowed_masters = ["127.0.0.1:5001/master"]
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
//! disk_mib = 16384                    # the train's /opt: a filesystem of this size
//! train_bytes = 17179869184           # what a train's layers may unpack to (legacy; native: its signed sizes)
//! train_entries = 1000000
//! user = "65534:65534"                # never root
//!
//! [registry]
//! insecure = []                       # non-loopback registries spoken to over plain HTTP
//! token_realms = []                   # where credentials may go besides the registry itself
//!
//! [audit]
//! log = "/var/lib/pht-station/audit.jsonl"
//!
//! [tls]
//! ca_file = "/etc/pht/consortium-ca.pem"   # trusted besides the system store (optional)
//! ```

mod engine;
mod masters;
mod watch;

pub use engine::{EngineKind, EngineSection, KubernetesSection};
pub use masters::MasterRule;

pub use watch::{ApiKeyError, WatchSection};

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use train_image::ImageRef;

/// Why a station configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading the station configuration {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not a valid station configuration.
    #[error("{path}: not a valid station configuration: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// A value would weaken isolation or is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The user a train runs as: `uid:gid`, numeric, parsed once. Never root (checked at load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl FromStr for User {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (u, g) = s
            .split_once(':')
            .ok_or("limits.user must be UID:GID (numeric)")?;
        Ok(Self {
            uid: u.parse().map_err(|_| "limits.user: UID must be numeric")?,
            gid: g.parse().map_err(|_| "limits.user: GID must be numeric")?,
        })
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The whole file; every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    #[serde(default)]
    /// `[station]`: who the station is.
    pub station: Identity,
    #[serde(default)]
    /// `[policy]`: what it accepts.
    pub policy: Policy,
    #[serde(default)]
    /// `[limits]`: what a train gets.
    pub limits: Limits,
    #[serde(default)]
    /// `[registry]`: how registries are reached.
    pub registry: RegistrySection,
    #[serde(default)]
    /// `[audit]`: where decisions are recorded.
    pub audit: AuditSection,
    #[serde(default)]
    /// `[watch]`: how `station watch` reaches the route service.
    pub watch: WatchSection,
    #[serde(default)]
    /// `[tls]`: which CAs are trusted besides the system's.
    pub tls: TlsSection,
    #[serde(default)]
    /// `[engine]`: what runs the trains (Docker unless set).
    pub engine: EngineSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[tls]`.
pub struct TlsSection {
    /// A PEM file of CA certificates trusted besides the system store, for the route
    /// service, registries and token realms (a consortium's own CA).
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file`, read at load.
    #[serde(skip)]
    pub certs: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[station]`.
pub struct Identity {
    /// The station's id on routes.
    pub id: Option<String>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// The variable holding the key's password.
    pub key_password_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[policy]`.
pub struct Policy {
    #[serde(default)]
    /// Master images trains may run on (see [`StationConfig::policy_names_master`]).
    pub allowed_masters: Vec<String>,
    #[serde(default)]
    /// Creator ids accepted; empty: any.
    pub allowed_creators: Vec<String>,
    /// The trust file of pinned keys.
    pub trust: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[limits]`: the bounds every train runs within.
pub struct Limits {
    /// Memory (and memory plus swap), MiB.
    pub memory_mib: u64,
    /// CPUs.
    pub cpus: f64,
    /// Processes.
    pub pids: i64,
    /// Wall-clock seconds before the container is killed.
    pub timeout_secs: u64,
    /// Train output shown on stderr, at most.
    pub log_bytes: u64,
    /// What the results archive may hold, at most.
    pub results_bytes: u64,
    /// Size of the filesystem the train's `/opt` is (a loop-mounted ext4 image): what a train
    /// can write to the host's disk, at most.
    pub disk_mib: u64,
    /// What a train's layers may unpack to: bytes of content (a native train is held to its
    /// signed sizes as well) and entries.
    pub train_bytes: u64,
    /// Entries (files and directories) a train's layers or results may hold.
    pub train_entries: u64,
    /// `uid:gid` the train runs as; never root.
    pub user: User,
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
            disk_mib: 16 << 10,
            train_bytes: 16 << 30,
            train_entries: 1_000_000,
            user: User {
                uid: 65534,
                gid: 65534,
            },
        }
    }
}

impl Limits {
    /// The caps on what a train's layers may unpack to.
    pub fn read_limits(&self) -> train_image::ReadLimits {
        train_image::ReadLimits {
            bytes: self.train_bytes,
            entries: self.train_entries,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[registry]`.
pub struct RegistrySection {
    #[serde(default)]
    /// Registries (`host:port`) spoken to over plain HTTP although not on loopback.
    pub insecure: Vec<String>,
    #[serde(default)]
    /// Token realms (URLs) registry credentials may be sent to when a registry's challenge
    /// names them, beyond the registry's own host; `station watch` adds the route service's
    /// (`<route_service>/v1/registry-token`). Credentials never go to a realm not named.
    pub token_realms: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[audit]`.
pub struct AuditSection {
    /// The audit log; without one a station cannot refuse a replay.
    pub log: Option<PathBuf>,
}

impl StationConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let c: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let mut c = c;
        c.check()
            .map_err(|e| ConfigError::Invalid(format!("{shown}: invalid limits: {e}")))?;
        if let Some(f) = &c.tls.ca_file {
            c.tls.certs = train_lib::net::read_ca_file(f)
                .map_err(|e| ConfigError::Invalid(format!("{shown}: [tls] ca_file: {e}")))?;
        }
        Ok(c)
    }

    /// How the route service is reached: the configured CAs, and whether plain HTTP off
    /// this machine was allowed.
    pub fn client_options(&self) -> route_wire::client::ClientOptions {
        route_wire::client::ClientOptions {
            ca_certs: self.tls.certs.clone(),
            plain_http: self.watch.plain_http,
        }
    }

    /// Limits that would weaken isolation are refused, not clamped.
    pub fn check(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if l.user.uid == 0 {
            return bad("limits.user must not be root (uid 0)");
        }
        if l.memory_mib < 16 || l.cpus <= 0.0 || l.pids < 8 || l.timeout_secs == 0 {
            return bad(
                "limits: memory_mib ≥ 16, cpus > 0, pids ≥ 8 and timeout_secs > 0 are required",
            );
        }
        if l.disk_mib < 16 || l.train_bytes == 0 || l.train_entries == 0 {
            return bad("limits: disk_mib ≥ 16, train_bytes > 0 and train_entries > 0 are required (no limit is not an option)");
        }
        self.master_rules()?;
        Ok(())
    }

    /// The parsed `policy.allowed_masters` (checked by [`StationConfig::check`]).
    pub fn master_rules(&self) -> Result<Vec<MasterRule>, ConfigError> {
        self.policy
            .allowed_masters
            .iter()
            .map(|a| MasterRule::parse(a).map_err(ConfigError::Invalid))
            .collect()
    }

    /// Whether the policy names `master` at `digest` (see [`MasterRule`]). An empty policy
    /// names none; an entry that does not parse names none (the configuration check refuses it).
    pub fn policy_names_master(&self, master: &ImageRef, digest: &str) -> bool {
        self.master_rules()
            .is_ok_and(|rules| rules.iter().any(|r| r.allows(master, digest)))
    }

    /// Whether `master` at `digest` may be run: any master when the policy is empty,
    /// otherwise one it names.
    pub fn master_allowed(&self, master: &ImageRef, digest: &str) -> bool {
        self.policy.allowed_masters.is_empty() || self.policy_names_master(master, digest)
    }
}

#[cfg(test)]
mod tests {
    fn m(repo: &str) -> ImageRef {
        format!("{repo}:latest").parse().unwrap()
    }
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let c: StationConfig = toml::from_str(include_str!("../../station.example.toml")).unwrap();
        c.check().unwrap();
        assert_eq!(c.station.id.as_deref(), Some("hospital-a"));
    }

    #[test]
    fn refuses_root_and_unknown_keys_and_matches_masters() {
        let c: StationConfig = toml::from_str("[limits]\nuser = \"0:0\"\n").unwrap();
        assert!(c.check().unwrap_err().to_string().contains("root"));
        assert!(toml::from_str::<StationConfig>("[limits]\nprivileged = true\n").is_err());
        let c: StationConfig = toml::from_str(
            "[policy]\nallowed_masters = [\"r:1/master/\", \"r:1/other@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]\n",
        )
        .unwrap();
        c.check().unwrap();
        assert!(c.master_allowed(&m("r:1/master/busybox"), "sha256:x"));
        assert!(c.master_allowed(
            &m("r:1/other"),
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
        assert!(!c.master_allowed(
            &m("r:1/other"),
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        ));
        assert!(!c.master_allowed(&m("r:2/master/busybox"), "sha256:x"));
        let c: StationConfig =
            toml::from_str("[policy]\nallowed_masters = [\"r:1/other:3.11\"]\n").unwrap();
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("r:1/other:3.11"));
    }

    #[test]
    fn masters_match_by_whole_path_segments() {
        let c: StationConfig = toml::from_str(
            "[policy]\nallowed_masters = [\"reg:5000/master/python\", \"reg:5/m/\"]\n",
        )
        .unwrap();
        for (repo, ok) in [
            ("reg:5000/master/python", true),
            ("reg:5000/master/python/3.11", true),
            ("reg:5000/master/python-evil", false),
            ("reg:5000/master/pythonx/3.11", false),
            ("reg:50001/master/python", false),
            ("reg:5/m/anything", true),
            ("reg:5/mm/anything", false),
            ("reg:5/m", true),
        ] {
            assert_eq!(c.policy_names_master(&m(repo), "sha256:x"), ok, "{repo}");
        }
        // An empty policy names nothing (legacy trains need it to), and allows any signed one.
        let empty = StationConfig::default();
        assert!(!empty.policy_names_master(&m("reg:5/m"), "sha256:x"));
        assert!(empty.master_allowed(&m("reg:5/m"), "sha256:x"));
    }
}
