//! Unpacking `/opt` from image layers, refusing what the train's hashes would not see.
//!
//! The protocol hashes and decrypts the files of the train directory; anything else a layer can
//! express (links, devices, extended attributes, sparse maps, a second copy of a path, a path
//! that leaves `/opt`) could change what the container sees without changing those hashes, so it
//! is refused rather than interpreted.

use super::untar::{self, refused, Dest, Flow, Item, Kind, ReadLimits, Rules};
use super::ImageError;
use std::io::Read;
use std::path::Path;
use train_lib::layout::{CONFIG_IN_LAYER, DIRS_IN_LAYER, IMAGE_PATHS as TRAIN_PATHS};

/// Which part of the image a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerRole {
    /// A master-image layer: may hold the empty train directories, never a file under them.
    Base,
    /// A train layer: holds only `/opt` and the train paths below it; unpacked.
    Train,
}

/// The `/opt` being assembled from the train layers, in a private directory, with caps that
/// hold across all of them.
#[derive(Debug)]
pub struct OptTree {
    dest: Dest,
    limits: ReadLimits,
    files: u64,
    bytes: u64,
    entries: u64,
}

impl OptTree {
    /// Unpacks into `root`, which must exist and be private (mode 0700), with the default caps.
    pub fn new(root: &Path) -> Self {
        Self::with_limits(root, ReadLimits::default())
    }
    /// Unpacks into `root` at most `limits`, summed over every layer unpacked into it.
    pub fn with_limits(root: &Path, limits: ReadLimits) -> Self {
        Self {
            dest: Dest::new(root),
            limits,
            files: 0,
            bytes: 0,
            entries: 0,
        }
    }
    /// The directory.
    pub fn root(&self) -> &Path {
        self.dest.root()
    }
    /// Regular files unpacked so far.
    pub fn files(&self) -> u64 {
        self.files
    }
    /// Bytes unpacked so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// What may still be unpacked into the tree.
    fn remaining(&self) -> ReadLimits {
        ReadLimits {
            bytes: self.limits.bytes.saturating_sub(self.bytes),
            entries: self.limits.entries.saturating_sub(self.entries),
        }
    }
}

/// Reads one uncompressed layer tar. `Train` layers are unpacked into `tree` (whiteouts
/// honoured); `Base` layers are only checked, with the default caps. `tree` may be `None` for a
/// `Base` layer.
pub fn read_layer<R: Read>(
    tar_stream: R,
    digest: &str,
    role: LayerRole,
    tree: Option<&mut OptTree>,
) -> Result<(), ImageError> {
    match (role, tree) {
        (LayerRole::Base, _) => scan_base_layer(tar_stream, digest, ReadLimits::default()),
        (LayerRole::Train, Some(t)) => unpack_train_layer(tar_stream, digest, t),
        (LayerRole::Train, None) => panic!("train layers unpack into a tree"),
    }
}

/// Checks a base layer: it may hold anything, except content under the train paths (only
/// the train layer may); the empty train directories are allowed.
pub fn scan_base_layer<R: Read>(
    tar: R,
    digest: &str,
    limits: ReadLimits,
) -> Result<(), ImageError> {
    let rules = Rules {
        name: digest,
        limits,
        unique_paths: false,
    };
    untar::read(tar, &rules, |it| {
        if in_train_paths(it.path).is_some()
            && !(it.kind == Kind::Dir && TRAIN_PATHS.contains(&it.path))
        {
            return Err(refused(
                digest,
                it.raw,
                "a base layer holds content under the train paths (only the train layer may)",
            ));
        }
        Ok(Flow::Continue)
    })?;
    Ok(())
}

