//! One hardened reader for hostile tar archives: the layers a registry serves and the results
//! archive a train's container hands back. Each archive is read once, as a stream; what every
//! reader must refuse is refused here, and what a caller may accept is its policy:
//!
//! - paths are normalised (`./` and trailing `/` dropped) and refused when absolute, with `..`,
//!   `.` or empty components, backslashes or control characters;
//! - global PAX headers are refused, and PAX records other than path, size, times and ownership
//!   (no `SCHILY.xattr.*`, no `GNU.sparse.*`);
//! - a path seen twice is refused when the policy says so;
//! - entries and bytes are counted against caps *before* an entry's data is read, so a gzip
//!   bomb stops at the cap, not at the disk's end;
//! - entries other than files and directories are described for the caller, never created.
//!
//! [`Dest`] creates what a caller accepts below one private root: directories 0700 and files
//! 0600 from the moment they exist, never following a link (none can exist below the root,
//! since none is ever created there).

use super::error::io_err;
use super::ImageError;
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Caps on what one read may unpack (or, for a scan, decompress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Bytes of file content, summed over the entries' declared sizes.
    pub bytes: u64,
    /// Entries of any kind.
    pub entries: u64,
}

impl Default for ReadLimits {
    /// 16 GiB and a million entries: well above any train seen, far below a full disk.
    fn default() -> Self {
        Self {
            bytes: 16 << 30,
            entries: 1_000_000,
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    /// Anything else, described (`a symbolic link`, `a device file`, …).
    Other(&'static str),
}

/// Whether the reader goes on after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next entry.
    Continue,
    /// Stop reading: the caller has what it needs.
    Stop,
}

/// The rules every entry is held to, beside the path and PAX checks that always apply.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// What the archive is, for messages (a layer digest, `results`).
    pub name: &'a str,
    /// The caps.
    pub limits: ReadLimits,
    /// Refuse a path that appears twice.
    pub unique_paths: bool,
}

/// One entry handed to the caller: its normalised and raw path, what it is, and its data.
pub struct Item<'a> {
    /// Normalised relative path (`opt/pht_train/a.py`).
    pub path: &'a str,
    /// The path as the archive wrote it (for messages).
    pub raw: &'a str,
    /// What it is.
    pub kind: Kind,
    /// Its content (empty for anything but a file).
    pub data: &'a mut dyn Read,
}

/// Counts of what a read went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Entries seen.
    pub entries: u64,
    /// Declared file bytes seen.
    pub bytes: u64,
}

// PAX records the tar crate applies itself, and that say nothing about content the hashes miss.
const PAX_ALLOWED: &[&str] = &[
    "path", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname",
];

/// A refusal of the entry at `path` in archive `name`.
pub fn refused(name: &str, path: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Smuggling {
        layer: name.to_string(),
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Reads `tar`, checking every entry against `rules` before `visit` sees it.
pub fn read(
    tar: impl Read,
    rules: &Rules<'_>,
    mut visit: impl FnMut(Item<'_>) -> Result<Flow, ImageError>,
) -> Result<Counts, ImageError> {
    let name = rules.name;
    let mut archive = tar::Archive::new(tar);
    let mut seen = BTreeSet::new();
    let mut n = Counts::default();
    let entries = archive
        .entries()
        .map_err(|e| refused(name, "", format!("unreadable tar: {e}")))?;
    for entry in entries {
        let mut entry = entry
            .map_err(|e| cancelled_or(e, |e| refused(name, "", format!("unreadable tar: {e}"))))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header_kind = entry.header().entry_type();
        if header_kind.is_pax_global_extensions() {
            return Err(refused(name, &raw, "global PAX header"));
        }
        let path = normalize(&raw).ok_or_else(|| refused(name, &raw, "unsafe path"))?;
        n.entries += 1;
        if n.entries > rules.limits.entries {
            return Err(ImageError::Limit {
                what: name.to_string(),
                detail: format!(
                    "more than {} entries; refused before unpacking the rest",
                    rules.limits.entries
                ),
            });
        }
        let kind = kind_of(header_kind, entry.size());
        if let Kind::File(size) = kind {
            n.bytes = n.bytes.saturating_add(size);
            if n.bytes > rules.limits.bytes {
                return Err(ImageError::Limit {
                    what: name.to_string(),
                    detail: format!(
                        "more than {} bytes of content (at `{raw}`); refused before unpacking it",
                        rules.limits.bytes
                    ),
                });
            }
        }
        if rules.unique_paths && !seen.insert(path.clone()) {
            return Err(refused(name, &raw, "duplicate entry"));
        }
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| refused(name, &raw, e.to_string()))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| refused(name, &raw, e.to_string()))?;
                let key = ext.key().unwrap_or("<non-UTF-8>");
                if !PAX_ALLOWED.contains(&key) {
                    return Err(refused(name, &raw, format!("PAX record `{key}`")));
                }
            }
        }
        let flow = visit(Item {
            path: &path,
            raw: &raw,
            kind,
            data: &mut entry,
        })?;
        if flow == Flow::Stop {
            break;
        }
    }
    Ok(n)
}

fn kind_of(t: tar::EntryType, size: u64) -> Kind {
    use tar::EntryType as T;
    match t {
        T::Directory => Kind::Dir,
        T::Regular | T::Continuous => Kind::File(size),
        T::Symlink => Kind::Other("a symbolic link (Symlink)"),
        T::Link => Kind::Other("a hard link (Link)"),
        T::Char | T::Block => Kind::Other("a device file"),
        T::Fifo => Kind::Other("a FIFO (Fifo)"),
        T::GNUSparse => Kind::Other("a sparse file"),
        _ => Kind::Other("an entry type other than file or directory"),
    }
}

