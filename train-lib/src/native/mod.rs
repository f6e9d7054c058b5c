//! The native format: authenticated, path-bound, turn-enforcing. See `docs/protocol.md`.

pub mod config;
mod create;
mod fields;
mod files;
pub mod in_place;
mod master;
mod post_run;
mod pre_run;
mod results;
mod signatures;
mod verify;

pub use config::NativeConfig;
pub use create::create;
pub use master::{entrypoint, master_image, record_master_image, unpack_allowance};
pub use post_run::post_run;
pub use pre_run::pre_run;
pub use results::results;
pub use verify::verify;

/// Every signature of `cfg` checked against `trust` (no files); how many stops signed.
pub fn verify_signatures_only(
    cfg: NativeConfig,
    trust: &crate::keys::TrustStore,
) -> crate::error::Result<usize> {
    signatures::verify_signatures(cfg, trust).map(|v| v.cfg.stops.len())
}

use crate::layout::{CONFIG, RESULTS_DIR, TRAIN_DIR};
use aws_lc_rs::rsa::{OaepAlgorithm, OAEP_SHA256_MGF1SHA256};

/// What a native train directory may hold at its top level.
const TOP_LEVEL: &[&str] = &[CONFIG, TRAIN_DIR, RESULTS_DIR];

/// Key wrap: RSA-OAEP with SHA-256 and MGF1-SHA-256, with this label.
pub const OAEP: &OaepAlgorithm = &OAEP_SHA256_MGF1SHA256;
/// The OAEP label, so a native wrap cannot be taken for any other RSA ciphertext.
pub const OAEP_LABEL: &[u8] = b"pht-native/1 file key";
/// File-key role of train files.
pub const ROLE_TRAIN: &str = "train";
/// File-key role of results.
pub const ROLE_RESULTS: &str = "results";
