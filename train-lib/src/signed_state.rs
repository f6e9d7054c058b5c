//! What a train's configuration alone proves, without its files: who created it, its route,
//! and how many stops have signed it, every signature checked against the trust store. The
//! route service uses it to count a push only when the state pushed carries the signature of
//! the station whose turn it was (whatever announced the push); the files are the next
//! station's to check.

use crate::error::{Rejection, Result};
use crate::keys::TrustStore;
use crate::train_dir::Format;

/// A configuration's signed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedState {
    /// The format.
    pub format: Format,
    /// The train's id.
    pub train_id: String,
    /// Its route, station ids in order (legacy: in the reference's string form).
    pub route: Vec<String>,
    /// Stops whose signatures verify, from the first.
    pub stops_done: usize,
}

/// Checks every signature of `config` (a `train_config.json`) against `trust`: the creator's,
/// the builder's, the dispatch (native) and each stop's; how many stops signed.
pub fn signed_state(config: &[u8], trust: &TrustStore) -> Result<SignedState> {
    let v: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| Rejection::ConfigSchema(e.to_string()))?;
    if v.get("format").is_some() {
        let cfg = crate::native::NativeConfig::parse(config)?;
        let (train_id, route) = (
            cfg.train.id.clone(),
            cfg.train.route.iter().map(|p| p.id.clone()).collect(),
        );
        let verified = crate::native::verify_signatures_only(cfg, trust)?;
        Ok(SignedState {
            format: Format::Native,
            train_id,
            route,
            stops_done: verified,
        })
    } else {
        let cfg = crate::legacy::LegacyConfig::parse(config)?;
        let done = crate::legacy::verify_signatures_only(&cfg, trust)?;
        Ok(SignedState {
            format: Format::Legacy,
            train_id: cfg.id.clone(),
            route: cfg
                .ordered_route()?
                .iter()
                .map(|s| s.station.python_str())
                .collect(),
            stops_done: done,
        })
    }
}
