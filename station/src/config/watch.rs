//! `[watch]` of `station.toml`: how `station watch` reaches the route service and what it
//! takes.
//!
//! ```toml
//! [watch]
//! route_service = "https://routes.example.org"   # or --route-service
//! registries = ["registry.example.org"]          # where this station's inbox and outbox are
//! api_key_file = "/etc/pht/api-key"               # or STATION_API_KEY_FILE / STATION_API_KEY
//! state_dir = "/var/lib/pht-station/watch"        # the watcher's own restart-safe state
//! approval = "manual"                             # auto | manual
//! auto_approve_creators = ["alice"]               # manual, except trains of these creators
//! auto_approve_digests = ["sha256:…"]             # … or these exact train images
//! concurrency = 1
//! data = ["/srv/cohort.csv"]                      # mounted read-only at /opt/train_data/<name>
//! resync_secs = 30                                # full inbox reads, whatever the feed says
//! max_attempts = 3                                # runs of one train that end in registry or engine trouble
//! plain_http = false                              # http:// to a non-loopback service refused unless true
//! ```

use route_wire::Approval;
use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;

/// `[watch]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSection {
    /// The route service's base URL.
    pub route_service: Option<String>,
    /// The registries (`host:port`) this station's inbox and outbox are on: the only ones it
    /// sends its API key to (as its registry password). An inbox item that names another
    /// host is refused and reported, whoever sent it.
    pub registries: Vec<String>,
    /// A file holding the station's API key (mode 0600).
    pub api_key_file: Option<PathBuf>,
    /// The watcher's state directory.
    pub state_dir: PathBuf,
    /// How trains are taken.
    #[serde(deserialize_with = "approval")]
    pub approval: Approval,
    /// Under manual approval, creators whose trains are approved without the operator.
    pub auto_approve_creators: Vec<route_wire::CreatorId>,
    /// Under manual approval, train image digests approved without the operator.
    pub auto_approve_digests: Vec<route_wire::Digest>,
    /// Trains run at once.
    pub concurrency: usize,
    /// Local data for every train.
    pub data: Vec<PathBuf>,
    /// Seconds between full reads of the inbox.
    pub resync_secs: u64,
    /// Runs of one train that may end in registry or engine trouble before it is reported
    /// failed.
    pub max_attempts: u32,
    /// `route_service` may be plain `http://` on another machine (the API key then crosses
    /// the network in clear): only for a link protected otherwise. Loopback needs no setting.
    pub plain_http: bool,
}

fn approval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Approval, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

impl Default for WatchSection {
    fn default() -> Self {
        Self {
            route_service: None,
            registries: Vec::new(),
            api_key_file: None,
            state_dir: PathBuf::from("/var/lib/pht-station/watch"),
            approval: Approval::Auto,
            auto_approve_creators: Vec::new(),
            auto_approve_digests: Vec::new(),
            concurrency: 1,
            data: Vec::new(),
            resync_secs: 30,
            max_attempts: 3,
            plain_http: false,
        }
    }
}

/// Why the API key cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// No source names one.
    #[error("no API key for the route service: set [watch] api_key_file, STATION_API_KEY_FILE or STATION_API_KEY (it is the `pht_…` token `route-service station add` printed)")]
    Missing,
    /// The key file cannot be used.
    #[error(transparent)]
    File(#[from] route_wire::client::KeyFileError),
}

impl WatchSection {
    /// The API key: `STATION_API_KEY_FILE`, then `[watch] api_key_file`, then
    /// `STATION_API_KEY`. Never an argument: `ps` shows those.
    pub fn api_key(&self) -> Result<SecretString, ApiKeyError> {
        let file = std::env::var_os("STATION_API_KEY_FILE")
            .map(PathBuf::from)
            .or_else(|| self.api_key_file.clone());
        if let Some(path) = file {
            return Ok(route_wire::client::read_api_key_file(&path)?);
        }
        std::env::var("STATION_API_KEY")
            .map(SecretString::from)
            .map_err(|_| ApiKeyError::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_api_key_file_others_can_read_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("api-key");
        std::fs::write(&f, "pht_secret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = WatchSection {
            api_key_file: Some(f.clone()),
            ..WatchSection::default()
        };
        let err = w.api_key().unwrap_err();
        assert!(
            matches!(
                err,
                ApiKeyError::File(route_wire::client::KeyFileError::Exposed(_))
            ),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(w.api_key().unwrap().expose_secret(), "pht_secret");
    }
}
