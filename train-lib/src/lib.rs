//! The Personal Health Train protocol.
//!
//! A train directory is an image's `/opt`: `train_config.json`, `pht_train/` (the algorithm,
//! encrypted at rest), `pht_results/` (results, encrypted between stations) and, for legacy
//! trains, `user_sym_key.key`. Two formats share that layout:
//!
//! - [`legacy`]: PHT-meDIC (`pht-train-container-library` 2.0.5), run byte-compatibly;
//! - [`native`]: this project's authenticated format (see `docs/protocol.md`).
//!
//! [`TrainDir`] detects the format and dispatches. The protocol touches neither Docker nor async
//! I/O nor the network; the `train-image` crate moves train directories in and out of registry
//! images.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod allowance;
pub mod cancel;
mod codec;
pub mod crypto;
pub mod error;
mod files;
pub mod ids;
pub mod keys;
pub mod layout;
pub mod legacy;
pub mod native;
pub mod net;
pub mod par;
mod report;
mod signed_state;
mod spec;
pub mod text;
mod train_dir;
pub mod tree;

pub use error::{ProtocolError, Rejection};
pub use report::{Check, Station, StepReport, VerifyReport};
pub use signed_state::{signed_state, SignedState};
pub use spec::CreateSpec;
pub use train_dir::{create, unpack_allowance, Allowance, Format, MasterImage, TrainDir};
