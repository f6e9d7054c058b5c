//! The train's `/opt`: a filesystem of fixed size, so a train cannot fill the host's disk.
//!
//! Docker's volume size option works only on some storage drivers (overlay2 on XFS with project
//! quotas), and watching a volume from outside lets a fast writer overshoot. What every engine
//! on Linux enforces is the size of a filesystem: the station makes a sparse file of
//! `limits.disk_mib` in its private work directory, formats it ext4 (no journal, no reserved
//! blocks: about 16 ms for 16 GiB, and only metadata is written), attaches it to a loop device,
//! and has the engine mount that device as the container's `/opt` volume. A train that writes
//! past it gets ENOSPC; the host's disk grows by at most the file's size. This needs root (for
//! the loop device) and an engine on this host, which is how a station runs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the train's disk could not be made, read or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// A file could not be created or sized.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A tool (mkfs.ext4, losetup, dumpe2fs) could not be run or failed.
    #[error("{what}: {detail}")]
    Tool {
        /// What was being done.
        what: String,
        /// The tool's complaint.
        detail: String,
    },
}

type Result<T, E = DiskError> = std::result::Result<T, E>;

/// Name of the filesystem image in a run's work directory.
pub const IMAGE: &str = "opt.ext4";

/// A filesystem image attached to a loop device; detached on drop.
#[derive(Debug)]
pub struct ScratchDisk {
    image: PathBuf,
    device: String,
    attached: bool,
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let tool = |detail: String| DiskError::Tool {
        what: what.to_string(),
        detail,
    };
    let out = cmd
        .output()
        .map_err(|e| tool(format!("cannot run {:?}: {e}", cmd.get_program())))?;
    if !out.status.success() {
        return Err(tool(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl ScratchDisk {
    /// Makes a `bytes`-sized ext4 image in `workdir` and attaches it to a loop device.
    pub fn create(workdir: &Path, bytes: u64) -> Result<Self> {
        let image = workdir.join(IMAGE);
        let io = |source| DiskError::Io {
            what: format!("creating the train's disk {}", image.display()),
            source,
        };
        let f = train_lib::tree::private::create_file(&image).map_err(io)?;
        f.set_len(bytes).map_err(io)?;
        drop(f);
        run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
                .args(["-E", "root_owner=0:0,lazy_itable_init=1,nodiscard"])
                .arg(&image),
            "formatting the train's disk (limits.disk_mib)",
        )?;
        let device = run(
            Command::new("losetup").args(["--find", "--show"]).arg(&image),
            "attaching the train's disk (limits.disk_mib) to a loop device; the station needs root on the engine's host",
        )?;
        if !device.starts_with("/dev/loop") {
            return Err(DiskError::Tool {
                what: "attaching the train's disk".into(),
                detail: format!("losetup answered `{device}`, not a loop device"),
            });
        }
        Ok(Self {
            image,
            device,
            attached: true,
        })
    }

    /// The loop device (`/dev/loopN`).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Whether the train filled the filesystem, read from the superblock once the engine has
    /// unmounted it: fewer free blocks than ext4 keeps back for itself (2 % of the blocks, at
    /// most 4,096) plus 2 MiB. (A 32 MiB disk that `dd` filled in 1 MiB writes until ENOSPC
    /// showed 1.2 MiB free in the superblock.) A train that wrote past its disk got ENOSPC on
    /// the way; if it exited 0 all the same, its results are cut short.
    pub fn full(&self) -> Result<bool> {
        let text = run(
            Command::new("dumpe2fs").arg("-h").arg(&self.image),
            "reading the train's disk",
        )?;
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        let (Some(free), Some(block), Some(count)) = (
            field("Free blocks:"),
            field("Block size:"),
            field("Block count:"),
        ) else {
            return Err(DiskError::Tool {
                what: "reading the train's disk".into(),
                detail: format!(
                    "dumpe2fs printed no block counts for {}",
                    self.image.display()
                ),
            });
        };
        let kept = (count / 50).min(4096);
        Ok(free < kept + (2 << 20) / block)
    }

    /// Bytes of the host's disk the image holds (it is sparse: what was written, plus
    /// metadata), at most its size.
    pub fn host_bytes(&self) -> u64 {
        std::fs::metadata(&self.image).map_or(0, |m| m.blocks() * 512)
    }

    /// Detaches the loop device (the engine must have unmounted it: volume removed).
    pub fn detach(&mut self) -> Result<()> {
        if self.attached {
            run(
                Command::new("losetup").arg("-d").arg(&self.device),
                "detaching the train's disk",
            )?;
            self.attached = false;
        }
        Ok(())
    }
}

impl Drop for ScratchDisk {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

/// Detaches loop devices whose image is in one of `dirs` (work directories of dead runs).
pub fn detach_images_in(dirs: &[PathBuf]) -> usize {
    let Ok(list) = run(
        Command::new("losetup").args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"]),
        "listing loop devices",
    ) else {
        return 0;
    };
    let mut n = 0;
    for line in list.lines() {
        let Some((dev, file)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let file = file.trim().trim_end_matches(" (deleted)");
        if dirs.iter().any(|d| Path::new(file) == d.join(IMAGE))
            && run(Command::new("losetup").arg("-d").arg(dev), "detaching").is_ok()
        {
            n += 1;
        }
    }
    n
}
