//! A run's private work directory: `$TMPDIR/pht-station-<run id>`, mode 0700 from its creation,
//! the only place outside the container where decrypted bytes ever are. The run holds a lock on
//! it for its whole life, which is how a later station start tells a run that is still going
//! from one whose process died (the kernel drops the lock with the process): only directories
//! nobody holds are swept.
//!
//! The directory is created under a name sweeps ignore, locked, and only then renamed to its
//! final name, so a sweep can never take a new run's directory for a dead one.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// Prefix of work directories in `$TMPDIR`.
pub const PREFIX: &str = "pht-station-";
const NEW_PREFIX: &str = ".pht-station-new-";

/// A locked private work directory, removed on drop.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    lock: Option<File>,
}

impl WorkDir {
    /// Creates and locks `tmp/pht-station-<run_id>`.
    pub fn create(tmp: &Path, run_id: &str) -> Result<Self, std::io::Error> {
        let staging = tmp.join(format!("{NEW_PREFIX}{run_id}"));
        let with = |what: &str| {
            let what = format!("{what} the private work directory {}", staging.display());
            move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        train_lib::tree::private::create_dir(&staging).map_err(with("creating"))?;
        let lock = File::open(&staging)
            .and_then(|f| f.try_lock().map(|()| f).map_err(std::io::Error::from))
            .map_err(with("locking"))?;
        let path = tmp.join(format!("{PREFIX}{run_id}"));
        fs::rename(&staging, &path).map_err(with("renaming"))?;
        Ok(Self {
            path,
            lock: Some(lock),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Removed while still locked, so no sweep touches it half-way.
        let _ = fs::remove_dir_all(&self.path);
        self.lock.take();
    }
}

/// The lock of a work directory whose run is gone, held while it is cleaned up.
#[derive(Debug)]
pub struct Dead {
    _lock: Option<File>,
}

/// Whether the run that owns `path` is gone: its directory is missing, or nobody holds its lock
/// (then the returned guard holds it, so two sweeps never clean one directory at once).
/// `None` while the run is alive.
pub fn dead(path: &Path) -> Option<Dead> {
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Dead { _lock: None }),
        Err(_) => None,
        Ok(f) => match f.try_lock() {
            Ok(()) => Some(Dead { _lock: Some(f) }),
            Err(_) => None,
        },
    }
}

/// Work directories in `tmp` whose runs are gone (and directories left half-created), each
/// with its guard.
pub fn dead_in(tmp: &Path) -> Vec<(PathBuf, Dead)> {
    let Ok(rd) = fs::read_dir(tmp) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with(PREFIX) || name.starts_with(NEW_PREFIX);
        if !ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(d) = dead(&e.path()) {
            out.push((e.path(), d));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_live_run_s_directory_is_private_and_not_dead_and_a_released_one_is() {
        let tmp = tempfile::tempdir().unwrap();
        let w = WorkDir::create(tmp.path(), "r1").unwrap();
        let mode = fs::metadata(w.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(dead(w.path()).is_none(), "alive while its run holds it");
        assert!(dead_in(tmp.path()).is_empty());
        // A run that died: its directory stays, its lock is gone.
        let path = w.path().to_path_buf();
        let mut w = w;
        w.lock.take();
        std::mem::forget(w);
        let found = dead_in(tmp.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, path);
        assert!(dead(&tmp.path().join("pht-station-gone")).is_some());
    }
}
