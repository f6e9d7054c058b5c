//! Native post-run: the train files re-encrypted under a fresh file key (checked on the way to
//! be unchanged since pre-run), every result encrypted and listed, the key wrapped for every
//! participant, the stop appended with a fresh session id and signed.

use super::config::{keys_digest, Hex, HexBytes, MaybeHash, ResultEntry, ResultKind, Stop};
use super::files::stream_one;
use super::signatures::{check_turn, load, train_listing, verify_signatures, wraps_for, Verified};
use super::{ROLE_RESULTS, ROLE_TRAIN, TOP_LEVEL};
use crate::error::{ProtocolError, Rejection, Result};
use crate::files::Way;
use crate::keys::{random_bytes, random_sym_key};
use crate::layout::{check_top_level, CONFIG, RESULTS_DIR, TRAIN_DIR};
use crate::par;
use crate::report::{Station, StepReport};
use crate::tree::{walk, EntryKind, Staging};
use std::path::Path;

/// Hashes, signs, re-encrypts and rewraps a native train after its run at station `st`.
pub fn post_run(dir: &Path, st: &Station<'_>) -> Result<StepReport> {
    let v = verify_signatures(load(dir)?, st.trust)?;
    check_top_level(dir, TOP_LEVEL)?;
    let idx = check_turn(&v, st)?;
    train_listing(&v.cfg, dir)?;
    let found = walk(&dir.join(RESULTS_DIR))?;
    let key = random_sym_key();
    let staging = Staging::new(dir)?;
    let train_sizes = par::try_map(&v.cfg.train.files, |f| {
        let rel = format!("{TRAIN_DIR}/{}", f.path);
        let sink = staging.create(&rel)?;
        let (n, sha) = stream_one(
            Way::Encrypt,
            &key,
            &dir.join(&rel),
            (ROLE_TRAIN, &f.path),
            f.size,
            sink,
            &rel,
        )?;
        if n != f.size || sha != f.sha256.0 {
            return Err(ProtocolError::from(Rejection::TrainModified(rel)));
        }
        Ok(n)
    })?;
    let results = par::try_map(&found, |e| {
        let rel = format!("{RESULTS_DIR}/{}", e.path);
        Ok::<_, ProtocolError>(match e.kind {
            EntryKind::Dir => {
                staging.ensure_dir(&rel)?;
                ResultEntry {
                    path: e.path.clone(),
                    kind: ResultKind::Dir,
                    size: 0,
                    sha256: MaybeHash(None),
                }
            }
            EntryKind::File(hint) => {
                let sink = staging.create(&rel)?;
                let (n, sha) = stream_one(
                    Way::Encrypt,
                    &key,
                    &dir.join(&rel),
                    (ROLE_RESULTS, &e.path),
                    hint,
                    sink,
                    &rel,
                )?;
                ResultEntry {
                    path: e.path.clone(),
                    kind: ResultKind::File,
                    size: n,
                    sha256: MaybeHash(Some(sha)),
                }
            }
        })
    })?;
    let bytes = train_sizes.iter().sum::<u64>() + results.iter().map(|r| r.size).sum::<u64>();
    let n_results = results
        .iter()
        .filter(|r| r.kind == ResultKind::File)
        .count();
    let Verified {
        mut cfg,
        creator,
        route,
    } = v;
    cfg.keys = wraps_for(&cfg, &creator, &route, &key)?;
    let mut stop = Stop {
        station: st.id.to_string(),
        session_id: Hex(random_bytes::<32>()),
        results,
        keys_digest: keys_digest(&cfg.keys),
        digest: Hex([0; 32]),
        signature: HexBytes(Vec::new()),
    };
    let digest = cfg.stop_digest(idx, &stop);
    stop.digest = Hex(digest);
    stop.signature = HexBytes(st.key.sign_pss_sha256(&digest)?);
    cfg.stops.push(stop);
    staging.write(CONFIG, &cfg.to_json())?;
    staging.commit()?;
    Ok(StepReport {
        train_files: cfg.train.files.len(),
        result_files: n_results,
        bytes,
        ..StepReport::new("native", &cfg.train.id, st.id, idx)
    })
}
