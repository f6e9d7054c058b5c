//! What a native train records about its image: the master image digest its creator signs
//! (recorded once the image is built), its entrypoint, and what its layers may unpack to.

use super::config::{BuildSig, HexBytes, NativeConfig, Pem, ResultKind};
use super::signatures::{expected_results, load, verify_signatures, Verified};
use crate::crypto::stream;
use crate::error::{ProtocolError, Rejection, Result};
use crate::keys::{PrivateKey, TrustStore};
use crate::layout::{CONFIG, RESULTS_DIR, TRAIN_DIR};
use crate::tree::Staging;
use std::collections::BTreeSet;
use std::path::Path;

/// Records `digest` as the master image of a native train that has not left its creator: the
/// creator re-signs the body and the dispatch (and the builder re-countersigns, when the train
/// has a builder). Refused once any station has run it, or when `creator_key` is not the
/// train's creator key. The existing signatures are checked first.
pub fn record_master_image(
    dir: &Path,
    digest: &str,
    creator_key: &PrivateKey,
    builder_key: Option<&PrivateKey>,
) -> Result<()> {
    let cfg = load(dir)?;
    if !cfg.stops.is_empty() {
        return Err(Rejection::WrongState(
            "the train has left its creator; its master image can no longer change".into(),
        )
        .into());
    }
    let Verified { mut cfg, .. } = verify_signatures(cfg, &TrustStore::default())?;
    if creator_key.public() != &cfg.train.creator.public_key.0 {
        return Err(ProtocolError::Input(
            "the given key is not this train's creator key".into(),
        ));
    }
    if cfg.build.is_some() && builder_key.is_none() {
        return Err(ProtocolError::Input(
            "the train has a builder countersignature: pass the builder key too".into(),
        ));
    }
    cfg.train.master_image = Some(digest.to_string());
    cfg.creator_signature = HexBytes(creator_key.sign_pss_sha256(&cfg.body_digest())?);
    if let Some(b) = builder_key {
        cfg.build = Some(BuildSig {
            public_key: Pem(b.public().clone()),
            signature: HexBytes(b.sign_pss_sha256(&cfg.build_digest())?),
        });
    }
    cfg.dispatch.signature = HexBytes(creator_key.sign_pss_sha256(&cfg.dispatch_digest())?);
    let staging = Staging::new(dir)?;
    staging.write(CONFIG, &cfg.to_json())?;
    staging.commit()?;
    Ok(())
}

/// The master image digest a native train's creator signed, if any.
pub fn master_image(dir: &Path) -> Result<Option<String>> {
    Ok(load(dir)?.train.master_image)
}

/// The entrypoint file (relative to `pht_train`) a native train's creator signed.
pub fn entrypoint(dir: &Path) -> Result<String> {
    Ok(load(dir)?.train.entrypoint)
}

/// What the image layers of this train may unpack to, from its configuration alone, once its
/// signatures verify: the configuration, every train file and every result of the last stop
/// at its exact ciphertext length, and the directories their paths need.
pub fn unpack_allowance(config: &[u8]) -> Result<crate::allowance::Allowance> {
    let Verified { cfg, .. } =
        verify_signatures(NativeConfig::parse(config)?, &TrustStore::default())?;
    let files = cfg
        .train
        .files
        .iter()
        .map(|f| (format!("{TRAIN_DIR}/{}", f.path), Some(f.size)))
        .chain(expected_results(&cfg).iter().map(|e| {
            let size = (e.kind == ResultKind::File).then_some(e.size);
            (format!("{RESULTS_DIR}/{}", e.path), size)
        }));
    let mut dirs = BTreeSet::from([TRAIN_DIR.to_string(), RESULTS_DIR.to_string()]);
    let (mut bytes, mut entries) = (config.len() as u64, 0u64);
    for (path, size) in files {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            dirs.insert(parent.to_string());
            at = parent;
        }
        match size {
            Some(n) => {
                bytes = stream::ciphertext_len(n)
                    .and_then(|c| bytes.checked_add(c))
                    .ok_or_else(|| Rejection::ConfigSchema(format!("{path}: size out of range")))?;
                entries += 1;
            }
            None => {
                dirs.insert(path);
            }
        }
    }
    // `opt/` and the configuration besides the files and directories.
    Ok(crate::allowance::Allowance {
        bytes,
        entries: entries + dirs.len() as u64 + 2,
    })
}
