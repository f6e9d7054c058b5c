//! Native pre-run: every check, then every file decrypted over itself (or, when a file cannot
//! be rewritten in place, into a staging copy), its size and hash compared with the manifests.
//! On any failure the directory is left exactly as it was.

use super::config::{ResultEntry, ResultKind};
use super::files::stream_one;
use super::in_place;
use super::signatures::{
    check_results_listing, check_turn, expected_results, load, mismatch, train_listing, unwrap_key,
    verify_signatures,
};
use super::{ROLE_RESULTS, ROLE_TRAIN, TOP_LEVEL};
use crate::error::Result;
use crate::files::Way;
use crate::keys::SymKey;
use crate::layout::{check_top_level, RESULTS_DIR, TRAIN_DIR};
use crate::par;
use crate::report::{Station, StepReport};
use crate::tree::{walk, Staging};
use std::path::Path;

/// Verifies and decrypts a native train in place for station `st`. On any failure the
/// directory is left exactly as it was.
pub fn pre_run(dir: &Path, st: &Station<'_>) -> Result<StepReport> {
    let t0 = std::time::Instant::now();
    let v = verify_signatures(load(dir)?, st.trust)?;
    check_top_level(dir, TOP_LEVEL)?;
    let idx = check_turn(&v, st)?;
    let key = unwrap_key(&v.cfg, st.key, &format!("station `{}`", st.id))?;
    train_listing(&v.cfg, dir)?;
    let results = walk(&dir.join(RESULTS_DIR))?;
    let expected = expected_results(&v.cfg);
    check_results_listing(&results, expected)?;

    // (role, path, size, sha256): every file to decrypt and check.
    let jobs: Vec<in_place::Job<'_>> = v
        .cfg
        .train
        .files
        .iter()
        .map(|f| (ROLE_TRAIN, f.path.as_str(), f.size, f.sha256.0))
        .chain(expected.iter().filter_map(|e| {
            e.file()
                .map(|(size, sha)| (ROLE_RESULTS, e.path.as_str(), size, sha))
        }))
        .collect();
    let sizes = match in_place::decrypt_all(dir, &key, &jobs)? {
        Some(sizes) => sizes,
        None => decrypt_staged(dir, &key, &jobs, expected)?,
    };
    tracing::debug!(secs = t0.elapsed().as_secs_f64(), "verified and decrypted");
    Ok(StepReport {
        train_files: v.cfg.train.files.len(),
        result_files: jobs.iter().filter(|j| j.0 == ROLE_RESULTS).count(),
        bytes: sizes.iter().sum(),
        ..StepReport::new("native", &v.cfg.train.id, st.id, idx)
    })
}

/// Decrypts and checks `jobs` into a staging copy that replaces the files once all are checked:
/// for directories whose files cannot be rewritten in place (hard links, read-only files).
fn decrypt_staged(
    dir: &Path,
    key: &SymKey,
    jobs: &[in_place::Job<'_>],
    expected: &[ResultEntry],
) -> Result<Vec<u64>> {
    let staging = Staging::new(dir)?;
    for e in expected.iter().filter(|e| e.kind == ResultKind::Dir) {
        staging.ensure_dir(&format!("{RESULTS_DIR}/{}", e.path))?;
    }
    let sizes = par::try_map(jobs, |(role, path, size, sha256)| {
        let top = if *role == ROLE_TRAIN {
            TRAIN_DIR
        } else {
            RESULTS_DIR
        };
        let rel = format!("{top}/{path}");
        let sink = staging.create(&rel)?;
        let (n, sha) = stream_one(
            Way::Decrypt,
            key,
            &dir.join(&rel),
            (role, path),
            *size,
            sink,
            &rel,
        )?;
        if n != *size || sha != *sha256 {
            return Err(mismatch(role, rel));
        }
        Ok(n)
    })?;
    staging.commit()?;
    Ok(sizes)
}
