//! Every check of a legacy train that needs no private key.

use super::chain::{check_trust, stops_done, verify_chain, verify_creator_and_builder};
use super::config::LegacyConfig;
use crate::crypto::cbc::BLOCK;
use crate::error::Result;
use crate::keys::TrustStore;
use crate::layout::{self, QUERY, RESULTS_DIR, TRAIN_DIR};
use crate::report::VerifyReport;
use crate::tree::{walk, EntryKind};
use std::collections::BTreeSet;
use std::path::Path;

/// Verifies signatures, the route's state, the chain and the directory's shape.
pub fn verify(dir: &Path, trust: &TrustStore) -> Result<VerifyReport> {
    let cfg = LegacyConfig::parse(&layout::read_config(dir)?)?;
    let mut rep = VerifyReport {
        train_id: cfg.id.clone(),
        identity: format!("legacy:{}", cfg.hash),
        creator: cfg.creator.id.python_str(),
        route: cfg.route.iter().map(|s| s.station.python_str()).collect(),
        ..VerifyReport::new("legacy")
    };
    let s = |r: Result<()>, ok: &str| r.map(|()| ok.to_string()).map_err(|e| e.to_string());
    let route = match cfg.ordered_route() {
        Ok(r) => r,
        Err(e) => {
            rep.check("route", Err(e.to_string()));
            return Ok(rep);
        }
    };
    rep.route = route.iter().map(|s| s.station.python_str()).collect();
    rep.check(
        "top-level entries",
        s(layout::check_top_level(dir, super::TOP_LEVEL), "ok"),
    );
    rep.check("trusted keys", s(check_trust(&cfg, &route, trust), "ok"));
    rep.check(
        "creator and builder signatures",
        s(
            verify_creator_and_builder(&cfg, trust),
            if cfg.build.is_some() {
                "ok"
            } else {
                "creator ok; no build signature (pre-2.0 train)"
            },
        ),
    );
    match stops_done(&route) {
        Ok(done) => {
            rep.stops_done = done;
            rep.check(
                "route state",
                Ok(format!("{done} of {} stops done", route.len())),
            );
            let results_state = if done == 0 {
                if cfg.result_hash.is_some() || cfg.result_signature.is_some() {
                    Err("result_hash is set but no stop has run".to_string())
                } else {
                    Ok("no results yet".to_string())
                }
            } else {
                s(
                    verify_chain(&cfg, &route, done),
                    "stop signatures, last digest and result signature verify",
                )
            };
            rep.check("signature chain", results_state);
        }
        Err(e) => rep.check("route state", Err(e.to_string())),
    }
    let listing = (|| -> Result<String> {
        let files = cfg.train_files()?;
        let found = walk(&dir.join(TRAIN_DIR))?;
        let mut listed: BTreeSet<String> = files.into_iter().collect();
        if found.iter().any(|e| e.path == QUERY) {
            listed.insert(QUERY.into());
        }
        layout::match_listing(&found, &listed, TRAIN_DIR)?;
        let results = walk(&dir.join(RESULTS_DIR))?;
        for e in found
            .iter()
            .map(|e| (TRAIN_DIR, e))
            .chain(results.iter().map(|e| (RESULTS_DIR, e)))
        {
            if let EntryKind::File(n) = e.1.kind {
                if n < 2 * BLOCK as u64 || n % BLOCK as u64 != 0 {
                    return Err(crate::error::Rejection::Decrypt {
                        path: format!("{}/{}", e.0, e.1.path),
                        cause: "length is not IV plus whole AES blocks".into(),
                    }
                    .into());
                }
            }
        }
        Ok(format!(
            "{} train files as listed; ciphertext lengths well-formed",
            listed.len()
        ))
    })();
    rep.check("files", listing.map_err(|e| e.to_string()));
    Ok(rep)
}
