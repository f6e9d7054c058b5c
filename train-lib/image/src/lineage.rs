//! Lineage by layer digests: a train image descends from its master when the master's layers
//! (and their diff_ids) are exactly the train's base layers. Comparing digests proves what the
//! reference's `validate_train_image` proves by exporting both images and hashing every file,
//! without reading a master layer.

use super::assemble::LABEL_MASTER;
use super::pull::PulledTrain;
use super::registry::Pinned;
use super::{ImageConfig, ImageError};

/// The outcome of a lineage check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lineage {
    /// The master's layer count.
    pub master_layers: usize,
    /// The train's layer count.
    pub train_layers: usize,
    /// The master digest the train's label records, if any.
    pub labelled_master: Option<String>,
}

/// Checks that `train` descends from `master` by layer digests: the master's layers (and their
/// diff_ids) are exactly the train's base layers, and the train adds its train layers only.
pub fn lineage(
    train: &PulledTrain,
    master: &Pinned,
    master_config: &ImageConfig,
) -> Result<Lineage, ImageError> {
    let t = &train.pinned.manifest.layers;
    let m = &master.manifest.layers;
    let labelled = train.config.label(LABEL_MASTER).map(String::from);
    if let Some(l) = &labelled {
        if *l != master.digest {
            return Err(ImageError::Lineage(format!(
                "the train is labelled as built on {l}, not on {} ({})",
                master.digest, master.given
            )));
        }
    }
    if m.len() > train.base_count {
        return Err(ImageError::Lineage(format!(
            "the master has {} layers but the train only {} base layers",
            m.len(),
            train.base_count
        )));
    }
    for (i, (a, b)) in t.iter().zip(m.iter()).enumerate() {
        if a.digest != b.digest {
            return Err(ImageError::Lineage(format!(
                "layer {i}: train has {}, master has {}",
                a.digest, b.digest
            )));
        }
    }
    let (td, md) = (train.config.diff_ids(), master_config.diff_ids());
    if td.len() < md.len() || td[..md.len()] != md[..] {
        return Err(ImageError::Lineage(
            "the train's diff_ids do not start with the master's".into(),
        ));
    }
    // Layers between the master and the train layer (PHT-meDIC's `:base` adds one holding the
    // empty train directories) are not the master's: the caller reads them with
    // `scan_base_layers` (skipping `master_layers`), and none may touch the train paths.
    Ok(Lineage {
        master_layers: m.len(),
        train_layers: t.len(),
        labelled_master: labelled,
    })
}
