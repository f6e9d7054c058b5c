//! The creator's last step: every signature checked, the latest results decrypted into a new
//! directory, each compared with the last stop's manifest.

use super::files::stream_one;
use super::signatures::{
    check_results_listing, expected_results, load, unwrap_key, verify_signatures,
};
use super::ROLE_RESULTS;
use crate::error::{ProtocolError, Rejection, Result};
use crate::files::Way;
use crate::keys::{PrivateKey, TrustStore};
use crate::layout::RESULTS_DIR;
use crate::par;
use crate::report::StepReport;
use crate::tree::{walk, OutputDir};
use std::path::Path;

/// Checks every signature and decrypts the latest results into `out`.
pub fn results(
    dir: &Path,
    creator: &PrivateKey,
    trust: &TrustStore,
    out: &Path,
) -> Result<StepReport> {
    let v = verify_signatures(load(dir)?, trust)?;
    if &v.creator != creator.public() {
        return Err(Rejection::WrongCreatorKey.into());
    }
    if v.cfg.stops.is_empty() {
        return Err(Rejection::WrongState(
            "no station has run this train yet: there are no results".into(),
        )
        .into());
    }
    let key = unwrap_key(&v.cfg, creator, "the creator")?;
    let expected = expected_results(&v.cfg);
    check_results_listing(&walk(&dir.join(RESULTS_DIR))?, expected)?;
    let outdir = OutputDir::new(out)?;
    let sizes = par::try_map(expected, |e| {
        let Some((size, sha256)) = e.file() else {
            outdir.ensure_dir(&e.path)?;
            return Ok(None);
        };
        let rel = format!("{RESULTS_DIR}/{}", e.path);
        let sink = outdir.create(&e.path)?;
        let (n, sha) = stream_one(
            Way::Decrypt,
            &key,
            &dir.join(&rel),
            (ROLE_RESULTS, &e.path),
            size,
            sink,
            &rel,
        )?;
        if n != size || sha != sha256 {
            return Err(ProtocolError::from(Rejection::ResultFile(rel)));
        }
        Ok(Some(n))
    })?;
    outdir.commit()?;
    Ok(StepReport {
        result_files: sizes.iter().flatten().count(),
        bytes: sizes.iter().flatten().sum(),
        ..StepReport::new("native", &v.cfg.train.id, "creator", v.cfg.stops.len())
    })
}
