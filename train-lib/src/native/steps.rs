//! Create, pre-run, post-run, verify and results for native trains.

use super::config::{
    keys_digest, parse_key, unhex, unhex_n, BuildSig, Dispatch, FileEntry, KeyWrap, NativeConfig,
    Party, ResultEntry, Stop, TrainBody, FORMAT,
};
use super::in_place;
use super::{OAEP, OAEP_LABEL, ROLE_RESULTS, ROLE_TRAIN};
use crate::common::{
    self, CreateSpec, Station, StepReport, VerifyReport, CONFIG, RESULTS_DIR, TRAIN_DIR,
};
use crate::crypto::{hasher::SplitHasher, stream};
use crate::error::{decrypt_error, ProtocolError, Rejection, Result};
use crate::keys::{
    random_bytes, random_sym_key, KeyRole, PrivateKey, PublicKey, SymKey, TrustStore,
};
use crate::par;
use crate::tree::{self, open_regular, walk, Entry, EntryKind, OutputDir, Staging};
use aws_lc_rs::digest::SHA256;
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::Path;

const TOP_LEVEL: &[&str] = &[CONFIG, TRAIN_DIR, RESULTS_DIR];

/// A configuration whose signatures have all been checked.
struct Verified {
    cfg: NativeConfig,
    creator: PublicKey,
    route: Vec<PublicKey>,
}

fn load(dir: &Path) -> Result<NativeConfig> {
    Ok(NativeConfig::parse(&common::read_config(dir)?)?)
}

