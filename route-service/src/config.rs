//! The service's settings: `route-service.toml`, every field overridable by a flag or an
//! environment variable in the binary. Secrets (webhook secrets) are read from files or
//! environment variables named here, never written in the file itself, so the file can be
//! checked into configuration management.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error("configuration {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A setting is missing or wrong.
    #[error("configuration: {0}")]
    Invalid(String),
}

/// Everything the service needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `sqlite:PATH` (created if missing) or `postgres://…`.
    #[serde(default = "default_database")]
    pub database: String,
    /// A file holding the PostgreSQL password, put into `database` (`postgres://USER@HOST/DB`)
    /// when the configuration is read: a password then lives in a secret file (a container
    /// secret), not in the configuration or the environment.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// The registries trains move between.
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryConfig>,
    /// The movers.
    #[serde(default)]
    pub mover: MoverConfig,
    /// A station that has not polled for this long is `offline`.
    #[serde(default = "default_offline")]
    pub offline_after_secs: u64,
    /// Largest request body accepted (submissions, reports and notifications are small).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// The registry token issuer (for registries with `token_service`).
    #[serde(default)]
    pub token: Option<crate::token::TokenConfig>,
    /// Connections served at once; more are closed at accept. Unset: the process's file limit
    /// (raised to its hard limit at start) less 256 kept for the database, the registries and
    /// the movers, at most 16,384 ([`crate::capacity`]); 1,100 idle connections at a 1,024
    /// limit once stopped `accept`, and every call then timed out. A configured value the file
    /// limit cannot hold stops the start.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers, and an idle keep-alive connection
    /// to start its next request; then the connection is closed.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Event feeds and inbox long-polls one principal may hold open at once (a station's
    /// watcher holds two); more are answered 429.
    #[serde(default = "default_streams")]
    pub max_streams_per_principal: usize,
    /// A PEM file of CA certificates trusted besides the system store when the movers and
    /// `/readyz` reach registries over TLS (a consortium's own CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file`, read at load.
    #[serde(skip)]
    pub ca_certs: Vec<Vec<u8>>,
    /// How long a dashboard session lasts (seconds); signing out, or a changed API key, ends
    /// it sooner.
    #[serde(default = "default_ui_session")]
    pub ui_session_secs: u64,
    /// The dashboard marks a train's open stop "stuck" after this many seconds in one state.
    #[serde(default = "default_ui_stuck")]
    pub ui_stuck_after_secs: u64,
}

fn default_ui_session() -> u64 {
    8 * 3600
}

fn default_ui_stuck() -> u64 {
    3600
}

/// `postgres://USER@REST` with `password` put in (percent-encoded).
fn with_password(url: &str, password: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError::Invalid(
            "database_password_file needs `database = \"postgres://USER@HOST:PORT/DB\"` (a user, no password in the URL)".into(),
        )
    };
    let (scheme, rest) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|s| url.strip_prefix(s).map(|r| (*s, r)))
        .ok_or_else(bad)?;
    let (user, host) = rest.split_once('@').ok_or_else(bad)?;
    if user.is_empty() || user.contains(':') {
        return Err(bad());
    }
    let enc: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(format!("{scheme}{user}:{enc}@{host}"))
}

fn default_header_timeout() -> u64 {
    10
}
fn default_streams() -> usize {
    16
}

/// One registry the service moves trains in and takes notifications from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// A short name for logs and metrics.
    pub name: String,
    /// `host:port`, as image references name it.
    pub address: String,
    /// Environment variable holding the notification secret (sent by the registry as
    /// `Authorization: <secret>`, optionally `Bearer <secret>`).
    #[serde(default)]
    pub notification_secret_env: Option<String>,
    /// File holding the notification secret (first line).
    #[serde(default)]
    pub notification_secret_file: Option<PathBuf>,
    /// The secret itself, once read (never from the file's text).
    #[serde(skip)]
    pub secret: Option<SecretString>,
    /// Plain HTTP although not on loopback.
    #[serde(default)]
    pub insecure: bool,
    /// The registry's `auth.token.service` when it takes the service's tokens: then pushes
    /// count only when the notification's actor is the station whose turn it is, and the
    /// service moves with its own account.
    #[serde(default)]
    pub token_service: Option<String>,
    /// For a registry that does not take this service's tokens (Harbor): the user name of
    /// the service's account there (a robot account).
    #[serde(default)]
    pub username: Option<String>,
    /// File holding that account's password (first line; mode 0600).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The token realm that registry's challenges name (its `/service/token`): the account
    /// is sent there and to the registry itself, nowhere else.
    #[serde(default)]
    pub token_realm: Option<String>,
    /// The account, once read.
    #[serde(skip)]
    pub credentials: Option<train_image::Credentials>,
}

