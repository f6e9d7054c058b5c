//! The checks every native step starts with: signatures, pins, the turn, the key wraps, and the
//! directory's shape against the signed manifests.

use super::config::{keys_digest, KeyWrap, NativeConfig, ResultEntry, ResultKind};
use super::{OAEP, OAEP_LABEL};
use crate::error::{ProtocolError, Rejection, Result};
use crate::keys::{KeyRole, PrivateKey, PublicKey, SymKey, TrustStore};
use crate::layout::{self, RESULTS_DIR, TRAIN_DIR};
use crate::report::{require_trusted, Station};
use crate::tree::{walk, Entry, EntryKind};
use std::collections::BTreeSet;
use std::path::Path;

/// A configuration whose signatures have all been checked.
pub(super) struct Verified {
    pub cfg: NativeConfig,
    pub creator: PublicKey,
    pub route: Vec<PublicKey>,
}

/// The directory's configuration, parsed.
pub(super) fn load(dir: &Path) -> Result<NativeConfig> {
    Ok(NativeConfig::parse(&layout::read_config(dir)?)?)
}

/// Every signature check: trust pins, creator, builder, dispatch, each stop's recomputed digest
/// and signature, and that the current key wraps are the last signer's.
pub(super) fn verify_signatures(cfg: NativeConfig, trust: &TrustStore) -> Result<Verified> {
    let creator = cfg.train.creator.public_key.0.clone();
    let route = cfg.route_keys()?;
    require_trusted(trust, KeyRole::Creator, &cfg.train.creator.id, &creator)?;
    for (p, k) in cfg.train.route.iter().zip(&route) {
        require_trusted(trust, KeyRole::Station, &p.id, k)?;
    }
    if !creator.verify_pss_sha256(&cfg.body_digest(), &cfg.creator_signature.0) {
        return Err(Rejection::CreatorSignature.into());
    }
    match &cfg.build {
        Some(b) => {
            require_trusted(trust, KeyRole::Builder, "builder", &b.public_key.0)?;
            if !b
                .public_key
                .0
                .verify_pss_sha256(&cfg.build_digest(), &b.signature.0)
            {
                return Err(Rejection::BuilderSignature("does not verify").into());
            }
        }
        None if trust.pins(KeyRole::Builder) => {
            return Err(
                Rejection::BuilderSignature("is missing, and the trust file pins builders").into(),
            )
        }
        None => {}
    }
    if !creator.verify_pss_sha256(&cfg.dispatch_digest(), &cfg.dispatch.signature.0) {
        return Err(Rejection::DispatchSignature.into());
    }
    if cfg.stops.len() > route.len() {
        return Err(Rejection::ConfigSchema("more stops than route stations".into()).into());
    }
    for (i, stop) in cfg.stops.iter().enumerate() {
        let station = cfg.train.route[i].id.clone();
        if stop.station != station {
            return Err(Rejection::ChainDigest { index: i, station }.into());
        }
        if cfg.stop_digest(i, stop) != stop.digest.0 {
            return Err(Rejection::ChainDigest { index: i, station }.into());
        }
        if !route[i].verify_pss_sha256(&stop.digest.0, &stop.signature.0) {
            return Err(Rejection::ChainSignature { index: i, station }.into());
        }
    }
    let signed_keys = cfg
        .stops
        .last()
        .map_or(&cfg.dispatch.keys_digest, |s| &s.keys_digest);
    if keys_digest(&cfg.keys) != *signed_keys {
        return Err(Rejection::KeyWraps.into());
    }
    Ok(Verified {
        cfg,
        creator,
        route,
    })
}

/// Finds the station's stop and checks that it is its turn and its key.
pub(super) fn check_turn(v: &Verified, st: &Station<'_>) -> Result<usize> {
    let idx = v
        .cfg
        .train
        .route
        .iter()
        .position(|p| p.id == st.id)
        .ok_or_else(|| Rejection::StationNotInRoute(st.id.to_string()))?;
    let done = v.cfg.stops.len();
    if done == v.route.len() {
        return Err(Rejection::TrainFinished.into());
    }
    if done != idx {
        let detail = if done < idx {
            format!(
                "stop {done} (station `{}`) has not run yet",
                v.cfg.train.route[done].id
            )
        } else {
            "this stop has already run; an older state of the train was replayed".into()
        };
        return Err(Rejection::NotYourTurn {
            station: st.id.to_string(),
            index: idx,
            detail,
        }
        .into());
    }
    if &v.route[idx] != st.key.public() {
        return Err(Rejection::WrongStationKey(st.id.to_string()).into());
    }
    Ok(idx)
}

