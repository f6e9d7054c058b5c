//! `train image copy`: an image, unchanged, to another repository or registry.

use crate::cli::CopyArgs;
use crate::support::runtime;
use anyhow::Result;
use train_image::{self as image, ImageRef};

/// Copies `a.from` to `a.to`.
pub fn run(a: &CopyArgs) -> Result<()> {
    let from: ImageRef = a.from.parse()?;
    let to: ImageRef = a.to.parse()?;
    let registry = a.reg.registry();
    let rt = runtime()?;
    let pinned = rt.block_on(registry.resolve(&from))?;
    let rep = rt.block_on(image::copy_image(
        &registry,
        &pinned,
        &to,
        &pht_term::Bars::default(),
    ))?;
    if a.json {
        pht_term::outln!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        pht_term::outln!(
            "copied {from} to {to}@{} ({} blobs sent, {} mounted, {} already there; {} bytes)",
            rep.digest,
            rep.sent,
            rep.mounted,
            rep.skipped,
            rep.bytes_sent
        );
    }
    Ok(())
}
