//! Private staging for every file an operation writes. Nothing in the train directory changes
//! until [`Staging::commit`]; dropping a `Staging` removes what it holds, so a failed check
//! leaves neither a half-changed train nor decrypted bytes behind.
//!
//! A staged directory replaces the whole directory of the same name (the operations rewrite
//! every file below it), by two renames: the old one aside, the new one in. That keeps the
//! commit short and avoids ext4 flushing each file it would replace by name.

use super::{io_err, TreeError};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files written aside, to be moved into the train directory at once.
pub struct Staging {
    dir: tempfile::TempDir,
    root: PathBuf,
    // Top-level names staged; behind a mutex so files can be staged from several threads.
    tops: Mutex<BTreeSet<String>>,
}

impl Staging {
    /// Stages changes to the directory `root`. The staging directory (mode 0700) is a sibling of
    /// `root`, on the same file system, so the commit is a few renames.
    pub fn new(root: &Path) -> Result<Self, TreeError> {
        let parent = root
            .canonicalize()
            .map_err(io_err(root))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        // tempfile makes directories 0777 & umask (0755 here) unless told.
        let dir = tempfile::Builder::new()
            .prefix(".pht-staging-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&parent)
            .map_err(io_err(&parent))?;
        for sub in ["new", "old"] {
            let p = dir.path().join(sub);
            super::private::create_dir(&p).map_err(io_err(&p))?;
        }
        Ok(Self {
            dir,
            root: root.to_path_buf(),
            tops: Mutex::default(),
        })
    }

    fn note(&self, rel: &str) {
        let top = rel.split('/').next().unwrap_or(rel).to_string();
        self.tops.lock().expect("staging lock").insert(top);
    }

    /// Creates a private (0600) file that will become `rel` below the root.
    pub fn create(&self, rel: &str) -> Result<File, TreeError> {
        self.note(rel);
        create_private(&self.dir.path().join("new").join(rel))
    }

    /// Stages a small file with the given bytes.
    pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), TreeError> {
        use std::io::Write;
        let path = self.root.join(rel);
        self.create(rel)?.write_all(data).map_err(io_err(&path))
    }

    /// Stages a directory (possibly empty) at `rel`.
    pub fn ensure_dir(&self, rel: &str) -> Result<(), TreeError> {
        self.note(rel);
        let p = self.dir.path().join("new").join(rel);
        super::private::create_dir_all(&p).map_err(io_err(&p))
    }

    /// Moves everything staged into place: directories first, the configuration last, so a
    /// commit cut short leaves an old configuration that no longer matches: visible, not silent.
    pub fn commit(self) -> Result<(), TreeError> {
        let mut tops: Vec<String> = self
            .tops
            .lock()
            .expect("staging lock")
            .iter()
            .cloned()
            .collect();
        tops.sort_by_key(|t| (t == "train_config.json", t.contains('.'), t.clone()));
        for top in tops {
            let new = self.dir.path().join("new").join(&top);
            let dst = self.root.join(&top);
            if new.is_dir() && fs::symlink_metadata(&dst).is_ok() {
                let old = self.dir.path().join("old").join(&top);
                fs::rename(&dst, &old).map_err(io_err(&dst))?;
            }
            fs::rename(&new, &dst).map_err(io_err(&dst))?;
        }
        // Freeing what was replaced (blocks and cached pages) costs about as much as writing it:
        // spread it over the cores. Dropping `dir` then removes the empty directories.
        let old = self.dir.path().join("old");
        if let Ok(entries) = super::walk(&old) {
            let files: Vec<PathBuf> = entries
                .iter()
                .filter(|e| matches!(e.kind, super::EntryKind::File(_)))
                .map(|e| old.join(&e.path))
                .collect();
            let _ = crate::par::try_map(&files, |p| fs::remove_file(p));
        }
        Ok(())
    }
}

/// Creates a new file readable only by its owner (0600), with its parent directories (0700).
fn create_private(p: &Path) -> Result<File, TreeError> {
    if let Some(parent) = p.parent() {
        super::private::create_dir_all(parent).map_err(io_err(parent))?;
    }
    super::private::create_file(p).map_err(io_err(p))
}

/// Opens a file below a root for reading, refusing to follow a symlink at the last component.
pub fn open_regular(path: &Path) -> Result<File, TreeError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))
}

/// A new directory built privately beside its final path and renamed into place when complete,
/// so the final path holds either nothing or the whole result.
pub struct OutputDir {
    tmp: tempfile::TempDir,
    target: PathBuf,
}

impl OutputDir {
    /// Prepares to create `target`, which must not exist yet (or be an empty directory).
    pub fn new(target: &Path) -> Result<Self, TreeError> {
        if let Ok(mut rd) = fs::read_dir(target) {
            if rd.next().is_some() {
                return Err(TreeError::Io {
                    path: target.display().to_string(),
                    cause: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "output directory exists and is not empty; choose a new path",
                    ),
                });
            }
        } else if target.exists() {
            return Err(TreeError::Io {
                path: target.display().to_string(),
                cause: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            });
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        // Decrypted results: the owner's alone from the first byte (0700, not tempfile's 0755).
        let tmp = tempfile::Builder::new()
            .prefix(".pht-out-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&parent)
            .map_err(io_err(&parent))?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// The directory being built.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Creates a private (0600) file at `rel`, with its parent directories.
    pub fn create(&self, rel: &str) -> Result<File, TreeError> {
        create_private(&self.tmp.path().join(rel))
    }

    /// Creates the directory `rel`.
    pub fn ensure_dir(&self, rel: &str) -> Result<(), TreeError> {
        let p = self.tmp.path().join(rel);
        super::private::create_dir_all(&p).map_err(io_err(&p))
    }

    /// Renames the finished directory to its target.
    pub fn commit(self) -> Result<(), TreeError> {
        let tmp = self.tmp.keep();
        if self.target.exists() {
            fs::remove_dir(&self.target).map_err(io_err(&self.target))?;
        }
        fs::rename(&tmp, &self.target).map_err(|e| {
            let _ = fs::remove_dir_all(&tmp);
            io_err(&self.target)(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_staging_directory_is_private_from_its_creation() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let s = Staging::new(&root).unwrap();
        for p in [s.dir.path().to_path_buf(), s.dir.path().join("new")] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", p.display());
        }
        let out = OutputDir::new(&d.path().join("results")).unwrap();
        let mode = std::fs::metadata(out.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