/// An error from the tar stream, unless it is the cancellation a [`CancelRead`] reported.
pub(crate) fn cancelled_or(
    e: io::Error,
    other: impl FnOnce(io::Error) -> ImageError,
) -> ImageError {
    if e.kind() == io::ErrorKind::Interrupted && e.to_string() == CANCELLED {
        ImageError::Cancelled
    } else {
        other(e)
    }
}

const CANCELLED: &str = "pht: cancelled";

/// A reader that fails once `cancelled` says so, so that a blocking unpack ends soon after its
/// job is cancelled instead of running on after the job has cleaned up.
pub struct CancelRead<R, F> {
    inner: R,
    cancelled: F,
}

impl<R: Read, F: Fn() -> bool> CancelRead<R, F> {
    /// Wraps `inner`.
    pub fn new(inner: R, cancelled: F) -> Self {
        Self { inner, cancelled }
    }
}

impl<R: Read, F: Fn() -> bool> Read for CancelRead<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if (self.cancelled)() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, CANCELLED));
        }
        self.inner.read(buf)
    }
}

/// Archive paths are relative; `./` prefixes and trailing slashes are cosmetic. Anything with
/// `..`, empty or `.` components, control characters, a backslash, or an absolute path is
/// refused.
pub fn normalize(p: &str) -> Option<String> {
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

/// Where accepted entries are created: below one private root.
#[derive(Debug)]
pub struct Dest {
    root: PathBuf,
}

impl Dest {
    /// Unpacks below `root`, which must exist and be private.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes `rel` a directory (0700), replacing a file of that name.
    pub fn dir(&self, rel: &str) -> Result<(), ImageError> {
        let p = self.root.join(rel);
        if fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        train_lib::tree::private::create_dir_all(&p).map_err(io_err(&p))
    }

    /// Writes `data` as the file `rel` (0600), replacing whatever was there.
    pub fn file(&self, rel: &str, data: &mut dyn Read) -> Result<u64, ImageError> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            train_lib::tree::private::create_dir_all(parent).map_err(io_err(parent))?;
        }
        self.remove(rel)?;
        let mut out = train_lib::tree::private::create_file(&p).map_err(io_err(&p))?;
        io::copy(data, &mut out).map_err(|e| cancelled_or(e, io_err(&p)))
    }

    /// Removes `rel`, whatever it is; nothing there is fine.
    pub fn remove(&self, rel: &str) -> Result<(), ImageError> {
        let p = self.root.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&p).map_err(io_err(&p)),
            Ok(_) => fs::remove_file(&p).map_err(io_err(&p)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Empties the directory `rel` (an opaque whiteout).
    pub fn clear(&self, rel: &str) -> Result<(), ImageError> {
        let dir = self.root.join(rel);
        match fs::read_dir(&dir) {
            Ok(rd) => {
                for e in rd {
                    let e = e.map_err(io_err(&dir))?;
                    let name = e.file_name();
                    let child = Path::new(rel).join(name);
                    self.remove(&child.to_string_lossy())?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz_bomb(bytes: u64) -> Vec<u8> {
        // A tar holding one file of `bytes` zeros, gzip-compressed: about 1,000 : 1.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        {
            let mut b = tar::Builder::new(&mut gz);
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "opt/pht_results/zeros", io::repeat(0).take(bytes))
                .unwrap();
            b.finish().unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap_before_anything_is_written() {
        // 64 MiB of zeros in 300 KiB; the cap is 1 MiB. (The reader counts an entry's declared
        // size before reading its data, so the ratio does not matter.)
        let bomb = gz_bomb(64 << 20);
        assert!(bomb.len() < 512 << 10, "{} bytes", bomb.len());
        let d = tempfile::tempdir().unwrap();
        let dest = Dest::new(d.path());
        let rules = Rules {
            name: "sha256:bomb",
            limits: ReadLimits {
                bytes: 1 << 20,
                entries: 10,
            },
            unique_paths: true,
        };
        let gz = flate2::read::GzDecoder::new(&bomb[..]);
        let e = read(gz, &rules, |it| {
            dest.file(it.path, it.data)?;
            Ok(Flow::Continue)
        })
        .unwrap_err();
        assert!(
            matches!(&e, ImageError::Limit { detail, .. } if detail.contains("1048576 bytes")),
            "{e}"
        );
        assert!(e.is_rejection());
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            0,
            "nothing written"
        );
    }

    #[test]
    fn entries_are_capped_too() {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..20 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, format!("opt/d{i}/"), io::empty())
                .unwrap();
        }
        let t = b.into_inner().unwrap();
        let rules = Rules {
            name: "results",
            limits: ReadLimits {
                bytes: 1,
                entries: 5,
            },
            unique_paths: true,
        };
        let e = read(&t[..], &rules, |_| Ok(Flow::Continue)).unwrap_err();
        assert!(e.to_string().contains("more than 5 entries"), "{e}");
    }

    #[test]
    fn a_cancelled_read_reports_cancelled() {
        let t = gz_bomb(1 << 20);
        let gz = flate2::read::GzDecoder::new(&t[..]);
        let rules = Rules {
            name: "x",
            limits: ReadLimits::default(),
            unique_paths: true,
        };
        let e = read(CancelRead::new(gz, || true), &rules, |_| Ok(Flow::Continue)).unwrap_err();
        assert!(matches!(e, ImageError::Cancelled), "{e}");
    }
}
