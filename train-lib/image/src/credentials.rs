use super::ImageError;
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Credentials for one registry. `Debug` never shows the password.
#[derive(Clone)]
pub enum Credentials {
    /// No credentials.
    Anonymous,
    /// User name and password (or token).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

impl Credentials {
    /// Credentials for `registry`, in Docker's order of preference: the environment
    /// (`PHT_REGISTRY_USERNAME` and `PHT_REGISTRY_PASSWORD`), then `~/.docker/config.json`
    /// (`$DOCKER_CONFIG/config.json`): a credential helper named for the registry
    /// (`credHelpers`), the default store (`credsStore`), an inline `auths` entry.
    /// Anonymous when nothing matches.
    pub fn for_registry(registry: &str) -> Result<Self, ImageError> {
        let env = (
            std::env::var("PHT_REGISTRY_USERNAME").ok(),
            std::env::var("PHT_REGISTRY_PASSWORD").ok(),
        );
        Self::lookup(registry, env, docker_config_path().as_deref())
    }

    /// [`Credentials::for_registry`] with its inputs given.
    fn lookup(
        registry: &str,
        env: (Option<String>, Option<String>),
        config: Option<&std::path::Path>,
    ) -> Result<Self, ImageError> {
        if let (Some(u), Some(p)) = env {
            return Ok(Credentials::Basic {
                username: u,
                password: p.into(),
            });
        }
        let Some(path) = config else {
            return Ok(Credentials::Anonymous);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Credentials::Anonymous)
            }
            Err(e) => return Err(super::error::io_err(path)(e)),
        };
        let err = |reason: String| ImageError::Credentials {
            registry: registry.to_string(),
            reason,
        };
        let cfg: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(format!("{} is not JSON: {e}", path.display())))?;
        let helper = cfg
            .get("credHelpers")
            .and_then(|h| h.get(registry))
            .or_else(|| cfg.get("credsStore"))
            .and_then(|h| h.as_str());
        if let Some(helper) = helper {
            if let Some(c) = from_helper(helper, registry).map_err(err)? {
                return Ok(c);
            }
        }
        let entry = cfg.get("auths").and_then(|a| {
            a.get(registry)
                .or_else(|| a.get(format!("https://{registry}").as_str()))
                .or_else(|| a.get(format!("http://{registry}").as_str()))
        });
        if let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(|a| a.as_str()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .map_err(|_| err(format!("{}: `auth` is not base64", path.display())))?;
            let text = String::from_utf8(raw)
                .map_err(|_| err(format!("{}: `auth` is not UTF-8", path.display())))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| err(format!("{}: `auth` is not user:password", path.display())))?;
            return Ok(Credentials::Basic {
                username: u.to_string(),
                password: p.to_string().into(),
            });
        }
        Ok(Credentials::Anonymous)
    }

    pub(crate) fn to_auth(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.expose_secret().to_string())
            }
        }
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Runs `docker-credential-<helper> get` as Docker does; `None` when the helper knows nothing.
fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, String> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(registry.as_bytes())
        .map_err(|e| format!("{prog}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if !out.status.success() {
        // Helpers answer "credentials not found" with a failure; Docker treats it as anonymous.
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| format!("{prog}: answer is not JSON"))?;
    let (Some(u), Some(s)) = (
        v.get("Username").and_then(|x| x.as_str()),
        v.get("Secret").and_then(|x| x.as_str()),
    ) else {
        return Err(format!("{prog}: answer lacks Username or Secret"));
    };
    Ok(Some(Credentials::Basic {
        username: u.to_string(),
        password: s.to_string().into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_auths_and_prefers_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.json");
        // "ci:s3cret" in base64.
        std::fs::write(
            &cfg,
            r#"{"auths":{"reg.example:5000":{"auth":"Y2k6czNjcmV0"}}}"#,
        )
        .unwrap();
        let none = (None, None);
        match Credentials::lookup("reg.example:5000", none.clone(), Some(&cfg)).unwrap() {
            Credentials::Basic { username, password } => {
                assert_eq!(username, "ci");
                assert_eq!(password.expose_secret(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Credentials::lookup("other:5000", none.clone(), Some(&cfg)).unwrap(),
            Credentials::Anonymous
        ));
        let env = (Some("env-user".to_string()), Some("env-pw".to_string()));
        assert!(matches!(
            Credentials::lookup("reg.example:5000", env, Some(&cfg)).unwrap(),
            Credentials::Basic { username, .. } if username == "env-user"
        ));
        std::fs::write(
            &cfg,
            r#"{"auths":{"reg.example:5000":{"auth":"not base64!"}}}"#,
        )
        .unwrap();
        assert!(matches!(
            Credentials::lookup("reg.example:5000", none.clone(), Some(&cfg)),
            Err(ImageError::Credentials { .. })
        ));
        // A helper that does not exist is an error that names it.
        std::fs::write(
            &cfg,
            r#"{"credHelpers":{"reg.example:5000":"pht-nonexistent"}}"#,
        )
        .unwrap();
        let e = Credentials::lookup("reg.example:5000", none, Some(&cfg)).unwrap_err();
        assert!(
            e.to_string().contains("docker-credential-pht-nonexistent"),
            "{e}"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::Basic {
            username: "ci".into(),
            password: "hunter2-secret".to_string().into(),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("ci"));
    }
}
