//! Train images in OCI registries, without a Docker daemon.
//!
//! A train image is its master image's layers plus exactly one *train layer* holding `/opt`
//! (the train directory). Reading unpacks `/opt` from the registry's layers into a private
//! directory, refusing anything that could carry content past the protocol's hashes; writing
//! packs a train directory into a deterministic layer and pushes the next image. The registry
//! side is async (`oci-client`); packing and unpacking are plain blocking code over readers and
//! writers, so the protocol core stays synchronous.

mod assemble;
mod credentials;
mod error;
mod layer_read;
mod layer_write;
mod progress;
mod reference;
mod registry;
mod transfer;

pub use assemble::{
    next_image, Descriptor, ImageConfig, Manifest, NextImage, LABEL_MASTER, LABEL_MASTER_REPO,
    LABEL_TRAIN_ID,
};
pub use credentials::Credentials;
pub use error::ImageError;
pub use layer_read::{read_layer, LayerRole, OptTree};
pub use layer_write::{append_tree, open_layer, write_layer_to, ChunkSender, LayerDigests, Owner};
pub use progress::Bars;
pub use reference::ImageRef;
pub use registry::{Pinned, Registry, RegistryOptions};
pub use transfer::{
    build_train_image, copy_image, lineage, pull_train, push_next, scan_base_layers, Lineage,
    Progress, PulledTrain, PushReport, Reporter, Silent,
};

/// Paths of the train directory inside an image, relative to `/`.
pub const TRAIN_PATHS: &[&str] = &[
    "opt/train_config.json",
    "opt/pht_train",
    "opt/pht_results",
    "opt/user_sym_key.key",
];
