//! What a reviewer should see of a train waiting for approval: its entrypoint, its files and
//! whether its signatures verify. Read from the inbox image's layers into a private temporary
//! directory (the files stay encrypted; nothing is decrypted here) and removed at once.

use super::state::Inspection;
use crate::config::StationConfig;
use std::path::Path;
use tokio_util::sync::CancellationToken;
use train_image::{self as img, ImageRef, Registry};
use train_lib::keys::TrustStore;
use train_lib::TrainDir;

/// Inspects the image `reference` (`repo@digest`).
pub async fn inspect(
    reg: &Registry,
    reference: &ImageRef,
    cfg: &StationConfig,
    tmp: &Path,
) -> Result<Inspection, String> {
    let work = tempfile::Builder::new()
        .prefix("pht-inspect-")
        .tempdir_in(tmp)
        .map_err(|e| format!("a temporary directory in {}: {e}", tmp.display()))?;
    let cancel = CancellationToken::new();
    let opts = img::PullOptions {
        reporter: &img::Silent,
        limits: cfg.limits.read_limits(),
        cancel: &cancel,
    };
    let pulled = img::pull_train(reg, reference, work.path(), opts)
        .await
        .map_err(|e| e.to_string())?;
    let dir = pulled.dir.clone();
    tokio::task::spawn_blocking(move || describe(&dir, &pulled.pinned.digest))
        .await
        .map_err(|e| e.to_string())?
}

fn describe(dir: &Path, digest: &str) -> Result<Inspection, String> {
    let train = TrainDir::open(dir).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    match train.verify(&TrustStore::default()) {
        Ok(r) => problems.extend(r.checks.into_iter().filter(|c| !c.ok).map(|c| c.detail)),
        Err(e) => problems.push(e.to_string()),
    }
    let mut files = Vec::new();
    list(&dir.join("pht_train"), "", &mut files);
    files.sort();
    Ok(Inspection {
        digest: route_wire::Digest::parse(digest).map_err(|e| e.to_string())?,
        entrypoint: train.entrypoint().ok().flatten(),
        files,
        problems,
    })
}

fn list(dir: &Path, prefix: &str, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        match e.file_type() {
            Ok(t) if t.is_dir() => list(&e.path(), &format!("{name}/"), out),
            Ok(t) if t.is_file() => {
                out.push((name, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
            _ => {}
        }
    }
}
