//! The layout of a train directory (an image's `/opt`), and where it is inside an image: one
//! answer for the protocol, the image library and the station.

use crate::error::{Rejection, Result};
use crate::tree::{self, Entry, EntryKind};
use std::collections::BTreeSet;
use std::path::Path;

/// The configuration file's name in a train directory.
pub const CONFIG: &str = "train_config.json";
/// Train files directory.
pub const TRAIN_DIR: &str = "pht_train";
/// Results directory.
pub const RESULTS_DIR: &str = "pht_results";
/// The legacy creator key file.
pub const USER_KEY: &str = "user_sym_key.key";
/// The optional query file inside `pht_train`.
pub const QUERY: &str = "query.json";

/// Where the train directory is inside an image and a train's container.
pub const MOUNT: &str = "/opt";

/// The train directory in a layer (paths in layers are relative to `/`).
pub const IN_LAYER: &str = "opt";
/// The configuration in a layer.
pub const CONFIG_IN_LAYER: &str = "opt/train_config.json";
/// Paths a layer must have as directories when it has them at all.
pub const DIRS_IN_LAYER: &[&str] = &["opt", "opt/pht_train", "opt/pht_results"];

/// The train paths inside an image, relative to `/`: all a train layer may hold below `opt/`.
pub const IMAGE_PATHS: &[&str] = &[
    "opt/train_config.json",
    "opt/pht_train",
    "opt/pht_results",
    "opt/user_sym_key.key",
];

/// The path in a running container of the train file `rel` (below `pht_train`).
pub fn train_file_in_container(rel: &str) -> String {
    format!("{MOUNT}/{TRAIN_DIR}/{rel}")
}

/// The train file a container path names (`/opt/pht_train/<rel>` → `rel`), if it names one.
pub fn train_file_from_container(path: &str) -> Option<&str> {
    path.strip_prefix(MOUNT)?
        .strip_prefix('/')?
        .strip_prefix(TRAIN_DIR)?
        .strip_prefix('/')
}

/// The results directory in a running container.
pub fn results_in_container() -> String {
    format!("{MOUNT}/{RESULTS_DIR}")
}

/// Checks that the directory's top level holds only the entries a train may have.
pub fn check_top_level(dir: &Path, allowed: &[&str]) -> Result<()> {
    for ent in std::fs::read_dir(dir).map_err(tree::io_err(dir))? {
        let ent = ent.map_err(tree::io_err(dir))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name == crate::tree::rewrite::MARKER {
            return Err(Rejection::Interrupted(ent.path().display().to_string()).into());
        }
        if !allowed.contains(&name.as_str()) {
            return Err(Rejection::BadEntry(format!(
                "unexpected entry `{name}` in the train directory (allowed: {})",
                allowed.join(", ")
            ))
            .into());
        }
        let ft = ent.file_type().map_err(tree::io_err(&ent.path()))?;
        let want_dir = name == TRAIN_DIR || name == RESULTS_DIR;
        if (want_dir && !ft.is_dir()) || (!want_dir && !ft.is_file()) {
            return Err(Rejection::BadEntry(format!("`{name}` has the wrong file type")).into());
        }
    }
    Ok(())
}

/// Compares the files found with the files listed: an extra file or a missing one is rejected.
pub fn match_listing(found: &[Entry], listed: &BTreeSet<String>, dir: &str) -> Result<()> {
    let found_files: BTreeSet<&str> = found
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(_)))
        .map(|e| e.path.as_str())
        .collect();
    if let Some(extra) = found_files.iter().find(|f| !listed.contains(**f)) {
        return Err(Rejection::UnlistedFile(format!("{dir}/{extra}")).into());
    }
    if let Some(missing) = listed.iter().find(|f| !found_files.contains(f.as_str())) {
        return Err(Rejection::MissingFile(format!("{dir}/{missing}")).into());
    }
    Ok(())
}

/// Total bytes of the files in a listing.
pub fn total_size(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File(n) => n,
            EntryKind::Dir => 0,
        })
        .sum()
}

/// Reads the configuration file.
pub fn read_config(dir: &Path) -> Result<Vec<u8>> {
    let p = dir.join(CONFIG);
    let mut f = tree::open_regular(&p)?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut buf).map_err(tree::io_err(&p))?;
    Ok(buf)
}