/// The file key wrapped for `key` (`who` names its holder in errors).
pub(super) fn unwrap_key(cfg: &NativeConfig, key: &PrivateKey, who: &str) -> Result<SymKey> {
    let fp = key.public().fingerprint();
    let wrap = cfg
        .keys
        .iter()
        .find(|w| w.fingerprint == fp)
        .ok_or_else(|| Rejection::MissingKeyWrap(format!("{who} ({fp})")))?;
    Ok(key
        .oaep_unwrap(OAEP, &wrap.wrapped.0, Some(OAEP_LABEL))
        .map_err(|_| Rejection::KeyUnwrap(who.to_string()))?)
}

/// `key` wrapped for the creator and every route station.
pub(super) fn wraps_for(
    cfg: &NativeConfig,
    creator: &PublicKey,
    route: &[PublicKey],
    key: &SymKey,
) -> Result<Vec<KeyWrap>> {
    let wrap = |k: &PublicKey| -> Result<super::config::HexBytes> {
        Ok(super::config::HexBytes(k.oaep_wrap(
            OAEP,
            &key[..],
            Some(OAEP_LABEL),
        )?))
    };
    let mut out = vec![KeyWrap {
        recipient: "creator".into(),
        fingerprint: creator.fingerprint(),
        wrapped: wrap(creator)?,
    }];
    for (p, k) in cfg.train.route.iter().zip(route) {
        out.push(KeyWrap {
            recipient: format!("station:{}", p.id),
            fingerprint: k.fingerprint(),
            wrapped: wrap(k)?,
        });
    }
    Ok(out)
}

/// The results manifest the directory must match: the last stop's, or nothing before stop 0.
pub(super) fn expected_results(cfg: &NativeConfig) -> &[ResultEntry] {
    cfg.stops.last().map_or(&[], |s| &s.results)
}

/// Compares the results found with the manifest: an extra entry or a missing one is rejected.
pub(super) fn check_results_listing(found: &[Entry], expected: &[ResultEntry]) -> Result<()> {
    let found_set: BTreeSet<(&str, bool)> = found
        .iter()
        .map(|e| (e.path.as_str(), matches!(e.kind, EntryKind::Dir)))
        .collect();
    let want: BTreeSet<(&str, bool)> = expected
        .iter()
        .map(|e| (e.path.as_str(), e.kind == ResultKind::Dir))
        .collect();
    if let Some((p, _)) = found_set.difference(&want).next() {
        return Err(if expected.is_empty() {
            Rejection::UnexpectedResults(format!("{RESULTS_DIR}/{p} exists"))
        } else {
            Rejection::UnlistedFile(format!("{RESULTS_DIR}/{p}"))
        }
        .into());
    }
    if let Some((p, _)) = want.difference(&found_set).next() {
        return Err(Rejection::MissingFile(format!("{RESULTS_DIR}/{p}")).into());
    }
    Ok(())
}

/// `pht_train` must hold exactly the manifest's files.
pub(super) fn train_listing(cfg: &NativeConfig, dir: &Path) -> Result<()> {
    let found = walk(&dir.join(TRAIN_DIR))?;
    let listed: BTreeSet<String> = cfg.train.files.iter().map(|f| f.path.clone()).collect();
    layout::match_listing(&found, &listed, TRAIN_DIR)
}

/// A mismatch between a file's plaintext and its manifest entry, as the rejection for its role.
pub(super) fn mismatch(role: &str, rel: String) -> ProtocolError {
    if role == super::ROLE_TRAIN {
        Rejection::TrainFile(rel).into()
    } else {
        Rejection::ResultFile(rel).into()
    }
}
