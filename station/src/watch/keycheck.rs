//! At start, the watcher checks that the key the route service holds for it is its own
//! (vantage6's check): trains are encrypted for the service's copy, so a mismatch means every
//! train would fail here. A key the station proposed and an admin accepted is taken into use.

use super::RouteService;
use route_wire::client::ClientError;
use route_wire::StationId;
use std::path::{Path, PathBuf};
use train_lib::keys::PrivateKey;

/// Why the watcher may not start with this key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyCheckError {
    /// The service holds another key.
    #[error("the route service holds key {service} for station {station}, but this station's key {path} is {mine}. Trains for {station} are encrypted for {service}, so none could run here. If {path} is the right key, propose it with `station keys rotate --reuse` and ask an admin to run `route-service station accept-key {station} --fingerprint {mine}`; otherwise set [station] key to the private key of {service}")]
    Mismatch {
        /// The station.
        station: String,
        /// The key file.
        path: String,
        /// Its fingerprint.
        mine: String,
        /// The service's.
        service: String,
    },
    /// The service could not be asked.
    #[error("checking this station's key with the route service: {0}")]
    Service(#[from] ClientError),
    /// A rotated key could not be taken into use.
    #[error("taking the accepted key {next} into use: {source}")]
    Promote {
        /// The next key's file.
        next: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The audit log could not be handed over to the new key.
    #[error("handing the audit log over to the accepted key: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// A key file could not be read.
    #[error("{0}")]
    Key(#[from] train_lib::keys::KeyError),
}

/// The file `station keys rotate` writes the next key to, beside `key`.
pub fn next_key_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

/// What the check found.
pub enum KeyState {
    /// The service holds this key.
    Current,
    /// The service accepted the next key: it is now the key (files renamed, audit log handed
    /// over).
    Promoted(PrivateKey),
    /// The next key (this fingerprint) waits for an admin; the current key is used until then.
    Pending(String),
}

/// The station's key, as the watcher uses it.
pub struct StationKey<'a> {
    /// The station.
    pub station: &'a StationId,
    /// Its key file.
    pub path: &'a Path,
    /// The variable holding the key's password.
    pub password_env: Option<&'a str>,
    /// The key.
    pub key: &'a PrivateKey,
    /// The audit log, handed over to a promoted key.
    pub audit: Option<&'a crate::audit::AuditLog>,
}

/// Checks `k.key` against the service's copy; when the service holds the key in
/// `path.next` (`station keys rotate`, accepted by an admin), that key becomes the key.
pub async fn check_key<S: RouteService>(
    client: &S,
    k: &StationKey<'_>,
) -> Result<KeyState, KeyCheckError> {
    let held = client.station_key(k.station).await?;
    let mine = k.key.public().fingerprint();
    if held.fingerprint == mine {
        return Ok(match held.pending_fingerprint {
            Some(p) if p != mine => KeyState::Pending(p),
            _ => KeyState::Current,
        });
    }
    let next_path = next_key_path(k.path);
    if next_path.exists() {
        let next = PrivateKey::from_file_with_password_env(&next_path, k.password_env)?;
        if next.public().fingerprint() == held.fingerprint {
            if let Some(log) = k.audit {
                log.rotate_key(k.station, k.key, &next)?;
            }
            promote(k.path, &next_path).map_err(|source| KeyCheckError::Promote {
                next: next_path.display().to_string(),
                source,
            })?;
            return Ok(KeyState::Promoted(next));
        }
    }
    Err(KeyCheckError::Mismatch {
        station: k.station.to_string(),
        path: k.path.display().to_string(),
        mine,
        service: held.fingerprint,
    })
}

/// `key` → `key.previous`, `key.next` → `key`. The previous key is kept, not deleted: the
/// operator decides when it is destroyed.
fn promote(key: &Path, next: &Path) -> std::io::Result<()> {
    let mut prev = key.as_os_str().to_owned();
    prev.push(".previous");
    std::fs::rename(key, PathBuf::from(prev))?;
    std::fs::rename(next, key)
}
