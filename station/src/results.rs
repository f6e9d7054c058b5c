//! Taking the results out of the container: the tar the engine hands back is as untrusted as
//! the train that wrote it. It goes through the same hardened reader as registry layers
//! (`image::untar`), with the results' policy: everything under `pht_results/`, only
//! directories and regular files, each path once, at most `limits.train_entries` entries and
//! `limits.results_bytes` bytes; created private (0700/0600) without following links.

use std::io::Read;
use std::path::Path;
use train_image::untar::{self, refused, Dest, Flow, Kind, ReadLimits, Rules};
use train_image::ImageError;
use train_lib::layout::RESULTS_DIR;

/// Unpacks `tar` (Docker's archive of `/opt/pht_results`) into the new directory `dest`;
/// returns the number of files.
pub fn extract(tar: impl Read, dest: &Path, limits: ReadLimits) -> Result<u64, ImageError> {
    train_lib::tree::private::create_dir(dest).map_err(|cause| ImageError::Io {
        path: dest.to_path_buf(),
        cause,
    })?;
    let out = Dest::new(dest);
    let rules = Rules {
        name: "results",
        limits,
        unique_paths: true,
    };
    let mut files = 0;
    untar::read(tar, &rules, |it| {
        let rel = if it.path == RESULTS_DIR {
            ""
        } else if let Some(r) = it
            .path
            .strip_prefix(RESULTS_DIR)
            .and_then(|r| r.strip_prefix('/'))
        {
            r
        } else {
            return Err(refused("results", it.raw, "outside pht_results"));
        };
        match it.kind {
            Kind::Dir if rel.is_empty() => {}
            Kind::Dir => out.dir(rel)?,
            Kind::File(_) if !rel.is_empty() => {
                out.file(rel, it.data)?;
                files += 1;
            }
            Kind::File(_) => {
                return Err(refused(
                    "results",
                    it.raw,
                    format!("{RESULTS_DIR} is not a directory"),
                ))
            }
            Kind::Other(what) => {
                return Err(refused(
                    "results",
                    it.raw,
                    format!("{what}; a train may leave only files and directories"),
                ))
            }
        }
        Ok(Flow::Continue)
    })?;
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
                &d.path().join("ok"),
                ReadLimits::default()
            )
            .unwrap(),
            1
        );
        for (k, p, why) in [
            (tar::EntryType::Symlink, "pht_results/x", "Symlink"),
            (tar::EntryType::Link, "pht_results/x", "Link"),
            (tar::EntryType::Fifo, "pht_results/x", "Fifo"),
            (tar::EntryType::Regular, "pht_results/../x", "unsafe"),
            (tar::EntryType::Regular, "pht_results/a\x1b[2K", "unsafe"),
            (tar::EntryType::Regular, "etc/passwd", "outside"),
        ] {
            let out = d.path().join(format!("o{why}"));
            let e = extract(&tar_with(k, p)[..], &out, ReadLimits::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn results_are_private_and_capped() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("r");
        extract(
            &tar_with(tar::EntryType::Regular, "pht_results/a/b.csv")[..],
            &out,
            ReadLimits::default(),
        )
        .unwrap();
        for (p, want) in [("", 0o700), ("a", 0o700), ("a/b.csv", 0o600)] {
            let m = std::fs::metadata(out.join(p)).unwrap().permissions().mode();
            assert_eq!(m & 0o777, want, "{p}");
        }
        let e = extract(
            &tar_with(tar::EntryType::Regular, "pht_results/a/b.csv")[..],
            &d.path().join("capped"),
            ReadLimits {
                bytes: 1,
                entries: 10,
            },
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("more than 1 bytes"), "{e:#}");
    }
}
