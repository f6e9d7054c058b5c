//! Creating a PHT-meDIC train directory, as the reference's builder would leave it.

use super::config::{Build, Creator, Id, LegacyConfig, RouteEntry, Source};
use super::OAEP;
use crate::crypto::{cbc, hasher::SplitHasher};
use crate::error::{ProtocolError, Result};
use crate::files::{through, Way};
use crate::keys::{random_bytes, random_sym_key};
use crate::layout::{CONFIG, QUERY, RESULTS_DIR, TRAIN_DIR};
use crate::report::StepReport;
use crate::spec::{random_train_id, source_files, CreateSpec};
use crate::tree::{self, OutputDir};
use aws_lc_rs::digest::SHA512;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Creates an encrypted legacy train in `out`, ready for its first station.
pub fn create(spec: &CreateSpec<'_>, out: &Path) -> Result<StepReport> {
    let builder = spec
        .builder_key
        .ok_or_else(|| ProtocolError::Input("legacy trains need --builder-key".into()))?;
    // A station compares station ids in the reference's Python string form (`01` is `1`): a
    // route it would refuse is refused here, with its message.
    for (i, (id, _)) in spec.stations.iter().enumerate() {
        let id = Id::Str(id.clone()).python_str();
        if spec.stations[..i]
            .iter()
            .any(|(o, _)| Id::Str(o.clone()).python_str() == id)
        {
            return Err(ProtocolError::Input(
                crate::Rejection::DuplicateStation(id).to_string(),
            ));
        }
    }
    let (files, query) = source_files(spec)?;
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let session: [u8; 64] = random_bytes();
    let key = random_sym_key();
    let creator_id = Id::Str(spec.creator_id.to_string());
    let dir = OutputDir::new(out)?;
    dir.ensure_dir(RESULTS_DIR)?;

    let mut h = SplitHasher::new(&SHA512, total);
    h.update(&Arc::new(creator_id.python_str().into_bytes()));
    let enc = |src: &Path, rel: &str, h: &mut SplitHasher| -> Result<u64> {
        let sink = dir.create(&format!("{TRAIN_DIR}/{rel}"))?;
        through(Way::Encrypt, src, sink, rel, None, |i, o, hint| {
            cbc::encrypt(&key, i, o, Some(h), hint)
        })
    };
    let mut bytes = 0;
    for (rel, _) in &files {
        bytes += enc(&spec.files.join(rel), rel, &mut h)?;
    }
    h.update(&Arc::new(session.to_vec()));
    if let Some(q) = &query {
        bytes += enc(q, QUERY, &mut h)?;
    }
    let hash = h.finish().as_ref().to_vec();
    let signature = spec.creator_key.sign_pkcs1_sha512(&hash)?;
    let mut msg = hash.clone();
    msg.extend_from_slice(&signature);
    let build_sig = builder.sign_pkcs1_sha512(&msg)?;

    let hex_pem = |k: &crate::keys::PublicKey| hex::encode(k.to_pem());
    let mut route = Vec::new();
    for (i, (id, pk)) in spec.stations.iter().enumerate() {
        route.push(RouteEntry {
            station: Id::Str(id.clone()),
            eco_system: "tue".into(),
            rsa_public_key: hex_pem(pk),
            index: i as i64,
            signature: None,
            encrypted_key: Some(hex::encode(pk.oaep_wrap(OAEP, &key[..], None)?)),
        });
    }
    let creator_pub = spec.creator_key.public();
    let train_id = spec.train_id.clone().unwrap_or_else(random_train_id);
    let (address, tag) = match spec.master_image.as_deref() {
        Some(m) => match m.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((a, t)) => (a.to_string(), t.to_string()),
            None => (m.to_string(), "latest".to_string()),
        },
        None => ("master/python/base".into(), "latest".into()),
    };
    let cfg = LegacyConfig {
        source: Source {
            kind: "docker_repository".into(),
            address,
            tag: Some(tag),
            branch: None,
        },
        creator: Creator {
            id: creator_id,
            rsa_public_key: hex_pem(creator_pub),
            paillier_public_key: None,
            encrypted_key: Some(hex::encode(creator_pub.oaep_wrap(OAEP, &key[..], None)?)),
        },
        proposal_id: Id::Str(spec.proposal_id.clone().unwrap_or_else(|| train_id.clone())),
        id: train_id.clone(),
        context: None,
        session_id: hex::encode(session),
        route,
        file_list: files.iter().map(|(p, _)| p.clone()).collect(),
        hash: hex::encode(&hash),
        signature: hex::encode(&signature),
        build: Some(Build {
            signature: hex::encode(build_sig),
            rsa_public_key: hex_pem(builder.public()),
        }),
        result_hash: None,
        result_signature: None,
    };
    let mut f = dir.create(CONFIG)?;
    f.write_all(&cfg.to_json())
        .map_err(tree::io_err(Path::new(CONFIG)))?;
    drop(f);
    dir.commit()?;
    Ok(StepReport {
        train_files: files.len() + usize::from(query.is_some()),
        bytes,
        ..StepReport::new("legacy", train_id, "creator", 0)
    })
}