/// How moves are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoverConfig {
    /// Moves made at once by this replica.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How long a claimed move is this replica's before another may take it over (a crashed
    /// replica's moves are picked up again after this).
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// Attempts before a move fails for good (the wait doubles from 1 s, capped at 5 min).
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    /// How often every outbox of a hop in flight is listed, to catch pushes whose notification
    /// was lost (registries drop queued events on restart).
    #[serde(default = "default_reconcile")]
    pub reconcile_secs: u64,
    /// Time a station has for one train (delivery to push) before the hop expires.
    #[serde(default = "default_deadline")]
    pub hop_deadline_secs: u64,
}

impl Default for MoverConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            lease_secs: default_lease(),
            max_attempts: default_attempts(),
            reconcile_secs: default_reconcile(),
            hop_deadline_secs: default_deadline(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_database() -> String {
    "sqlite:route-service.db".into()
}
fn default_offline() -> u64 {
    120
}
fn default_body() -> usize {
    1 << 20
}
fn default_workers() -> usize {
    4
}
fn default_lease() -> u64 {
    30
}
fn default_attempts() -> i64 {
    10
}
fn default_reconcile() -> u64 {
    30
}
fn default_deadline() -> u64 {
    7 * 24 * 3600
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl Config {
    /// Reads `path`; secrets are not read yet ([`Config::load_secrets`]).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let err = |detail: String| ConfigError::File {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut cfg: Self = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        if let Some(f) = &cfg.database_password_file {
            let pw = std::fs::read_to_string(f).map_err(|e| {
                ConfigError::Invalid(format!("database_password_file {}: {e}", f.display()))
            })?;
            cfg.database = with_password(&cfg.database, pw.trim_end_matches(['\n', '\r']))?;
        }
        if let Some(f) = &cfg.ca_file {
            cfg.ca_certs = train_lib::net::read_ca_file(f)
                .map_err(|e| ConfigError::Invalid(format!("ca_file: {e}")))?;
        }
        Ok(cfg)
    }

    /// Reads each registry's notification secret from its variable or file; a registry without
    /// one cannot notify (its notifications are answered 401) and is only reconciled.
    pub fn load_secrets(&mut self) -> Result<(), ConfigError> {
        for r in &mut self.registries {
            let text = match (&r.notification_secret_env, &r.notification_secret_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid(format!(
                        "registry {}: set notification_secret_env or notification_secret_file, not both",
                        r.name
                    )))
                }
                (Some(var), None) => Some(std::env::var(var).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "registry {}: environment variable {var} (its notification secret) is not set",
                        r.name
                    ))
                })?),
                (None, Some(file)) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| {
                            ConfigError::Invalid(format!(
                                "registry {}: notification secret file {}: {e}",
                                r.name,
                                file.display()
                            ))
                        })?
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ),
                (None, None) => None,
            };
            if let Some(t) = text {
                // 16 characters: a webhook secret shorter than that is guessable online.
                if t.trim().len() < 16 {
                    return Err(ConfigError::Invalid(format!(
                        "registry {}: the notification secret is shorter than 16 characters; \
                         generate one with `openssl rand -hex 32`",
                        r.name
                    )));
                }
                r.secret = Some(SecretString::from(t.trim().to_string()));
            }
            r.credentials = match (&r.username, &r.password_file) {
                (Some(u), Some(f)) => {
                    if r.token_service.is_some() {
                        return Err(ConfigError::Invalid(format!(
                            "registry {}: takes this service's tokens (token_service), so the service needs no account there; remove username and password_file",
                            r.name
                        )));
                    }
                    let p = std::fs::read_to_string(f).map_err(|e| {
                        ConfigError::Invalid(format!(
                            "registry {}: password file {}: {e}",
                            r.name,
                            f.display()
                        ))
                    })?;
                    Some(train_image::Credentials::Basic {
                        username: u.clone(),
                        password: SecretString::from(p.lines().next().unwrap_or("").to_string()),
                    })
                }
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "registry {}: set both username and password_file, or neither",
                        r.name
                    )))
                }
            };
        }
        // The secret says which registry a notification comes from: two registries sharing
        // one would have one's pushes taken for the other's.
        use secrecy::ExposeSecret;
        let secrets: Vec<(&str, &str)> = self
            .registries
            .iter()
            .filter_map(|r| {
                r.secret
                    .as_ref()
                    .map(|s| (r.name.as_str(), s.expose_secret()))
            })
            .collect();
        for (i, (a, s)) in secrets.iter().enumerate() {
            if let Some((b, _)) = secrets[i + 1..].iter().find(|(_, t)| t == s) {
                return Err(ConfigError::Invalid(format!(
                    "registries {a} and {b} have the same notification secret; give each its own \
                     (the secret tells the service which registry notifies)"
                )));
            }
        }
        Ok(())
    }

    /// Checks what cannot be checked by parsing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.registries {
            if !seen.insert(&r.address) {
                return Err(ConfigError::Invalid(format!(
                    "registry {} is configured twice",
                    r.address
                )));
            }
        }
        if self.registries.iter().any(|r| r.token_service.is_some()) && self.token.is_none() {
            return Err(ConfigError::Invalid(
                "a registry has token_service but there is no [token] section (the signing key)"
                    .into(),
            ));
        }
        if self
            .max_connections
            .is_some_and(|n| n < crate::capacity::MIN)
            || self.header_timeout_secs == 0
            || self.max_streams_per_principal < 2
        {
            return Err(ConfigError::Invalid(
                "max_connections ≥ 16, header_timeout_secs ≥ 1 and max_streams_per_principal ≥ 2 are required (a watcher holds a feed and a long-poll)".into(),
            ));
        }
        if self.mover.workers == 0 {
            return Err(ConfigError::Invalid(
                "mover.workers must be at least 1".into(),
            ));
        }
        if !(self.database.starts_with("sqlite:")
            || self.database.starts_with("postgres://")
            || self.database.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "database `{}`: use sqlite:PATH or postgres://…",
                self.database
            )));
        }
        Ok(())
    }

    /// The configured registry at `address`.
    pub fn registry(&self, address: &str) -> Option<&RegistryConfig> {
        self.registries.iter().find(|r| r.address == address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_comes_from_its_file_encoded_and_only_into_a_url_with_a_user() {
        assert_eq!(
            with_password("postgres://route@db:5432/route", "p@ss:w/rd").unwrap(),
            "postgres://route:p%40ss%3Aw%2Frd@db:5432/route"
        );
        for bad in [
            "sqlite:/x.db",
            "postgres://db/route",
            "postgres://u:pw@db/route",
        ] {
            let e = with_password(bad, "x").unwrap_err().to_string();
            assert!(e.contains("postgres://USER@HOST"), "{bad}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "database = \"postgres://route@db/route\"\ndatabase_password_file = \"{}\"\n",
                pw.display()
            ),
        )
        .unwrap();
        assert_eq!(
            Config::from_file(&cfg).unwrap().database,
            "postgres://route:secret@db/route"
        );
    }

    #[test]
    fn a_short_secret_and_an_unknown_setting_are_refused() {
        std::env::set_var("RS_TEST_SHORT_SECRET", "abc");
        let mut c: Config = toml::from_str(
            "[[registry]]\nname='a'\naddress='r:1'\nnotification_secret_env='RS_TEST_SHORT_SECRET'\n",
        )
        .unwrap();
        let e = c.load_secrets().unwrap_err().to_string();
        assert!(e.contains("shorter than 16"), "{e}");
        std::env::set_var("RS_TEST_SHARED_SECRET", "0123456789abcdef0123");
        let mut c: Config = toml::from_str(
            "[[registry]]\nname='a'\naddress='r:1'\nnotification_secret_env='RS_TEST_SHARED_SECRET'\n\
             [[registry]]\nname='b'\naddress='r:2'\nnotification_secret_env='RS_TEST_SHARED_SECRET'\n",
        )
        .unwrap();
        let e = c.load_secrets().unwrap_err().to_string();
        assert!(e.contains("same notification secret"), "{e}");
        let e = toml::from_str::<Config>("lisen = 'x'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen"), "{e}");
    }
}
