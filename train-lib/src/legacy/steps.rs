//! Pre-run, post-run and the creator's reading of results for PHT-meDIC trains.

use super::chain::{self, check_trust, check_turn, verify_chain, verify_creator_and_builder};
use super::config::{parse_key, unhex, unhex_n, LegacyConfig, RouteEntry, StopSignature};
use super::{OAEP, TOP_LEVEL};
use crate::crypto::{cbc, cbc_in_place, hasher::SplitHasher};
use crate::error::{decrypt_error, ProtocolError, Rejection, Result};
use crate::files::{through, Way};
use crate::keys::{random_sym_key, PrivateKey, SymKey, TrustStore};
use crate::layout::{self, CONFIG, QUERY, RESULTS_DIR, TRAIN_DIR, USER_KEY};
use crate::report::{Station, StepReport};
use crate::tree::rewrite::{NotStarted, Rewrite};
use crate::tree::{self, walk, EntryKind, OutputDir, Staging};
use aws_lc_rs::digest::SHA512;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

fn locate<'c>(cfg: &'c LegacyConfig, station: &str) -> Result<(Vec<&'c RouteEntry>, usize)> {
    let route = cfg.ordered_route()?;
    let idx = route
        .iter()
        .position(|s| s.station.python_str() == station)
        .ok_or_else(|| Rejection::StationNotInRoute(station.to_string()))?;
    Ok((route, idx))
}

fn check_own_key(route: &[&RouteEntry], idx: usize, st: &Station<'_>) -> Result<()> {
    let k = parse_key("route.rsa_public_key", &route[idx].rsa_public_key)?;
    if &k != st.key.public() {
        return Err(Rejection::WrongStationKey(st.id.to_string()).into());
    }
    Ok(())
}

/// The set of names `pht_train` must hold: `file_list`, plus `query.json` when present.
fn train_listing(cfg: &LegacyConfig, dir: &Path) -> Result<(Vec<String>, bool)> {
    let files = cfg.train_files()?;
    let found = walk(&dir.join(TRAIN_DIR))?;
    let has_query = found
        .iter()
        .any(|e| e.path == QUERY && matches!(e.kind, EntryKind::File(_)));
    let mut listed: BTreeSet<String> = files.iter().cloned().collect();
    if has_query {
        listed.insert(QUERY.to_string());
    }
    layout::match_listing(&found, &listed, TRAIN_DIR)?;
    Ok((files, has_query))
}

fn decrypt_file(
    key: &SymKey,
    dir: &Path,
    rel: &str,
    staging: &Staging,
    hasher: &mut SplitHasher,
) -> Result<u64> {
    through(
        Way::Decrypt,
        &dir.join(rel),
        staging.create(rel)?,
        rel,
        None,
        |i, o, hint| cbc::decrypt(key, i, o, hasher, hint),
    )
}

fn encrypt_file(
    key: &SymKey,
    dir: &Path,
    rel: &str,
    staging: &Staging,
    hasher: &mut SplitHasher,
) -> Result<u64> {
    through(
        Way::Encrypt,
        &dir.join(rel),
        staging.create(rel)?,
        rel,
        None,
        |i, o, hint| cbc::encrypt(key, i, o, Some(hasher), hint),
    )
}

/// Runs `each` over the train files in the reference's hash order (creator id, `file_list`,
/// session id, `query.json`), feeding one SHA-512. Returns the plaintext bytes processed, or
/// `None` when the hash is not the signed one.
fn train_pass(
    cfg: &LegacyConfig,
    dir: &Path,
    files: &[String],
    has_query: bool,
    mut each: impl FnMut(&str, &mut SplitHasher) -> Result<u64>,
) -> Result<Option<u64>> {
    let train_bytes = layout::total_size(&walk(&dir.join(TRAIN_DIR))?);
    let mut h = SplitHasher::new(&SHA512, train_bytes);
    h.update(&Arc::new(cfg.creator.id.python_str().into_bytes()));
    let mut bytes = 0;
    for f in files {
        bytes += each(&format!("{TRAIN_DIR}/{f}"), &mut h)?;
    }
    h.update(&Arc::new(cfg.session_id_bytes()));
    if has_query {
        bytes += each(&format!("{TRAIN_DIR}/{QUERY}"), &mut h)?;
    }
    let ok = h.finish().as_ref() == unhex_n("hash", &cfg.hash, 64)?.as_slice();
    Ok(ok.then_some(bytes))
}

