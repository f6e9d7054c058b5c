//! Creating a native train: every file encrypted under a fresh file key, the body signed by the
//! creator (and countersigned by a builder), the key wrapped for the creator and every station.

use super::config::{
    check_route, keys_digest, BuildSig, Dispatch, FileEntry, Hex, HexBytes, NativeConfig, Party,
    Pem, TrainBody, FORMAT,
};
use super::files::stream_one;
use super::signatures::wraps_for;
use super::ROLE_TRAIN;
use crate::error::{ProtocolError, Rejection, Result};
use crate::files::Way;
use crate::keys::{random_sym_key, PublicKey};
use crate::layout::{CONFIG, QUERY, RESULTS_DIR, TRAIN_DIR};
use crate::par;
use crate::report::StepReport;
use crate::spec::{random_train_id, source_files, CreateSpec};
use crate::tree::{self, OutputDir};
use std::io::Write;
use std::path::Path;

/// Creates an encrypted native train in `out`, ready for its first station.
pub fn create(spec: &CreateSpec<'_>, out: &Path) -> Result<StepReport> {
    let train_id = spec.train_id.clone().unwrap_or_else(random_train_id);
    // What a station would refuse is refused here, with the station's message, before anything
    // is written.
    let refused = |r: Rejection| ProtocolError::Input(r.to_string());
    crate::ids::check("train.id", &train_id).map_err(refused)?;
    crate::ids::check("train.creator.id", spec.creator_id).map_err(refused)?;
    let route: Vec<(&str, &PublicKey)> = spec
        .stations
        .iter()
        .map(|(id, k)| (id.as_str(), k))
        .collect();
    check_route(&route).map_err(refused)?;
    let (mut files, query) = source_files(spec)?;
    if let Some(q) = &query {
        let n = std::fs::metadata(q).map_err(tree::io_err(q))?.len();
        files.push((QUERY.to_string(), n));
    }
    files.sort();
    let key = random_sym_key();
    let dir = OutputDir::new(out)?;
    dir.ensure_dir(RESULTS_DIR)?;
    let manifest = par::try_map(&files, |(rel, n)| {
        let src = if rel == QUERY {
            query.clone().expect("query")
        } else {
            spec.files.join(rel)
        };
        let sink = dir.create(&format!("{TRAIN_DIR}/{rel}"))?;
        let (size, sha) = stream_one(Way::Encrypt, &key, &src, (ROLE_TRAIN, rel), *n, sink, rel)?;
        Ok::<_, ProtocolError>(FileEntry {
            path: rel.clone(),
            size,
            sha256: Hex(sha),
        })
    })?;
    let total = manifest.iter().map(|f| f.size).sum();
    let creator = spec.creator_key.public();
    let mut cfg = NativeConfig {
        format: FORMAT.into(),
        train: TrainBody {
            id: train_id.clone(),
            proposal_id: spec.proposal_id.clone().unwrap_or_else(|| train_id.clone()),
            creator: Party {
                id: spec.creator_id.to_string(),
                public_key: Pem(creator.clone()),
            },
            route: spec
                .stations
                .iter()
                .map(|(id, k)| Party {
                    id: id.clone(),
                    public_key: Pem(k.clone()),
                })
                .collect(),
            entrypoint: spec.entrypoint.to_string(),
            files: manifest,
            master_image: spec.master_image.clone(),
        },
        creator_signature: HexBytes(Vec::new()),
        build: None,
        dispatch: Dispatch {
            keys_digest: Hex([0; 32]),
            signature: HexBytes(Vec::new()),
        },
        stops: Vec::new(),
        keys: Vec::new(),
    };
    cfg.creator_signature = HexBytes(spec.creator_key.sign_pss_sha256(&cfg.body_digest())?);
    if let Some(b) = spec.builder_key {
        cfg.build = Some(BuildSig {
            public_key: Pem(b.public().clone()),
            signature: HexBytes(b.sign_pss_sha256(&cfg.build_digest())?),
        });
    }
    let route: Vec<PublicKey> = spec.stations.iter().map(|(_, k)| k.clone()).collect();
    cfg.keys = wraps_for(&cfg, creator, &route, &key)?;
    cfg.dispatch.keys_digest = keys_digest(&cfg.keys);
    cfg.dispatch.signature = HexBytes(spec.creator_key.sign_pss_sha256(&cfg.dispatch_digest())?);
    let mut f = dir.create(CONFIG)?;
    f.write_all(&cfg.to_json())
        .map_err(tree::io_err(Path::new(CONFIG)))?;
    drop(f);
    dir.commit()?;
    Ok(StepReport {
        train_files: files.len(),
        bytes: total,
        ..StepReport::new("native", train_id, "creator", 0)
    })
}
