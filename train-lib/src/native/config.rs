//! The native `train_config.json`: a strict JSON document whose every value is covered by a
//! signature, and whose bytes must be exactly the canonical serialisation of its values.

pub use super::fields::{Hex, HexBytes, MaybeHash, Pem};
use crate::error::Rejection;
use crate::keys::PublicKey;
use aws_lc_rs::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

/// The `format` value of this version.
pub const FORMAT: &str = "pht-native/1";

/// A party: its id and public key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// Id (creator id or station id).
    pub id: String,
    /// SPKI PEM.
    pub public_key: Pem,
}

/// A train file in the creator's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path below `pht_train`.
    pub path: String,
    /// Plaintext size.
    pub size: u64,
    /// SHA-256 of the plaintext.
    pub sha256: Hex<32>,
}

/// What a results manifest entry is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResultKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// An entry of a stop's results manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResultEntry {
    /// Path below `pht_results`.
    pub path: String,
    /// `file` or `dir`.
    pub kind: ResultKind,
    /// Plaintext size (0 for a directory).
    pub size: u64,
    /// SHA-256 of the plaintext (`""` for a directory).
    pub sha256: MaybeHash,
}

impl ResultEntry {
    /// The size and hash of a file entry; `None` for a directory. (A file entry without a
    /// hash is refused when the configuration is parsed.)
    pub fn file(&self) -> Option<(u64, [u8; 32])> {
        match (self.kind, self.sha256.0) {
            (ResultKind::File, Some(h)) => Some((self.size, h)),
            _ => None,
        }
    }
}

/// What the creator signs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrainBody {
    /// Train id.
    pub id: String,
    /// Proposal id.
    pub proposal_id: String,
    /// The creator.
    pub creator: Party,
    /// The stations, in visiting order.
    pub route: Vec<Party>,
    /// The file the image runs, below `pht_train`.
    pub entrypoint: String,
    /// Every file of `pht_train`, sorted by path.
    pub files: Vec<FileEntry>,
    /// Digest of the master image the train was built on, once built.
    pub master_image: Option<String>,
}

/// The builder's countersignature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BuildSig {
    /// The builder's key.
    pub public_key: Pem,
    /// Signature over the build digest.
    pub signature: HexBytes,
}

/// The creator's signature over the first key wraps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    /// SHA-256 of the key wraps the creator wrote.
    pub keys_digest: Hex<32>,
    /// Creator signature over the dispatch digest.
    pub signature: HexBytes,
}

/// One completed stop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// The station that ran.
    pub station: String,
    /// 32 random bytes, fresh for this execution.
    pub session_id: Hex<32>,
    /// The results it left, in walk order.
    pub results: Vec<ResultEntry>,
    /// SHA-256 of the key wraps it wrote.
    pub keys_digest: Hex<32>,
    /// The chain digest.
    pub digest: Hex<32>,
    /// Station signature over the chain digest.
    pub signature: HexBytes,
}

/// One wrapped file key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyWrap {
    /// `creator` or `station:<id>`.
    pub recipient: String,
    /// Fingerprint of the key it is wrapped for.
    pub fingerprint: String,
    /// RSA-OAEP ciphertext.
    pub wrapped: HexBytes,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NativeConfig {
    /// Always [`FORMAT`].
    pub format: String,
    /// Signed by the creator.
    pub train: TrainBody,
    /// Creator signature over the body digest.
    pub creator_signature: HexBytes,
    /// The builder's countersignature, when built by a builder.
    pub build: Option<BuildSig>,
    /// The creator's signature over the first key wraps.
    pub dispatch: Dispatch,
    /// Completed stops, in route order.
    pub stops: Vec<Stop>,
    /// The current file key's wraps.
    pub keys: Vec<KeyWrap>,
}

fn tagged(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Context::new(&SHA256);
    h.update(&(tag.len() as u64).to_be_bytes());
    h.update(tag.as_bytes());
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finish().as_ref().try_into().expect("32 bytes")
}

