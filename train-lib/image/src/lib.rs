//! Train images in OCI registries, without a Docker daemon: the image library of the PHT
//! (`train-image`), shared by the `train` command, the station and the route service.
//!
//! A train image is its master image's layers plus exactly one *train layer* holding `/opt`
//! (the train directory). Reading unpacks `/opt` from the registry's layers into a private
//! directory, refusing anything that could carry content past the protocol's hashes; writing
//! packs a train directory into a deterministic layer and pushes the next image. The registry
//! side is async (`oci-client`); packing and unpacking are plain blocking code over readers and
//! writers, so the protocol core stays synchronous.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod assemble;
mod auth;
mod build;
mod challenge;
mod checks;
mod credentials;
mod error;
mod http;
mod layer_read;
mod layer_write;
mod lineage;
mod probe;
mod progress;
mod pull;
mod push;
mod reference;
mod registry;
mod state_config;
pub mod untar;

pub use assemble::{
    next_image, Descriptor, ImageConfig, Manifest, NextImage, LABEL_MASTER, LABEL_MASTER_REPO,
    LABEL_TRAIN_ID,
};
pub use auth::{Minter, TokenMinter};
pub use build::{build, BuildError, BuildRequest, Built};
pub use checks::{check_image, signed_master_is_labelled, Checked, ImageCheck, ProvenMaster};
pub use credentials::Credentials;
pub use error::ImageError;
pub use layer_read::{
    find_config, read_layer, scan_base_layer, unpack_train_layer, LayerRole, OptTree, CONFIG_CAP,
};
pub use layer_write::{append_tree, open_layer, write_layer_to, ChunkSender, LayerDigests, Owner};
pub use lineage::{lineage, Lineage};
pub use progress::{Progress, Reporter, Silent};
pub use pull::{pull_train, scan_base_layers, PullOptions, PulledTrain};
pub use push::{build_train_image, copy_image, push_next, PushReport};
pub use reference::{next_stop_tag, tag_for, ImageRef};
pub use registry::{Pinned, Registry, RegistryOptions, METADATA_CAP};
pub use state_config::state_config;
pub use untar::ReadLimits;

/// Paths of the train directory inside an image, relative to `/` (the protocol's layout).
pub use train_lib::layout::IMAGE_PATHS as TRAIN_PATHS;