/// Pre-run's decryption and hash checks, whichever way the files are decrypted (`each`).
struct Checks<'a> {
    cfg: &'a LegacyConfig,
    dir: &'a Path,
    files: &'a [String],
    has_query: bool,
    results: &'a [tree::Entry],
    result_files: &'a [&'a str],
    first: bool,
}

impl Checks<'_> {
    /// Decrypts every file through `each` in hash order and checks the train hash and, after
    /// the first stop, the result hash. Returns the plaintext bytes.
    fn run(&self, mut each: impl FnMut(&str, &mut SplitHasher) -> Result<u64>) -> Result<u64> {
        let mut bytes = train_pass(self.cfg, self.dir, self.files, self.has_query, &mut each)?
            .ok_or(Rejection::TrainHash)?;
        if self.first {
            return Ok(bytes);
        }
        let mut rh = SplitHasher::new(&SHA512, layout::total_size(self.results));
        for f in self.result_files {
            bytes += each(&format!("{RESULTS_DIR}/{f}"), &mut rh)?;
        }
        rh.update(&Arc::new(self.cfg.session_id_bytes()));
        let expect = unhex_n(
            "result_hash",
            self.cfg.result_hash.as_deref().unwrap_or(""),
            64,
        )?;
        if rh.finish().as_ref() != expect.as_slice() {
            return Err(Rejection::ResultHash.into());
        }
        Ok(bytes)
    }
}

/// The checks both steps start with: the configuration, the directory's top level, this
/// station's place and turn on the route, its key, the pins and the creator's and builder's
/// signatures. Returns the configuration and the station's stop index.
fn admit(dir: &Path, st: &Station<'_>) -> Result<(LegacyConfig, usize)> {
    let cfg = LegacyConfig::parse(&layout::read_config(dir)?)?;
    layout::check_top_level(dir, TOP_LEVEL)?;
    let (route, idx) = locate(&cfg, st.id)?;
    check_turn(&cfg, &route, idx)?;
    check_own_key(&route, idx, st)?;
    check_trust(&cfg, &route, st.trust)?;
    verify_creator_and_builder(&cfg, st.trust)?;
    Ok((cfg, idx))
}

