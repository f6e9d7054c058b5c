//! Every check of a native train that needs no private key.

use super::config::{NativeConfig, ResultKind};
use super::signatures::{
    check_results_listing, expected_results, train_listing, verify_signatures,
};
use super::TOP_LEVEL;
use crate::crypto::stream;
use crate::error::{Rejection, Result};
use crate::keys::TrustStore;
use crate::layout::{self, RESULTS_DIR, TRAIN_DIR};
use crate::report::VerifyReport;
use crate::tree::{self, walk};
use std::path::Path;

/// Every check that needs no private key.
pub fn verify(dir: &Path, trust: &TrustStore) -> Result<VerifyReport> {
    let bytes = layout::read_config(dir)?;
    let mut rep = VerifyReport::new("native");
    let cfg = match NativeConfig::parse(&bytes) {
        Ok(c) => c,
        Err(e) => {
            rep.check("configuration", Err(e.to_string()));
            return Ok(rep);
        }
    };
    rep.train_id = cfg.train.id.clone();
    rep.identity = format!("native:{}", hex::encode(cfg.body_digest()));
    rep.creator = cfg.train.creator.id.clone();
    rep.route = cfg.train.route.iter().map(|p| p.id.clone()).collect();
    rep.stops_done = cfg.stops.len();
    rep.check("configuration", Ok("canonical".into()));
    let s = |r: Result<()>, ok: String| r.map(|()| ok).map_err(|e| e.to_string());
    rep.check(
        "top-level entries",
        s(layout::check_top_level(dir, TOP_LEVEL), "ok".into()),
    );
    let state = format!(
        "{} of {} stops done",
        cfg.stops.len(),
        cfg.train.route.len()
    );
    let sig = verify_signatures(cfg.clone(), trust).map(|_| ());
    rep.check(
        "signatures",
        s(
            sig,
            format!(
                "creator, {}dispatch and {} stop signatures verify; key wraps covered; {state}",
                if cfg.build.is_some() { "builder, " } else { "" },
                cfg.stops.len()
            ),
        ),
    );
    let shape = (|| -> Result<String> {
        train_listing(&cfg, dir)?;
        let found = walk(&dir.join(RESULTS_DIR))?;
        check_results_listing(&found, expected_results(&cfg))?;
        let sizes = cfg
            .train
            .files
            .iter()
            .map(|f| (format!("{TRAIN_DIR}/{}", f.path), f.size))
            .chain(
                expected_results(&cfg)
                    .iter()
                    .filter(|e| e.kind == ResultKind::File)
                    .map(|e| (format!("{RESULTS_DIR}/{}", e.path), e.size)),
            );
        for (rel, size) in sizes {
            let got = std::fs::symlink_metadata(dir.join(&rel))
                .map_err(tree::io_err(&dir.join(&rel)))?
                .len();
            if Some(got) != stream::ciphertext_len(size) {
                return Err(Rejection::Decrypt {
                    path: rel,
                    cause: "ciphertext length does not match the signed size".into(),
                }
                .into());
            }
        }
        Ok("files match the signed manifests; ciphertext lengths match".into())
    })();
    rep.check("files", shape.map_err(|e| e.to_string()));
    Ok(rep)
}
