//! Files and directories that only their owner can open, from the moment they exist: a file is
//! created 0600 and a directory 0700 by the call that makes it, never chmod-ed after (another
//! local user read a station's results in the window a later chmod leaves). Files are created
//! new, without following a symbolic link at the last component.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates the new file `path` (0600, for writing); fails if anything exists there.
pub fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens `path` for appending, creating it 0600 if it does not exist; never through a symbolic
/// link at the last component (an audit log).
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens `path` for writing without truncating it, creating it 0600 if it does not exist, never
/// through a symbolic link at the last component (a lock file).
pub fn open_lock(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates the new directory `path` (0700); fails if anything exists there.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Creates `path` and any missing parents, each 0700; existing directories are left as they are.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_are_private_whatever_the_umask_allows() {
        let d = tempfile::tempdir().unwrap();
        create_dir_all(&d.path().join("a/b")).unwrap();
        create_dir(&d.path().join("c")).unwrap();
        create_file(&d.path().join("a/b/f")).unwrap();
        for (p, want) in [("a", 0o700), ("a/b", 0o700), ("c", 0o700), ("a/b/f", 0o600)] {
            let mode = std::fs::metadata(d.path().join(p))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, want, "{p}");
        }
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("l")).unwrap();
        assert!(create_file(&d.path().join("l")).is_err());
        assert!(create_file(&d.path().join("a/b/f")).is_err());
    }
}