/// Verifies and decrypts a legacy train in place for station `st`. On any failure the directory
/// is left exactly as it was.
pub fn pre_run(dir: &Path, st: &Station<'_>) -> Result<StepReport> {
    let (cfg, idx) = admit(dir, st)?;
    let route = cfg.ordered_route()?;
    verify_chain(&cfg, &route, idx)?;

    let wrapped = route[idx]
        .encrypted_key
        .as_deref()
        .ok_or_else(|| Rejection::MissingKeyWrap(format!("station `{}`", st.id)))?;
    let key = st
        .key
        .oaep_unwrap(OAEP, &unhex("route.encrypted_key", wrapped)?, None)
        .map_err(|_| Rejection::KeyUnwrap(format!("station `{}`", st.id)))?;

    let (files, has_query) = train_listing(&cfg, dir)?;
    let results = walk(&dir.join(RESULTS_DIR))?;
    let result_files: Vec<&str> = results
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(_)))
        .map(|e| e.path.as_str())
        .collect();
    if idx == 0 {
        if let Some(f) = result_files.first() {
            return Err(Rejection::UnexpectedResults(format!("{RESULTS_DIR}/{f} exists")).into());
        }
    }
    // Every file in the order it is hashed: train files, query, then results.
    let mut rels: Vec<String> = files.iter().map(|f| format!("{TRAIN_DIR}/{f}")).collect();
    if has_query {
        rels.push(format!("{TRAIN_DIR}/{QUERY}"));
    }
    if idx > 0 {
        rels.extend(result_files.iter().map(|f| format!("{RESULTS_DIR}/{f}")));
    }
    let check = Checks {
        cfg: &cfg,
        dir,
        files: &files,
        has_query,
        results: &results,
        result_files: &result_files,
        first: idx == 0,
    };
    let bytes = match Rewrite::begin(dir, &rels)? {
        Ok(rw) => {
            let index: HashMap<&str, usize> = rels
                .iter()
                .enumerate()
                .map(|(i, r)| (r.as_str(), i))
                .collect();
            let mut undos: Vec<(usize, cbc_in_place::Undo)> = Vec::new();
            let outcome = check.run(|rel, h| {
                let i = index[rel];
                let f = rw.open(i)?;
                undos.push((i, cbc_in_place::Undo::default()));
                let undo = &mut undos.last_mut().expect("just pushed").1;
                cbc_in_place::decrypt(&key, &f, h, undo).map_err(|e| decrypt_error(rel, e))
            });
            match outcome {
                Ok(bytes) => {
                    rw.finish()?;
                    bytes
                }
                Err(err) => {
                    // Last write first, as undo goes; every file is tried even when one
                    // cannot be put back.
                    let first_failure = undos
                        .iter()
                        .rev()
                        .map(|(i, u)| rw.put_back(*i, |f| cbc_in_place::restore(&key, f, u)))
                        .collect::<Vec<_>>()
                        .into_iter()
                        .find_map(Result::err);
                    if let Some(e) = first_failure {
                        // The marker stays: the directory is damaged and says so.
                        return Err(Rewrite::damaged(e, &err).into());
                    }
                    rw.finish()?;
                    return Err(err);
                }
            }
        }
        Err(NotStarted::Cancelled) => return Err(ProtocolError::Cancelled),
        Err(NotStarted::Ineligible) => {
            let staging = Staging::new(dir)?;
            // The staged directory replaces pht_results whole: carry its (possibly empty)
            // directories.
            if idx > 0 {
                for e in results.iter().filter(|e| e.kind == EntryKind::Dir) {
                    staging.ensure_dir(&format!("{RESULTS_DIR}/{}", e.path))?;
                }
            }
            let bytes = check.run(|rel, h| decrypt_file(&key, dir, rel, &staging, h))?;
            staging.commit()?;
            bytes
        }
    };
    Ok(StepReport {
        train_files: files.len() + usize::from(has_query),
        result_files: result_files.len(),
        bytes,
        ..StepReport::new("legacy", &cfg.id, st.id, idx)
    })
}

/// Hashes, signs, re-encrypts and rewraps a legacy train after its run at station `st`.
pub fn post_run(dir: &Path, st: &Station<'_>) -> Result<StepReport> {
    let (mut cfg, idx) = admit(dir, st)?;
    let route = cfg.ordered_route()?;
    let earlier = chain::earlier_digests(&route, idx)?;
    let route_len = route.len();

    let (files, has_query) = train_listing(&cfg, dir)?;
    let results = walk(&dir.join(RESULTS_DIR))?;
    let key = random_sym_key();
    let staging = Staging::new(dir)?;
    let session = cfg.session_id_bytes();

    // Re-encrypt the train files and check on the way that the run left them as signed.
    let mut bytes = train_pass(&cfg, dir, &files, has_query, |rel, h| {
        encrypt_file(&key, dir, rel, &staging, h)
    })?
    .ok_or_else(|| Rejection::TrainModified("hash over pht_train".into()))?;

    let mut rh = SplitHasher::new(&SHA512, layout::total_size(&results));
    let mut n_results = 0;
    for e in &results {
        let rel = format!("{RESULTS_DIR}/{}", e.path);
        match e.kind {
            EntryKind::Dir => staging.ensure_dir(&rel)?,
            EntryKind::File(_) => {
                bytes += encrypt_file(&key, dir, &rel, &staging, &mut rh)?;
                n_results += 1;
            }
        }
    }
    rh.update(&Arc::new(session));
    let result_hash = rh.finish().as_ref().to_vec();

    let result_sig = st.key.sign_pss_prehashed_sha512(&result_hash)?;
    let digest = chain::chain_digest(&cfg, &earlier, &result_hash)?;
    let stop_sig = st.key.sign_pss_prehashed_sha512(&digest)?;

    cfg.route.sort_by_key(|s| s.index);
    cfg.result_hash = Some(hex::encode(&result_hash));
    cfg.result_signature = Some(hex::encode(result_sig));
    cfg.route[idx].signature = Some(StopSignature {
        digest: hex::encode(&digest),
        signature: hex::encode(stop_sig),
    });
    for i in 0..route_len {
        let k = parse_key("route.rsa_public_key", &cfg.route[i].rsa_public_key)?;
        cfg.route[i].encrypted_key = Some(hex::encode(k.oaep_wrap(OAEP, &key[..], None)?));
    }
    let creator_wrap = cfg.creator_key()?.oaep_wrap(OAEP, &key[..], None)?;
    cfg.creator.encrypted_key = Some(hex::encode(&creator_wrap));

    staging.write(USER_KEY, &creator_wrap)?;
    // The configuration goes last: a commit cut short leaves the old one, which no longer
    // matches, so the damage is visible rather than silent.
    staging.write(CONFIG, &cfg.to_json())?;
    staging.commit()?;
    Ok(StepReport {
        train_files: files.len() + usize::from(has_query),
        result_files: n_results,
        bytes,
        ..StepReport::new("legacy", &cfg.id, st.id, idx)
    })
}