impl NativeConfig {
    /// Parses a configuration, refusing unknown fields and any byte that differs from the
    /// canonical serialisation of the values read.
    pub fn parse(bytes: &[u8]) -> Result<Self, Rejection> {
        let c: NativeConfig =
            serde_json::from_slice(bytes).map_err(|e| Rejection::ConfigSchema(e.to_string()))?;
        if c.format != FORMAT {
            return Err(Rejection::ConfigSchema(format!(
                "format `{}` is not {FORMAT}",
                c.format
            )));
        }
        if c.to_json() != bytes {
            return Err(Rejection::NonCanonicalConfig);
        }
        // Each path once: pre-run rewrites every listed file in place, and a file listed twice
        // would be decrypted twice.
        let mut seen = std::collections::BTreeSet::new();
        for f in &c.train.files {
            crate::tree::check_rel_path(&f.path)?;
            if !seen.insert(f.path.as_str()) {
                return Err(Rejection::ConfigSchema(format!(
                    "train.files lists `{}` twice",
                    f.path
                )));
            }
        }
        crate::tree::check_rel_path(&c.train.entrypoint)?;
        crate::ids::check("train.id", &c.train.id)?;
        crate::ids::check("train.creator.id", &c.train.creator.id)?;
        for (i, s) in c.stops.iter().enumerate() {
            let mut seen = std::collections::BTreeSet::new();
            for r in &s.results {
                crate::tree::check_rel_path(&r.path)?;
                match (r.kind, r.sha256.0, r.size) {
                    (ResultKind::File, Some(_), _) | (ResultKind::Dir, None, 0) => {}
                    _ => {
                        return Err(Rejection::ConfigSchema(format!(
                            "stop {i}: result `{}` is a {:?} with sha256 {:?} and size {}",
                            r.path, r.kind, r.sha256, r.size
                        )))
                    }
                }
                if !seen.insert(r.path.as_str()) {
                    return Err(Rejection::ConfigSchema(format!(
                        "stop {i} lists result `{}` twice",
                        r.path
                    )));
                }
            }
        }
        Ok(c)
    }

    /// The canonical bytes: pretty JSON and one newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serialises");
        v.push(b'\n');
        v
    }

    /// SHA-256 over the body's canonical JSON, domain-separated.
    pub fn body_digest(&self) -> [u8; 32] {
        let body = serde_json::to_vec(&self.train).expect("body serialises");
        tagged("pht-native/1 train", &[&body])
    }

    /// What the builder signs: the body digest and the creator's signature.
    pub fn build_digest(&self) -> [u8; 32] {
        tagged(
            "pht-native/1 build",
            &[&self.body_digest(), &self.creator_signature.0],
        )
    }

    /// What the creator's dispatch signature covers.
    pub fn dispatch_digest(&self) -> [u8; 32] {
        tagged(
            "pht-native/1 dispatch",
            &[&self.body_digest(), &self.dispatch.keys_digest.0],
        )
    }

    /// The chain digest of stop `i`: binds the body, the previous link, the stop's index, its
    /// station, session id, results and key wraps.
    pub fn stop_digest(&self, i: usize, stop: &Stop) -> [u8; 32] {
        let prev = if i == 0 {
            self.dispatch_digest()
        } else {
            self.stops[i - 1].digest.0
        };
        let record = serde_json::to_vec(&(
            &stop.station,
            &stop.session_id,
            &stop.results,
            &stop.keys_digest,
        ))
        .expect("stop serialises");
        tagged(
            "pht-native/1 stop",
            &[
                &self.body_digest(),
                &prev,
                &(i as u64).to_be_bytes(),
                &record,
            ],
        )
    }

    /// The public keys of the route, checked by [`check_route`].
    pub fn route_keys(&self) -> Result<Vec<PublicKey>, Rejection> {
        let route: Vec<(&str, &PublicKey)> = self
            .train
            .route
            .iter()
            .map(|p| (p.id.as_str(), &p.public_key.0))
            .collect();
        check_route(&route)?;
        Ok(route.into_iter().map(|(_, k)| k.clone()).collect())
    }
}

/// The checks of a route that a station applies and `train create` applies before it writes
/// anything, with the same messages: at least one stop, every id in the id grammar
/// ([`crate::ids`]), no station twice, and no two stations sharing a key (its holder could
/// otherwise sign two stops).
pub fn check_route(route: &[(&str, &PublicKey)]) -> Result<(), Rejection> {
    if route.is_empty() {
        return Err(Rejection::ConfigSchema("the route is empty".into()));
    }
    for (i, (id, key)) in route.iter().enumerate() {
        crate::ids::check(&format!("train.route[{i}].id"), id)?;
        if route[..i].iter().any(|(o, _)| o == id) {
            return Err(Rejection::DuplicateStation(id.to_string()));
        }
        if let Some((first, _)) = route[..i].iter().find(|(_, k)| k == key) {
            return Err(Rejection::SharedStationKey {
                first: first.to_string(),
                second: id.to_string(),
            });
        }
    }
    Ok(())
}

/// SHA-256 over the canonical JSON of a list of key wraps.
pub fn keys_digest(keys: &[KeyWrap]) -> Hex<32> {
    Hex(tagged(
        "pht-native/1 keys",
        &[&serde_json::to_vec(keys).expect("keys serialise")],
    ))
}
