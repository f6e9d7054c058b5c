//! Unpacking `/opt` from image layers, refusing what the train's hashes would not see.
//!
//! The protocol hashes and decrypts the files of the train directory; anything else a layer can
//! express (links, devices, extended attributes, sparse maps, a second copy of a path, a path
//! that leaves `/opt`) could change what the container sees without changing those hashes, so it
//! is refused rather than interpreted.

use super::error::io_err;
use super::{ImageError, TRAIN_PATHS};
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Which part of the image a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerRole {
    /// A master-image layer: may hold the empty train directories, never a file under them.
    Base,
    /// A train layer: holds only `/opt` and the train paths below it; unpacked.
    Train,
}

/// The `/opt` being assembled from the train layers, in a private directory.
#[derive(Debug)]
pub struct OptTree {
    root: PathBuf,
    files: u64,
    bytes: u64,
}

impl OptTree {
    /// Unpacks into `root`, which must exist and be private (mode 0700).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            files: 0,
            bytes: 0,
        }
    }
    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Regular files unpacked so far.
    pub fn files(&self) -> u64 {
        self.files
    }
    /// Bytes unpacked so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

// PAX records the tar crate applies itself, and that say nothing about content the hashes miss.
const PAX_ALLOWED: &[&str] = &[
    "path", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname",
];

/// Reads one uncompressed layer tar. `Train` layers are unpacked into `tree` (whiteouts
/// honoured); `Base` layers are only checked. `tree` may be `None` for a `Base` layer.
pub fn read_layer<R: Read>(
    tar_stream: R,
    digest: &str,
    role: LayerRole,
    mut tree: Option<&mut OptTree>,
) -> Result<(), ImageError> {
    let refuse = |path: &str, reason: &str| ImageError::Smuggling {
        layer: digest.to_string(),
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let mut archive = tar::Archive::new(tar_stream);
    let mut seen = BTreeSet::new();
    let entries = archive.entries().map_err(|e| refuse("", &e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse("", &format!("unreadable tar: {e}")))?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Err(refuse(&raw_path, "global PAX header"));
        }
        let norm = normalize(&raw_path).ok_or_else(|| refuse(&raw_path, "unsafe path"))?;
        let under_train = in_train_paths(&norm);
        let in_opt = norm == "opt" || norm.starts_with("opt/");
        if role == LayerRole::Base {
            if under_train.is_some() && !(kind.is_dir() && TRAIN_PATHS.contains(&norm.as_str())) {
                return Err(refuse(
                    &raw_path,
                    "a base layer holds content under the train paths (only the train layer may)",
                ));
            }
            continue;
        }
        // Train layer from here on.
        if !in_opt {
            return Err(refuse(
                &raw_path,
                "the train layer touches a path outside /opt",
            ));
        }
        if !seen.insert(norm.clone()) {
            return Err(refuse(&raw_path, "duplicate entry"));
        }
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| refuse(&raw_path, &e.to_string()))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| refuse(&raw_path, &e.to_string()))?;
                let key = ext.key().unwrap_or("<non-UTF-8>");
                if !PAX_ALLOWED.contains(&key) {
                    return Err(refuse(&raw_path, &format!("PAX record `{key}`")));
                }
            }
        }
        let name = norm.rsplit('/').next().unwrap_or_default();
        if let Some(target) = name.strip_prefix(".wh.") {
            let parent = norm.rsplit_once('/').map_or("", |(p, _)| p);
            let inside = parent == "opt"
                && TRAIN_PATHS.iter().any(|t| *t == format!("opt/{target}"))
                || in_train_paths(parent).is_some();
            if !inside {
                return Err(refuse(&raw_path, "a whiteout outside the train paths"));
            }
            if !(kind.is_file() && entry.size() == 0) {
                return Err(refuse(
                    &raw_path,
                    "a whiteout must be an empty regular file",
                ));
            }
            let tree = tree
                .as_deref_mut()
                .expect("train layers unpack into a tree");
            let dir = tree.root.join(rel_in_opt(parent));
            if target == ".wh..opq" {
                clear_dir(&dir)?;
            } else if target.starts_with(".wh.") || target.is_empty() {
                return Err(refuse(&raw_path, "malformed whiteout"));
            } else {
                remove_any(&dir.join(target))?;
            }
            continue;
        }
        if norm != "opt" && under_train.is_none() {
            return Err(refuse(&raw_path, "not a train path (the train layer may hold only /opt/train_config.json, pht_train/, pht_results/, user_sym_key.key)"));
        }
        let tree = tree
            .as_deref_mut()
            .expect("train layers unpack into a tree");
        let dest = tree.root.join(rel_in_opt(&norm));
        if kind.is_dir() {
            if dest.is_file() {
                fs::remove_file(&dest).map_err(io_err(&dest))?;
            }
            fs::create_dir_all(&dest).map_err(io_err(&dest))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            if ["opt", "opt/pht_train", "opt/pht_results"].contains(&norm.as_str()) {
                return Err(refuse(
                    &raw_path,
                    "a file where the train layout has a directory",
                ));
            }
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            remove_any(&dest)?;
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&dest)
                .map_err(io_err(&dest))?;
            let n = io::copy(&mut entry, &mut out).map_err(io_err(&dest))?;
            tree.files += 1;
            tree.bytes += n;
        } else {
            let what = match kind {
                tar::EntryType::Symlink => "a symbolic link",
                tar::EntryType::Link => "a hard link",
                tar::EntryType::Char | tar::EntryType::Block => "a device file",
                tar::EntryType::Fifo => "a FIFO",
                tar::EntryType::GNUSparse => "a sparse file",
                _ => "an entry type other than file or directory",
            };
            return Err(refuse(&raw_path, what));
        }
    }
    Ok(())
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

/// Layer paths are relative; `./` prefixes and trailing slashes are cosmetic. Anything with `..`,
/// empty or `.` components, NUL or control characters, or an absolute path is refused.
fn normalize(p: &str) -> Option<String> {
    let p = p.strip_prefix("./").unwrap_or(p);
    let p = p.trim_end_matches('/');
    if p.is_empty() || p.starts_with('/') || p.chars().any(char::is_control) || p.contains('\\') {
        return None;
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return None;
    }
    Some(p.to_string())
}

fn clear_dir(dir: &Path) -> Result<(), ImageError> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(io_err(dir))?;
                remove_any(&e.path())?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn remove_any(p: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(io_err(p)),
        Ok(_) => fs::remove_file(p).map_err(io_err(p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(p)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
