//! Private staging for every file an operation writes. Nothing in the train directory changes
//! until [`Staging::commit`]; dropping a `Staging` removes what it holds, so a failed check
//! leaves neither a half-changed train nor decrypted bytes behind.

use super::{io_err, TreeError};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Files written aside, to be moved into the train directory at once.
pub struct Staging {
    dir: tempfile::TempDir,
    root: PathBuf,
    moves: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<PathBuf>,
}

impl Staging {
    /// Stages changes to the directory `root`. The staging directory (mode 0700) is a sibling of
    /// `root`, on the same file system, so the commit is a series of renames.
    pub fn new(root: &Path) -> Result<Self, TreeError> {
        let parent = root
            .canonicalize()
            .map_err(io_err(root))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let dir = tempfile::Builder::new()
            .prefix(".pht-staging-")
            .tempdir_in(&parent)
            .map_err(io_err(&parent))?;
        Ok(Self {
            dir,
            root: root.to_path_buf(),
            moves: Vec::new(),
            dirs: Vec::new(),
        })
    }

    /// Creates a private (0600) file that will become `rel` below the root.
    pub fn create(&mut self, rel: &str) -> Result<File, TreeError> {
        let staged = self.dir.path().join(format!("{}", self.moves.len()));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged)
            .map_err(io_err(&staged))?;
        self.moves.push((staged, self.root.join(rel)));
        Ok(f)
    }

    /// Stages a small file with the given bytes.
    pub fn write(&mut self, rel: &str, data: &[u8]) -> Result<(), TreeError> {
        use std::io::Write;
        let path = self.root.join(rel);
        self.create(rel)?.write_all(data).map_err(io_err(&path))
    }

    /// Records a directory that must exist below the root after the commit.
    pub fn ensure_dir(&mut self, rel: &str) {
        self.dirs.push(self.root.join(rel));
    }

    /// Moves every staged file into place, in the order staged.
    pub fn commit(self) -> Result<(), TreeError> {
        for d in &self.dirs {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        for (from, to) in &self.moves {
            if let Some(p) = to.parent() {
                fs::create_dir_all(p).map_err(io_err(p))?;
            }
            fs::rename(from, to).map_err(io_err(to))?;
        }
        Ok(())
    }
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
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "output directory exists and is not empty; choose a new path",
                    ),
                });
            }
        } else if target.exists() {
            return Err(TreeError::Io {
                path: target.display().to_string(),
                source: std::io::Error::new(
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
        let tmp = tempfile::Builder::new()
            .prefix(".pht-out-")
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
    pub fn create(&mut self, rel: &str) -> Result<File, TreeError> {
        let p = self.tmp.path().join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(io_err(&p))
    }

    /// Creates the directory `rel`.
    pub fn ensure_dir(&mut self, rel: &str) -> Result<(), TreeError> {
        let p = self.tmp.path().join(rel);
        fs::create_dir_all(&p).map_err(io_err(&p))
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
