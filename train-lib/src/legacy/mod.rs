//! PHT-meDIC 2.0.5 trains ("legacy"), run byte-compatibly and checked more strictly than the
//! reference where that breaks no train the reference makes: the first station is route index 0,
//! the turn is read from which stops have signed, the last chain digest is recomputed, and files
//! in `pht_train` that `file_list` does not name are refused.

mod chain;
pub mod config;
mod create;
mod steps;
mod verify;

pub use config::LegacyConfig;
pub use create::create;
pub use steps::{post_run, pre_run, results};
pub use verify::verify;

/// Every signature of `cfg` checked against `trust` (no files): trust, creator and builder,
/// the route's state and the chain; how many stops signed.
pub fn verify_signatures_only(
    cfg: &LegacyConfig,
    trust: &crate::keys::TrustStore,
) -> crate::error::Result<usize> {
    let route = cfg.ordered_route()?;
    chain::check_trust(cfg, &route, trust)?;
    chain::verify_creator_and_builder(cfg, trust)?;
    let done = chain::stops_done(&route)?;
    chain::verify_chain(cfg, &route, done)?;
    Ok(done)
}

use crate::layout::{CONFIG, RESULTS_DIR, TRAIN_DIR, USER_KEY};
use aws_lc_rs::rsa::{OaepAlgorithm, OAEP_SHA512_MGF1SHA512};

/// What a legacy train directory may hold at its top level.
pub(crate) const TOP_LEVEL: &[&str] = &[CONFIG, TRAIN_DIR, RESULTS_DIR, USER_KEY];

/// Key wrap of the reference: RSA-OAEP with SHA-512 and MGF1-SHA-512, empty label.
pub const OAEP: &OaepAlgorithm = &OAEP_SHA512_MGF1SHA512;