/// The creator's last step: checks the chain and decrypts `pht_results` into `out` (which must not
/// exist). Returns the number of files written.
pub fn results(
    dir: &Path,
    creator: &PrivateKey,
    trust: &TrustStore,
    out: &Path,
) -> Result<StepReport> {
    let cfg = LegacyConfig::parse(&layout::read_config(dir)?)?;
    let route = cfg.ordered_route()?;
    if &cfg.creator_key()? != creator.public() {
        return Err(Rejection::WrongCreatorKey.into());
    }
    let done = chain::stops_done(&route)?;
    if done == 0 {
        return Err(Rejection::WrongState(
            "no station has run this train yet: there are no results".into(),
        )
        .into());
    }
    check_trust(&cfg, &route, trust)?;
    verify_creator_and_builder(&cfg, trust)?;
    verify_chain(&cfg, &route, done)?;
    let wrapped = match &cfg.creator.encrypted_key {
        Some(h) => unhex("creator.encrypted_key", h)?,
        None => std::fs::read(dir.join(USER_KEY)).map_err(tree::io_err(&dir.join(USER_KEY)))?,
    };
    let key = creator
        .oaep_unwrap(OAEP, &wrapped, None)
        .map_err(|_| Rejection::KeyUnwrap("the creator".into()))?;
    let results = walk(&dir.join(RESULTS_DIR))?;
    let staging = OutputDir::new(out)?;
    let mut rh = SplitHasher::new(&SHA512, layout::total_size(&results));
    let mut n = 0;
    let mut bytes = 0;
    for e in &results {
        match e.kind {
            EntryKind::Dir => staging.ensure_dir(&e.path)?,
            EntryKind::File(size) => {
                let rel = format!("{RESULTS_DIR}/{}", e.path);
                let sink = staging.create(&e.path)?;
                bytes += through(
                    Way::Decrypt,
                    &dir.join(&rel),
                    sink,
                    &rel,
                    Some(size),
                    |i, o, hint| cbc::decrypt(&key, i, o, &mut rh, hint),
                )?;
                n += 1;
            }
        }
    }
    rh.update(&Arc::new(cfg.session_id_bytes()));
    let expect = unhex_n("result_hash", cfg.result_hash.as_deref().unwrap_or(""), 64)?;
    if rh.finish().as_ref() != expect.as_slice() {
        return Err(Rejection::ResultHash.into());
    }
    staging.commit()?;
    Ok(StepReport {
        result_files: n,
        bytes,
        ..StepReport::new("legacy", &cfg.id, "creator", done)
    })
}
