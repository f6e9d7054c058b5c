//! What `train create` is given, for either format, and the source files it reads.

use crate::error::Result;
use crate::keys::{PrivateKey, PublicKey};
use crate::layout::QUERY;
use crate::tree::{self, EntryKind};
use std::path::Path;

/// What `train create` needs, for either format.
#[derive(Debug)]
pub struct CreateSpec<'a> {
    /// Directory of train files (becomes `pht_train`).
    pub files: &'a Path,
    /// The file the image runs, relative to `files`.
    pub entrypoint: &'a str,
    /// The creator's id.
    pub creator_id: &'a str,
    /// The creator's private key.
    pub creator_key: &'a PrivateKey,
    /// The route: station ids and public keys, in order.
    pub stations: Vec<(String, PublicKey)>,
    /// An optional `query.json` to ship.
    pub query: Option<&'a Path>,
    /// The builder's key (required for legacy, optional for native).
    pub builder_key: Option<&'a PrivateKey>,
    /// Train id; random when absent.
    pub train_id: Option<String>,
    /// Proposal id; the train id when absent.
    pub proposal_id: Option<String>,
    /// Master image reference (legacy `source`) or digest (native, signed).
    pub master_image: Option<String>,
}

/// Train files by relative path and size, in walk order.
pub(crate) type SourceFiles = Vec<(String, u64)>;

/// The train files of a source directory: every regular file in walk order, with a top-level
/// `query.json` split off as the query. Returns (files, query path).
pub(crate) fn source_files(
    spec: &CreateSpec<'_>,
) -> Result<(SourceFiles, Option<std::path::PathBuf>)> {
    let entries = tree::walk(spec.files)?;
    if entries.is_empty() && !spec.files.is_dir() {
        return Err(crate::error::ProtocolError::Input(format!(
            "--files {} is not a directory",
            spec.files.display()
        )));
    }
    let mut files = Vec::new();
    let mut query = spec.query.map(Path::to_path_buf);
    for e in entries {
        if let EntryKind::File(n) = e.kind {
            if e.path == QUERY {
                if spec.query.is_some() {
                    return Err(crate::error::ProtocolError::Input(format!(
                        "{} has a query.json and --query was given too; keep one",
                        spec.files.display()
                    )));
                }
                query = Some(spec.files.join(QUERY));
                continue;
            }
            files.push((e.path, n));
        }
    }
    if !files.iter().any(|(p, _)| p == spec.entrypoint) {
        return Err(crate::error::ProtocolError::Input(format!(
            "entrypoint `{}` is not a file under {}",
            spec.entrypoint,
            spec.files.display()
        )));
    }
    if spec.stations.is_empty() {
        return Err(crate::error::ProtocolError::Input(
            "the route needs at least one --station".into(),
        ));
    }
    // Duplicate stations are refused by each format's own route check, in its own comparison.
    Ok((files, query))
}

/// A random train id.
pub(crate) fn random_train_id() -> String {
    format!("train-{}", hex::encode(crate::keys::random_bytes::<8>()))
}
