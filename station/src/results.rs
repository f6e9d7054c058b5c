//! Taking the results out of the container: the tar the engine hands back is as untrusted as
//! the train that wrote it. Only directories and regular files under `pht_results/` are taken.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Unpacks `tar` (Docker's archive of `/opt/pht_results`) into the new directory `dest`.
pub fn extract(tar: impl Read, dest: &Path) -> Result<u64> {
    fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut a = tar::Archive::new(tar);
    let mut seen = BTreeSet::new();
    let mut files = 0;
    for e in a.entries().context("reading the results archive")? {
        let mut e = e.context("reading the results archive")?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let p = raw.trim_end_matches('/');
        let rel = if p == "pht_results" {
            ""
        } else if let Some(r) = p.strip_prefix("pht_results/") {
            r
        } else {
            bail!("results: entry `{raw}` is outside pht_results");
        };
        if !rel.is_empty() {
            train_lib::tree::check_rel_path(rel)
                .map_err(|_| anyhow::anyhow!("results: unsafe path `{raw}`"))?;
        }
        if !seen.insert(rel.to_string()) {
            bail!("results: duplicate entry `{raw}`");
        }
        let kind = e.header().entry_type();
        let target = dest.join(rel);
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .with_context(|| format!("writing result {rel}"))?;
            std::io::copy(&mut e, &mut f)?;
            files += 1;
        } else {
            bail!(
                "results: `{raw}` is a {:?}; a train may leave only files and directories",
                kind
            );
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(kind: tar::EntryType, path: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_path("pht_results/").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let name = h.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        if kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/shadow").unwrap();
        }
        h.set_size(if kind.is_file() { 2 } else { 0 });
        h.set_cksum();
        b.append(&h, &b"ok"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn takes_files_and_refuses_links_and_escapes() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            extract(
                &tar_with(tar::EntryType::Regular, "pht_results/a/b.csv")[..],
                &d.path().join("ok")
            )
            .unwrap(),
            1
        );
        for (k, p, why) in [
            (tar::EntryType::Symlink, "pht_results/x", "Symlink"),
            (tar::EntryType::Link, "pht_results/x", "Link"),
            (tar::EntryType::Fifo, "pht_results/x", "Fifo"),
            (tar::EntryType::Regular, "pht_results/../x", "unsafe"),
            (tar::EntryType::Regular, "etc/passwd", "outside"),
        ] {
            let out = d.path().join(format!("o{why}"));
            let e = extract(&tar_with(k, p)[..], &out).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