/// Reads `opt/train_config.json` from a train layer without unpacking anything, stopping as
/// soon as it is found (layers written by this project put it first). `None` when the layer
/// has none. The configuration itself is capped at `CONFIG_CAP` bytes.
pub fn find_config<R: Read>(
    tar: R,
    digest: &str,
    limits: ReadLimits,
) -> Result<Option<Vec<u8>>, ImageError> {
    let rules = Rules {
        name: digest,
        limits,
        unique_paths: true,
    };
    let mut found = None;
    untar::read(tar, &rules, |it| {
        if it.path != CONFIG_IN_LAYER {
            return Ok(Flow::Continue);
        }
        let Kind::File(size) = it.kind else {
            return Err(refused(
                digest,
                it.raw,
                "the configuration is not a regular file",
            ));
        };
        if size > CONFIG_CAP {
            return Err(ImageError::Limit {
                what: format!("layer {digest}: opt/train_config.json"),
                detail: format!("{size} bytes, more than a configuration may hold ({CONFIG_CAP})"),
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        it.data
            .read_to_end(&mut buf)
            .map_err(|e| untar::cancelled_or(e, |e| refused(digest, it.raw, e.to_string())))?;
        found = Some(buf);
        Ok(Flow::Stop)
    })?;
    Ok(found)
}

/// The largest `train_config.json` read: a native configuration lists every file with its hash
/// (about 150 bytes each), so 16 MiB holds some 100,000 files.
pub const CONFIG_CAP: u64 = 16 << 20;

/// Unpacks a train layer's `/opt` into `tree`, within what is left of the tree's caps.
pub fn unpack_train_layer<R: Read>(
    tar: R,
    digest: &str,
    tree: &mut OptTree,
) -> Result<(), ImageError> {
    let rules = Rules {
        name: digest,
        limits: tree.remaining(),
        unique_paths: true,
    };
    let dest = &tree.dest;
    let (mut files, mut bytes) = (0, 0);
    let counts = untar::read(tar, &rules, |it| {
        if let Some(n) = unpack_entry(dest, digest, it)? {
            files += 1;
            bytes += n;
        }
        Ok(Flow::Continue)
    })?;
    tree.files += files;
    tree.bytes += bytes;
    tree.entries += counts.entries;
    Ok(())
}

/// One train-layer entry: a whiteout applied, a directory made, a file written (`Some(size)`).
fn unpack_entry(dest: &Dest, digest: &str, it: Item<'_>) -> Result<Option<u64>, ImageError> {
    let (norm, raw) = (it.path, it.raw);
    if norm != "opt" && !norm.starts_with("opt/") {
        return Err(refused(
            digest,
            raw,
            "the train layer touches a path outside /opt",
        ));
    }
    let name = norm.rsplit('/').next().unwrap_or_default();
    if let Some(target) = name.strip_prefix(".wh.") {
        let parent = norm.rsplit_once('/').map_or("", |(p, _)| p);
        let inside = parent == "opt" && TRAIN_PATHS.iter().any(|t| *t == format!("opt/{target}"))
            || in_train_paths(parent).is_some();
        if !inside {
            return Err(refused(digest, raw, "a whiteout outside the train paths"));
        }
        if it.kind != Kind::File(0) {
            return Err(refused(
                digest,
                raw,
                "a whiteout must be an empty regular file",
            ));
        }
        if target == ".wh..opq" {
            dest.clear(rel_in_opt(parent))?;
        } else if target.starts_with(".wh.") || target.is_empty() {
            return Err(refused(digest, raw, "malformed whiteout"));
        } else {
            let dir = rel_in_opt(parent);
            dest.remove(&if dir.is_empty() {
                target.to_string()
            } else {
                format!("{dir}/{target}")
            })?;
        }
        return Ok(None);
    }
    if norm != "opt" && in_train_paths(norm).is_none() {
        return Err(refused(digest, raw, "not a train path (the train layer may hold only /opt/train_config.json, pht_train/, pht_results/, user_sym_key.key)"));
    }
    match it.kind {
        Kind::Dir => {
            dest.dir(rel_in_opt(norm))?;
            Ok(None)
        }
        Kind::File(_) => {
            if DIRS_IN_LAYER.contains(&norm) {
                return Err(refused(
                    digest,
                    raw,
                    "a file where the train layout has a directory",
                ));
            }
            Ok(Some(dest.file(rel_in_opt(norm), it.data)?))
        }
        Kind::Other(what) => Err(refused(
            digest,
            raw,
            format!("{what}; a train layer holds only files and directories"),
        )),
    }
}

/// `opt/x/y` → `x/y`; `opt` → ``.
fn rel_in_opt(norm: &str) -> &str {
    norm.strip_prefix("opt/").unwrap_or("")
}

/// Which train path `norm` is at or under.
fn in_train_paths(norm: &str) -> Option<&'static str> {
    TRAIN_PATHS
        .iter()
        .copied()
        .find(|t| norm == *t || norm.strip_prefix(t).is_some_and(|r| r.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
                h.set_size(0);
                h.set_link_name("../../etc/passwd").unwrap();
            }
            // set_path refuses `..`; write the raw name to feed the reader the attack.
            let name = h.as_old_mut().name.as_mut();
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack(tar: &[u8], role: LayerRole) -> (tempfile::TempDir, Result<(), ImageError>) {
        let d = tempfile::tempdir().unwrap();
        let mut t = OptTree::new(d.path());
        let r = read_layer(tar, "sha256:test", role, Some(&mut t));
        (d, r)
    }

    fn refused(tar: &[u8], role: LayerRole, why: &str) {
        match unpack(tar, role).1 {
            Err(ImageError::Smuggling { reason, .. }) => {
                assert!(reason.contains(why), "reason `{reason}` lacks `{why}`")
            }
            other => panic!("expected refusal ({why}), got {other:?}"),
        }
    }

    use tar::EntryType as T;

    #[test]
    fn unpacks_the_train_paths() {
        let t = tar_of(&[
            ("opt/", T::Directory, b""),
            ("opt/pht_train/", T::Directory, b""),
            ("opt/pht_train/a.py", T::Regular, b"print(1)"),
            ("opt/pht_results/", T::Directory, b""),
            ("opt/train_config.json", T::Regular, b"{}"),
        ]);
        let (d, r) = unpack(&t, LayerRole::Train);
        r.unwrap();
        assert_eq!(
            fs::read(d.path().join("pht_train/a.py")).unwrap(),
            b"print(1)"
        );
        assert!(d.path().join("pht_results").is_dir());
    }

    #[test]
    fn refuses_every_smuggling_vector() {
        refused(
            &tar_of(&[("opt/pht_train/x", T::Symlink, b"")]),
            LayerRole::Train,
            "symbolic link",
        );
        refused(
            &tar_of(&[("opt/pht_train/x", T::Link, b"")]),
            LayerRole::Train,
            "hard link",
        );
        refused(
            &tar_of(&[("opt/pht_train/x", T::Char, b"")]),
            LayerRole::Train,
            "device",
        );
        refused(
            &tar_of(&[("opt/pht_train/x", T::Block, b"")]),
            LayerRole::Train,
            "device",
        );
        refused(
            &tar_of(&[("opt/pht_train/x", T::Fifo, b"")]),
            LayerRole::Train,
            "FIFO",
        );
        refused(
            &tar_of(&[("opt/../etc/passwd", T::Regular, b"x")]),
            LayerRole::Train,
            "unsafe path",
        );
        refused(
            &tar_of(&[("opt/pht_train/../../x", T::Regular, b"x")]),
            LayerRole::Train,
            "unsafe path",
        );
        refused(
            &tar_of(&[("/opt/pht_train/a", T::Regular, b"x")]),
            LayerRole::Train,
            "unsafe path",
        );
        refused(
            &tar_of(&[("etc/passwd", T::Regular, b"x")]),
            LayerRole::Train,
            "outside /opt",
        );
        refused(
            &tar_of(&[("opt/other.sh", T::Regular, b"x")]),
            LayerRole::Train,
            "not a train path",
        );
        refused(
            &tar_of(&[
                ("opt/pht_train/a", T::Regular, b"1"),
                ("opt/pht_train/a", T::Regular, b"2"),
            ]),
            LayerRole::Train,
            "duplicate",
        );
        refused(
            &tar_of(&[("opt/.wh.etc", T::Regular, b"")]),
            LayerRole::Train,
            "whiteout outside",
        );
        refused(
            &tar_of(&[("opt/pht_train", T::Regular, b"x")]),
            LayerRole::Train,
            "has a directory",
        );
        // Found by the layer_read fuzz target: a file named `opt` replaced the whole tree.
        refused(
            &tar_of(&[("opt", T::Regular, b"x")]),
            LayerRole::Train,
            "has a directory",
        );
        refused(
            &tar_of(&[("opt/pht_train/a.py", T::Regular, b"x")]),
            LayerRole::Base,
            "base layer",
        );
        refused(
            &tar_of(&[("opt/train_config.json", T::Regular, b"{}")]),
            LayerRole::Base,
            "base layer",
        );
    }

    #[test]
    fn refuses_pax_records_it_does_not_understand() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("SCHILY.xattr.security.capability", b"x".as_slice())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("opt/pht_train/a").unwrap();
        h.set_size(1);
        h.set_cksum();
        b.append(&h, &b"a"[..]).unwrap();
        refused(&b.into_inner().unwrap(), LayerRole::Train, "PAX record");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(T::XGlobalHeader);
        h.set_path("pax_global_header").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        refused(&b.into_inner().unwrap(), LayerRole::Train, "global PAX");
    }

    #[test]
    fn whiteouts_are_honoured_inside_the_train_paths() {
        let d = tempfile::tempdir().unwrap();
        let mut t = OptTree::new(d.path());
        let l1 = tar_of(&[
            ("opt/pht_results/old.csv", T::Regular, b"1"),
            ("opt/pht_results/keep.csv", T::Regular, b"2"),
            ("opt/pht_train/x", T::Regular, b"3"),
        ]);
        read_layer(&l1[..], "l1", LayerRole::Train, Some(&mut t)).unwrap();
        let l2 = tar_of(&[
            ("opt/pht_results/.wh.old.csv", T::Regular, b""),
            ("opt/pht_train/.wh..wh..opq", T::Regular, b""),
        ]);
        read_layer(&l2[..], "l2", LayerRole::Train, Some(&mut t)).unwrap();
        assert!(!d.path().join("pht_results/old.csv").exists());
        assert!(d.path().join("pht_results/keep.csv").exists());
        assert!(!d.path().join("pht_train/x").exists());
    }

    #[test]
    fn base_layers_may_hold_the_empty_train_directories_and_anything_else() {
        let t = tar_of(&[
            ("bin/sh", T::Symlink, b""),
            ("opt/", T::Directory, b""),
            ("opt/pht_train/", T::Directory, b""),
            ("opt/pht_results/", T::Directory, b""),
        ]);
        unpack(&t, LayerRole::Base).1.unwrap();
    }
}
