//! Route state and the signature chain of PHT-meDIC trains.

use super::config::{parse_key, unhex_n, LegacyConfig, RouteEntry};
use crate::error::{Rejection, Result};
use crate::keys::{KeyRole, PublicKey, TrustStore};
use aws_lc_rs::digest::{Context, SHA512};

/// How many stops have signed, checking that they are a prefix of the route.
pub(crate) fn stops_done(route: &[&RouteEntry]) -> Result<usize> {
    let done = route.iter().take_while(|s| s.signature.is_some()).count();
    if let Some(late) = route[done..].iter().find(|s| s.signature.is_some()) {
        return Err(Rejection::NotYourTurn {
            station: late.station.python_str(),
            index: late.index as usize,
            detail: format!("stop {} signed but stop {done} has not run", late.index),
        }
        .into());
    }
    Ok(done)
}

/// Checks that stop `idx` is next: every earlier stop has signed, none later, and the result
/// fields are as the route's state requires.
pub(crate) fn check_turn(cfg: &LegacyConfig, route: &[&RouteEntry], idx: usize) -> Result<()> {
    let done = stops_done(route)?;
    let station = route[idx].station.python_str();
    if done == route.len() {
        return Err(Rejection::TrainFinished.into());
    }
    if done != idx {
        let detail = if done < idx {
            format!(
                "stop {done} (station `{}`) has not run yet",
                route[done].station
            )
        } else {
            "this stop has already run; an older state of the train was replayed".to_string()
        };
        return Err(Rejection::NotYourTurn {
            station,
            index: idx,
            detail,
        }
        .into());
    }
    if idx == 0 && (cfg.result_hash.is_some() || cfg.result_signature.is_some()) {
        return Err(
            Rejection::UnexpectedResults("result_hash or result_signature is set".into()).into(),
        );
    }
    if idx > 0 && (cfg.result_hash.is_none() || cfg.result_signature.is_none()) {
        // The reference would take a null result_hash as "first station" and skip every check.
        return Err(Rejection::ResultHash.into());
    }
    Ok(())
}

/// Applies the trust store to the creator, builder and every station key of the route.
pub(crate) fn check_trust(
    cfg: &LegacyConfig,
    route: &[&RouteEntry],
    trust: &TrustStore,
) -> Result<()> {
    crate::report::require_trusted(
        trust,
        KeyRole::Creator,
        &cfg.creator.id.python_str(),
        &cfg.creator_key()?,
    )?;
    if let Some(b) = &cfg.build {
        let k = parse_key("build.rsa_public_key", &b.rsa_public_key)?;
        crate::report::require_trusted(trust, KeyRole::Builder, "builder", &k)?;
    }
    for s in route {
        let k = parse_key("route.rsa_public_key", &s.rsa_public_key)?;
        crate::report::require_trusted(trust, KeyRole::Station, &s.station.python_str(), &k)?;
    }
    Ok(())
}

/// Verifies the creator's signature over `hash`, then the builder's over `hash ‖ signature`.
pub(crate) fn verify_creator_and_builder(cfg: &LegacyConfig, trust: &TrustStore) -> Result<()> {
    let hash = unhex_n("hash", &cfg.hash, 64)?;
    let sig = super::config::unhex("signature", &cfg.signature)?;
    if !cfg.creator_key()?.verify_pkcs1_sha512(&hash, &sig) {
        return Err(Rejection::CreatorSignature.into());
    }
    match &cfg.build {
        Some(b) => {
            let key = parse_key("build.rsa_public_key", &b.rsa_public_key)?;
            let bsig = super::config::unhex("build.signature", &b.signature)?;
            let mut msg = hash.clone();
            msg.extend_from_slice(&sig);
            if !key.verify_pkcs1_sha512(&msg, &bsig) {
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
    Ok(())
}

/// Verifies the signatures of stops `0..upto`, recomputes the digest of the last of them from
/// the earlier digests and `result_hash`, and verifies `result_signature` with its key.
pub(crate) fn verify_chain(cfg: &LegacyConfig, route: &[&RouteEntry], upto: usize) -> Result<()> {
    if upto == 0 {
        return Ok(());
    }
    let rh = unhex_n("result_hash", cfg.result_hash.as_deref().unwrap_or(""), 64)?;
    let mut digests = Vec::with_capacity(upto);
    for (i, stop) in route[..upto].iter().enumerate() {
        let station = stop.station.python_str();
        let sig = stop
            .signature
            .as_ref()
            .ok_or_else(|| Rejection::MissingStopSignature {
                index: i,
                station: station.clone(),
            })?;
        let digest = unhex_n("route.signature.digest", &sig.digest, 64)?;
        let s = super::config::unhex("route.signature.signature", &sig.signature)?;
        let key = parse_key("route.rsa_public_key", &stop.rsa_public_key)?;
        if !key.verify_pss_prehashed_sha512(&digest, &s) {
            return Err(Rejection::ChainSignature { index: i, station }.into());
        }
        digests.push(digest);
    }
    // Only the last digest can be recomputed: earlier stops' result hashes are not kept.
    let last = upto - 1;
    let expect = chain_digest(cfg, &digests[..last], &rh)?;
    if expect[..] != digests[last][..] {
        return Err(Rejection::ChainDigest {
            index: last,
            station: route[last].station.python_str(),
        }
        .into());
    }
    let rs = super::config::unhex(
        "result_signature",
        cfg.result_signature.as_deref().unwrap_or(""),
    )?;
    let key: PublicKey = parse_key("route.rsa_public_key", &route[last].rsa_public_key)?;
    if !key.verify_pss_prehashed_sha512(&rh, &rs) {
        return Err(Rejection::ResultSignature(route[last].station.python_str()).into());
    }
    Ok(())
}

/// `SHA-512(session_id ‖ rh)` for the first stop, else `SHA-512(d₀ ‖ … ‖ dᵢ₋₁ ‖ rh)`.
pub(crate) fn chain_digest(cfg: &LegacyConfig, earlier: &[Vec<u8>], rh: &[u8]) -> Result<Vec<u8>> {
    let mut h = Context::new(&SHA512);
    if earlier.is_empty() {
        h.update(&cfg.session_id_bytes());
    } else {
        for d in earlier {
            h.update(d);
        }
    }
    h.update(rh);
    Ok(h.finish().as_ref().to_vec())
}

/// The earlier stops' digests, for signing stop `idx`.
pub(crate) fn earlier_digests(route: &[&RouteEntry], idx: usize) -> Result<Vec<Vec<u8>>> {
    route[..idx]
        .iter()
        .map(|s| {
            let sig = s.signature.as_ref().expect("turn checked");
            Ok(unhex_n("route.signature.digest", &sig.digest, 64)?)
        })
        .collect()
}