/// Every signature check: trust pins, creator, builder, dispatch, each stop's recomputed digest
/// and signature, and that the current key wraps are the last signer's.
fn verify_signatures(cfg: NativeConfig, trust: &TrustStore) -> Result<Verified> {
    let creator = parse_key("train.creator.public_key", &cfg.train.creator.public_key)?;
    let route = cfg.route_keys()?;
    common::require_trusted(trust, KeyRole::Creator, &cfg.train.creator.id, &creator)?;
    for (p, k) in cfg.train.route.iter().zip(&route) {
        common::require_trusted(trust, KeyRole::Station, &p.id, k)?;
    }
    if !creator.verify_pss_sha256(
        &cfg.body_digest(),
        &unhex("creator_signature", &cfg.creator_signature)?,
    ) {
        return Err(Rejection::CreatorSignature.into());
    }
    match &cfg.build {
        Some(b) => {
            let k = parse_key("build.public_key", &b.public_key)?;
            common::require_trusted(trust, KeyRole::Builder, "builder", &k)?;
            if !k.verify_pss_sha256(
                &cfg.build_digest()?,
                &unhex("build.signature", &b.signature)?,
            ) {
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
    if !creator.verify_pss_sha256(
        &cfg.dispatch_digest()?,
        &unhex("dispatch.signature", &cfg.dispatch.signature)?,
    ) {
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
        unhex_n("stops.session_id", &stop.session_id, 32)?;
        if cfg.stop_digest(i, stop)?[..] != unhex_n("stops.digest", &stop.digest, 32)?[..] {
            return Err(Rejection::ChainDigest { index: i, station }.into());
        }
        if !route[i].verify_pss_sha256(
            &unhex("stops.digest", &stop.digest)?,
            &unhex("stops.signature", &stop.signature)?,
        ) {
            return Err(Rejection::ChainSignature { index: i, station }.into());
        }
    }
    let signed_keys = cfg
        .stops
        .last()
        .map_or(&cfg.dispatch.keys_digest, |s| &s.keys_digest);
    if hex::encode(keys_digest(&cfg.keys)) != *signed_keys {
        return Err(Rejection::KeyWraps.into());
    }
    Ok(Verified {
        cfg,
        creator,
        route,
    })
}

/// Finds the station's stop and checks that it is its turn and its key.
fn check_turn(v: &Verified, st: &Station<'_>) -> Result<usize> {
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

fn unwrap_key(cfg: &NativeConfig, key: &PrivateKey, who: &str) -> Result<SymKey> {
    let fp = key.public().fingerprint();
    let wrap = cfg
        .keys
        .iter()
        .find(|w| w.fingerprint == fp)
        .ok_or_else(|| Rejection::MissingKeyWrap(format!("{who} ({fp})")))?;
    Ok(key
        .oaep_unwrap(
            OAEP,
            &unhex("keys.wrapped", &wrap.wrapped)?,
            Some(OAEP_LABEL),
        )
        .map_err(|_| Rejection::KeyUnwrap(who.to_string()))?)
}

fn wraps_for(
    cfg: &NativeConfig,
    creator: &PublicKey,
    route: &[PublicKey],
    key: &SymKey,
) -> Result<Vec<KeyWrap>> {
    let mut out = vec![KeyWrap {
        recipient: "creator".into(),
        fingerprint: creator.fingerprint(),
        wrapped: hex::encode(creator.oaep_wrap(OAEP, &key[..], Some(OAEP_LABEL))?),
    }];
    for (p, k) in cfg.train.route.iter().zip(route) {
        out.push(KeyWrap {
            recipient: format!("station:{}", p.id),
            fingerprint: k.fingerprint(),
            wrapped: hex::encode(k.oaep_wrap(OAEP, &key[..], Some(OAEP_LABEL))?),
        });
    }
    Ok(out)
}

/// The results manifest the directory must match: the last stop's, or nothing before stop 0.
fn expected_results(cfg: &NativeConfig) -> &[ResultEntry] {
    cfg.stops.last().map_or(&[], |s| &s.results)
}

fn check_results_listing(found: &[Entry], expected: &[ResultEntry]) -> Result<()> {
    let found_set: BTreeSet<(&str, bool)> = found
        .iter()
        .map(|e| (e.path.as_str(), matches!(e.kind, EntryKind::Dir)))
        .collect();
    let want: BTreeSet<(&str, bool)> = expected
        .iter()
        .map(|e| (e.path.as_str(), e.kind == "dir"))
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

fn train_listing(cfg: &NativeConfig, dir: &Path) -> Result<()> {
    let found = walk(&dir.join(TRAIN_DIR))?;
    let listed: BTreeSet<String> = cfg.train.files.iter().map(|f| f.path.clone()).collect();
    common::match_listing(&found, &listed, TRAIN_DIR)
}

/// Decrypts `rel` under `role` into `sink`, returning (size, sha256 hex).
fn decrypt_one(
    key: &SymKey,
    src: &Path,
    role: &str,
    path: &str,
    size_hint: u64,
    sink: std::fs::File,
    shown: &str,
) -> Result<(u64, String)> {
    let fkey = stream::file_key(key, role, path);
    let mut h = SplitHasher::new(&SHA256, size_hint);
    let n = stream::decrypt(
        &fkey,
        open_regular(src)?,
        BufWriter::new(sink),
        &mut h,
        size_hint,
    )
    .map_err(|e| decrypt_error(shown, e))?;
    Ok((n, hex::encode(h.finish())))
}

fn encrypt_one(
    key: &SymKey,
    src: &Path,
    role: &str,
    path: &str,
    size_hint: u64,
    sink: std::fs::File,
    shown: &str,
) -> Result<(u64, String)> {
    let fkey = stream::file_key(key, role, path);
    let mut h = SplitHasher::new(&SHA256, size_hint);
    let mut w = BufWriter::new(sink);
    let n = stream::encrypt(&fkey, open_regular(src)?, &mut w, &mut h, size_hint).map_err(
        |source| ProtocolError::Encrypt {
            path: shown.to_string(),
            source,
        },
    )?;
    w.flush().map_err(tree::io_err(src))?;
    Ok((n, hex::encode(h.finish())))
}

/// Creates an encrypted native train in `out`, ready for its first station.
pub fn create(spec: &CreateSpec<'_>, out: &Path) -> Result<StepReport> {
    let train_id = spec
        .train_id
        .clone()
        .unwrap_or_else(common::random_train_id);
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
    super::config::check_route(&route).map_err(refused)?;
    let (mut files, query) = common::source_files(spec)?;
    if let Some(q) = &query {
        let n = std::fs::metadata(q).map_err(tree::io_err(q))?.len();
        files.push((common::QUERY.to_string(), n));
    }
    files.sort();
    let key = random_sym_key();
    let dir = OutputDir::new(out)?;
    dir.ensure_dir(RESULTS_DIR)?;
    let manifest = par::try_map(&files, |(rel, n)| {
        let src = if rel == common::QUERY {
            query.clone().expect("query")
        } else {
            spec.files.join(rel)
        };
        let sink = dir.create(&format!("{TRAIN_DIR}/{rel}"))?;
        let (size, sha) = encrypt_one(&key, &src, ROLE_TRAIN, rel, *n, sink, rel)?;
        Ok::<_, ProtocolError>(FileEntry {
            path: rel.clone(),
            size,
            sha256: sha,
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
                public_key: creator.to_pem(),
            },
            route: spec
                .stations
                .iter()
                .map(|(id, k)| Party {
                    id: id.clone(),
                    public_key: k.to_pem(),
                })
                .collect(),
            entrypoint: spec.entrypoint.to_string(),
            files: manifest,
            master_image: spec.master_image.clone(),
        },
        creator_signature: String::new(),
        build: None,
        dispatch: Dispatch {
            keys_digest: String::new(),
            signature: String::new(),
        },
        stops: Vec::new(),
        keys: Vec::new(),
    };
    cfg.creator_signature = hex::encode(spec.creator_key.sign_pss_sha256(&cfg.body_digest())?);
    if let Some(b) = spec.builder_key {
        let sig = b.sign_pss_sha256(&cfg.build_digest()?)?;
        cfg.build = Some(BuildSig {
            public_key: b.public().to_pem(),
            signature: hex::encode(sig),
        });
    }
    let route: Vec<PublicKey> = spec.stations.iter().map(|(_, k)| k.clone()).collect();
    cfg.keys = wraps_for(&cfg, creator, &route, &key)?;
    cfg.dispatch.keys_digest = hex::encode(keys_digest(&cfg.keys));
    cfg.dispatch.signature =
        hex::encode(spec.creator_key.sign_pss_sha256(&cfg.dispatch_digest()?)?);
    let mut f = dir.create(CONFIG)?;
    f.write_all(&cfg.to_json())
        .map_err(tree::io_err(Path::new(CONFIG)))?;
    drop(f);
    dir.commit()?;
    Ok(StepReport {
        format: "native",
        train_id,
        station: "creator".into(),
        index: 0,
        train_files: files.len(),
        result_files: 0,
        bytes: total,
    })
}

/// Verifies and decrypts a native train in place for station `st`. On any failure the
/// directory is left exactly as it was.
pub fn pre_run(dir: &Path, st: &Station<'_>) -> Result<StepReport> {
    let t0 = std::time::Instant::now();
    let v = verify_signatures(load(dir)?, st.trust)?;
    common::check_top_level(dir, TOP_LEVEL)?;
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
        .map(|f| (ROLE_TRAIN, f.path.as_str(), f.size, f.sha256.as_str()))
        .chain(
            expected
                .iter()
                .filter(|e| e.kind == "file")
                .map(|e| (ROLE_RESULTS, e.path.as_str(), e.size, e.sha256.as_str())),
        )
        .collect();
    let sizes = match in_place::decrypt_all(dir, &key, &jobs)? {
        Some(sizes) => sizes,
        None => decrypt_staged(dir, &key, &jobs, expected)?,
    };
    let bytes = sizes.iter().sum();
    let n_results = jobs.iter().filter(|j| j.0 == ROLE_RESULTS).count();
    tracing::debug!(secs = t0.elapsed().as_secs_f64(), "verified and decrypted");
    Ok(StepReport {
        format: "native",
        train_id: v.cfg.train.id.clone(),
        station: st.id.to_string(),
        index: idx,
        train_files: v.cfg.train.files.len(),
        result_files: n_results,
        bytes,
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
    for e in expected.iter().filter(|e| e.kind == "dir") {
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
        let (n, sha) = decrypt_one(key, &dir.join(&rel), role, path, *size, sink, &rel)?;
        if n != *size || sha != *sha256 {
            return Err(ProtocolError::from(if *role == ROLE_TRAIN {
                Rejection::TrainFile(rel)
            } else {
                Rejection::ResultFile(rel)
            }));
        }
        Ok(n)
    })?;
    staging.commit()?;
    Ok(sizes)
}

/// Hashes, signs, re-encrypts and rewraps a native train after its run at station `st`.
pub fn post_run(dir: &Path, st: &Station<'_>) -> Result<StepReport> {
    let v = verify_signatures(load(dir)?, st.trust)?;
    common::check_top_level(dir, TOP_LEVEL)?;
    let idx = check_turn(&v, st)?;
    train_listing(&v.cfg, dir)?;
    let found = walk(&dir.join(RESULTS_DIR))?;
    let key = random_sym_key();
    let staging = Staging::new(dir)?;
    let train_sizes = par::try_map(&v.cfg.train.files, |f| {
        let rel = format!("{TRAIN_DIR}/{}", f.path);
        let sink = staging.create(&rel)?;
        let (n, sha) = encrypt_one(
            &key,
            &dir.join(&rel),
            ROLE_TRAIN,
            &f.path,
            f.size,
            sink,
            &rel,
        )?;
        if n != f.size || sha != f.sha256 {
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
                    kind: "dir".into(),
                    size: 0,
                    sha256: String::new(),
                }
            }
            EntryKind::File(hint) => {
                let sink = staging.create(&rel)?;
                let (n, sha) = encrypt_one(
                    &key,
                    &dir.join(&rel),
                    ROLE_RESULTS,
                    &e.path,
                    hint,
                    sink,
                    &rel,
                )?;
                ResultEntry {
                    path: e.path.clone(),
                    kind: "file".into(),
                    size: n,
                    sha256: sha,
                }
            }
        })
    })?;
    let bytes = train_sizes.iter().sum::<u64>() + results.iter().map(|r| r.size).sum::<u64>();
    let n_results = results.iter().filter(|r| r.kind == "file").count();
    let Verified {
        mut cfg,
        creator,
        route,
    } = v;
    cfg.keys = wraps_for(&cfg, &creator, &route, &key)?;
    let mut stop = Stop {
        station: st.id.to_string(),
        session_id: hex::encode(random_bytes::<32>()),
        results,
        keys_digest: hex::encode(keys_digest(&cfg.keys)),
        digest: String::new(),
        signature: String::new(),
    };
    let digest = cfg.stop_digest(idx, &stop)?;
    stop.digest = hex::encode(digest);
    stop.signature = hex::encode(st.key.sign_pss_sha256(&digest)?);
    cfg.stops.push(stop);
    staging.write(CONFIG, &cfg.to_json())?;
    staging.commit()?;
    Ok(StepReport {
        format: "native",
        train_id: cfg.train.id.clone(),
        station: st.id.to_string(),
        index: idx,
        train_files: cfg.train.files.len(),
        result_files: n_results,
        bytes,
    })
}

/// The creator's last step: checks every signature and decrypts the latest results into `out`.
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
        if e.kind == "dir" {
            outdir.ensure_dir(&e.path)?;
            return Ok(None);
        }
        let rel = format!("{RESULTS_DIR}/{}", e.path);
        let sink = outdir.create(&e.path)?;
        let (n, sha) = decrypt_one(
            &key,
            &dir.join(&rel),
            ROLE_RESULTS,
            &e.path,
            e.size,
            sink,
            &rel,
        )?;
        if n != e.size || sha != e.sha256 {
            return Err(ProtocolError::from(Rejection::ResultFile(rel)));
        }
        Ok(Some(n))
    })?;
    let bytes = sizes.iter().flatten().sum();
    let n_files = sizes.iter().flatten().count();
    outdir.commit()?;
    Ok(StepReport {
        format: "native",
        train_id: v.cfg.train.id.clone(),
        station: "creator".into(),
        index: v.cfg.stops.len(),
        train_files: 0,
        result_files: n_files,
        bytes,
    })
}

/// Every check that needs no private key.
pub fn verify(dir: &Path, trust: &TrustStore) -> Result<VerifyReport> {
    let bytes = common::read_config(dir)?;
    let mut rep = VerifyReport {
        format: "native",
        train_id: String::new(),
        identity: String::new(),
        creator: String::new(),
        route: Vec::new(),
        stops_done: 0,
        checks: Vec::new(),
    };
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
        s(common::check_top_level(dir, TOP_LEVEL), "ok".into()),
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
                    .filter(|e| e.kind == "file")
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

/// Records `digest` as the master image of a native train that has not left its creator: the
/// creator re-signs the body and the dispatch (and the builder re-countersigns, when the train
/// has a builder). Refused once any station has run it, or when `creator_key` is not the
/// train's creator key. The existing signatures are checked first.
pub fn record_master_image(
    dir: &Path,
    digest: &str,
    creator_key: &PrivateKey,
    builder_key: Option<&PrivateKey>,
) -> Result<()> {
    let cfg = load(dir)?;
    if !cfg.stops.is_empty() {
        return Err(Rejection::WrongState(
            "the train has left its creator; its master image can no longer change".into(),
        )
        .into());
    }
    let Verified { mut cfg, .. } = verify_signatures(cfg, &TrustStore::default())?;
    if creator_key.public().to_pem() != cfg.train.creator.public_key {
        return Err(ProtocolError::Input(
            "the given key is not this train's creator key".into(),
        ));
    }
    if cfg.build.is_some() && builder_key.is_none() {
        return Err(ProtocolError::Input(
            "the train has a builder countersignature: pass the builder key too".into(),
        ));
    }
    cfg.train.master_image = Some(digest.to_string());
    cfg.creator_signature = hex::encode(creator_key.sign_pss_sha256(&cfg.body_digest())?);
    if let Some(b) = builder_key {
        cfg.build = Some(BuildSig {
            public_key: b.public().to_pem(),
            signature: hex::encode(b.sign_pss_sha256(&cfg.build_digest()?)?),
        });
    }
    cfg.dispatch.signature = hex::encode(creator_key.sign_pss_sha256(&cfg.dispatch_digest()?)?);
    let staging = Staging::new(dir)?;
    staging.write(CONFIG, &cfg.to_json())?;
    staging.commit()?;
    Ok(())
}

/// The master image digest a native train's creator signed, if any.
pub fn master_image(dir: &Path) -> Result<Option<String>> {
    Ok(load(dir)?.train.master_image)
}

/// The entrypoint file (relative to `pht_train`) a native train's creator signed.
pub fn entrypoint(dir: &Path) -> Result<String> {
    Ok(load(dir)?.train.entrypoint)
}

/// What the image layers of this train may unpack to, from its configuration alone, once its
/// signatures verify: the configuration, every train file and every result of the last stop
/// at its exact ciphertext length, and the directories their paths need.
pub fn unpack_allowance(config: &[u8]) -> Result<crate::Allowance> {
    let Verified { cfg, .. } =
        verify_signatures(NativeConfig::parse(config)?, &TrustStore::default())?;
    let files = cfg
        .train
        .files
        .iter()
        .map(|f| (format!("{TRAIN_DIR}/{}", f.path), Some(f.size)))
        .chain(expected_results(&cfg).iter().map(|e| {
            let size = (e.kind == "file").then_some(e.size);
            (format!("{RESULTS_DIR}/{}", e.path), size)
        }));
    let mut dirs = BTreeSet::from([TRAIN_DIR.to_string(), RESULTS_DIR.to_string()]);
    let (mut bytes, mut entries) = (config.len() as u64, 0u64);
    for (path, size) in files {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            dirs.insert(parent.to_string());
            at = parent;
        }
        match size {
            Some(n) => {
                bytes = stream::ciphertext_len(n)
                    .and_then(|c| bytes.checked_add(c))
                    .ok_or_else(|| Rejection::ConfigSchema(format!("{path}: size out of range")))?;
                entries += 1;
            }
            None => {
                dirs.insert(path);
            }
        }
    }
    // `opt/` and the configuration besides the files and directories.
    Ok(crate::Allowance {
        bytes,
        entries: entries + dirs.len() as u64 + 2,
    })
}
