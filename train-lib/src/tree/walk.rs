//! Depth-first walk with each directory's entries sorted by name: the order of Docker's archive
//! of a directory, which the PHT-meDIC result hash follows.

use super::{io_err, TreeError};
use std::fs;
use std::path::{Path, PathBuf};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File(u64),
}

/// An entry below the walked root, named by its `/`-separated relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path with `/` separators.
    pub path: String,
    /// Directory or file.
    pub kind: EntryKind,
}

/// Walks `root` (which must be a directory, or absent: then the walk is empty). Symlinks,
/// devices, FIFOs and sockets are refused, never followed.
pub fn walk(root: &Path) -> Result<Vec<Entry>, TreeError> {
    let mut out = Vec::new();
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(root)(e)),
        Ok(m) if !m.file_type().is_dir() => {
            return Err(TreeError::NotRegular {
                path: root.display().to_string(),
                kind: kind_name(&m),
            })
        }
        Ok(_) => {}
    }
    // Iterative, with an explicit stack: a train's output decides how deep the tree is, and a
    // recursive walk of a 1,900-level results tree overflowed the station's stack.
    let mut pending = sorted_children(root, "")?;
    while let Some((full, rel)) = pending.pop() {
        let meta = fs::symlink_metadata(&full).map_err(io_err(&full))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            pending.extend(sorted_children(&full, &rel)?);
            out.push(Entry {
                path: rel,
                kind: EntryKind::Dir,
            });
        } else if ft.is_file() {
            out.push(Entry {
                path: rel,
                kind: EntryKind::File(meta.len()),
            });
        } else {
            return Err(TreeError::NotRegular {
                path: full.display().to_string(),
                kind: kind_name(&meta),
            });
        }
    }
    Ok(out)
}

/// The entries of `dir` as (full path, relative path), sorted by name in *reverse*, so that
/// popping them off a stack visits them in order.
fn sorted_children(dir: &Path, prefix: &str) -> Result<Vec<(PathBuf, String)>, TreeError> {
    let mut names = Vec::new();
    for ent in fs::read_dir(dir).map_err(io_err(dir))? {
        let ent = ent.map_err(io_err(dir))?;
        let name = ent.file_name();
        let name = name
            .to_str()
            .filter(|n| !n.chars().any(char::is_control))
            .ok_or_else(|| TreeError::BadName(dir.join(&name).display().to_string()))?
            .to_string();
        names.push(name);
    }
    // Go's filepath.Walk sorts by byte order, which is what `str::cmp` is.
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names
        .into_iter()
        .map(|name| {
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            (dir.join(name), rel)
        })
        .collect())
}

fn kind_name(m: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = m.file_type();
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_file() {
        "regular file"
    } else if ft.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// A relative path that would leave its directory (the protocol refuses it as
/// `Rejection::UnsafePath`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path `{0}` is not a safe relative path")]
pub struct UnsafePath(pub String);

/// Checks that a relative path from an untrusted configuration stays inside its directory:
/// no absolute paths, no `.` or `..` components, no empty components, no backslashes or NULs.
pub fn check_rel_path(p: &str) -> Result<(), UnsafePath> {
    let bad = p.is_empty()
        || p.starts_with('/')
        || p.contains('\\')
        || p.chars().any(char::is_control)
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(UnsafePath(p.to_string()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_depth_first_sorted_and_refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("a/z")).unwrap();
        fs::write(r.join("a.txt"), b"1").unwrap();
        fs::write(r.join("a/b"), b"22").unwrap();
        fs::write(r.join("B"), b"").unwrap();
        let paths: Vec<_> = walk(r).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["B", "a", "a/b", "a/z", "a.txt"]);
        std::os::unix::fs::symlink("/etc/passwd", r.join("a/link")).unwrap();
        assert!(matches!(
            walk(r),
            Err(TreeError::NotRegular {
                kind: "symlink",
                ..
            })
        ));
    }

    #[test]
    fn a_tree_deeper_than_the_stack_allows_recursion_is_walked() {
        // 1,900 levels (as a train left once): a recursive walk needs far more than the 128 KiB
        // stack this runs on.
        let d = tempfile::tempdir().unwrap();
        let deep = (0..1900).fold(d.path().to_path_buf(), |p, _| p.join("a"));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("x"), b"1").unwrap();
        let root = d.path().to_path_buf();
        let n = std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || walk(&root).unwrap().len())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(n, 1901);
    }

    #[test]
    fn unsafe_paths_are_rejected() {
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a\0b",
        ] {
            assert!(check_rel_path(p).is_err(), "{p:?}");
        }
        check_rel_path("model/weights.bin").unwrap();
    }
}
