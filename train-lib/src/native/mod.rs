//! The native format: authenticated, path-bound, turn-enforcing. See `docs/protocol.md`.

pub mod config;
pub mod in_place;
pub mod steps;

pub use config::NativeConfig;
pub use steps::{create, post_run, pre_run, results, verify};

use aws_lc_rs::rsa::{OaepAlgorithm, OAEP_SHA256_MGF1SHA256};

/// Key wrap: RSA-OAEP with SHA-256 and MGF1-SHA-256, with this label.
pub const OAEP: &OaepAlgorithm = &OAEP_SHA256_MGF1SHA256;
/// The OAEP label, so a native wrap cannot be taken for any other RSA ciphertext.
pub const OAEP_LABEL: &[u8] = b"pht-native/1 file key";
/// File-key role of train files.
pub const ROLE_TRAIN: &str = "train";
/// File-key role of results.
pub const ROLE_RESULTS: &str = "results";
