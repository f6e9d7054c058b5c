//! The host's side: the station's key, the Docker engine, loop devices and ext4 for the train's
//! disk, the work area, the audit log.

use super::{Check, Inputs};
use crate::config::StationConfig;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use train_lib::keys::PrivateKey;

/// Reads the station's key; `None` (and a failed line) when it cannot.
pub(super) fn key(cfg: &StationConfig, out: &mut Vec<Check>) -> Option<PrivateKey> {
    let name = "key";
    let Some(path) = &cfg.station.key else {
        out.push(Check::failed(
            name,
            "no [station] key in the configuration",
            "create one with `station keys create --station ID --out /etc/pht/station.key.pem` and name it as [station] key",
        ));
        return None;
    };
    match PrivateKey::from_file_with_password_env(path, cfg.station.key_password_env.as_deref()) {
        Ok(k) => {
            let mode = std::fs::metadata(path)
                .map(|m| m.mode() & 0o777)
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                out.push(Check::failed(
                    name,
                    format!("{} is readable by others (mode {mode:o})", path.display()),
                    format!("chmod 600 {}", path.display()),
                ));
            } else {
                out.push(Check::ok(
                    name,
                    format!(
                        "{}, fingerprint {}",
                        path.display(),
                        k.public().fingerprint()
                    ),
                ));
            }
            Some(k)
        }
        Err(e) => {
            out.push(Check::failed(
                name,
                format!("{} cannot be read: {e}", path.display()),
                "check the path and its permissions (the station reads it as the user it runs as); a key with a password needs [station] key_password_env",
            ));
            None
        }
    }
}

pub(super) async fn engine(out: &mut Vec<Check>) {
    let name = "docker engine";
    let fix = "start it (`systemctl start docker`) or point DOCKER_HOST at it; the station runs as a user that may use its socket";
    match crate::engine::docker::Docker::connect() {
        Err(e) => out.push(Check::failed(name, e.to_string(), fix)),
        Ok(eng) => {
            match tokio::time::timeout(std::time::Duration::from_secs(20), eng.version()).await {
                Ok(Ok((v, api))) => out.push(Check::ok(name, format!("Docker {v}, API {api}"))),
                Ok(Err(e)) => out.push(Check::failed(name, e.to_string(), fix)),
                Err(_) => out.push(Check::failed(name, "no answer within 20 s", fix)),
            }
        }
    }
}

/// Attaches a small ext4 image to a loop device in a private work directory, as a run does
/// for the train's `/opt`, and removes it again.
pub(super) fn disk_bound(inp: &Inputs<'_>, out: &mut Vec<Check>) {
    let name = "disk bound";
    let run_id = format!(
        "doctor-{}",
        hex::encode(train_lib::keys::random_bytes::<4>())
    );
    let work = match crate::workdir::WorkDir::create(&inp.tmp, &run_id) {
        Ok(w) => w,
        Err(e) => {
            out.push(Check::skipped(
                name,
                format!("no work directory could be made: {e}"),
            ));
            return;
        }
    };
    match crate::disk::ScratchDisk::create(work.path(), 8 << 20) {
        Ok(mut d) => {
            let device = d.device().to_string();
            let _ = d.detach();
            out.push(Check::ok(
                name,
                format!("an ext4 image attached to {device} and removed again"),
            ));
        }
        Err(e) => out.push(Check::failed(
            name,
            e.to_string(),
            "the station needs root (for loop devices), /dev/loop-control (`modprobe loop`) and mkfs.ext4 (Debian's e2fsprogs)",
        )),
    }
}

/// Filesystems a run's decrypted train must not be on: the network's (other hosts see them)
/// and FUSE's (another process serves every byte). From statfs(2)'s magic numbers.
const REMOTE: &[(u64, &str)] = &[
    (0x6969, "NFS"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x517B, "SMB"),
    (0x6573_5546, "FUSE"),
    (0x0102_1997, "9P"),
];

pub(super) fn work_area(inp: &Inputs<'_>, out: &mut Vec<Check>) {
    let name = "work area";
    let dir = &inp.tmp;
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            out.push(Check::failed(
                name,
                format!("{}: {e}", dir.display()),
                "create it, or set TMPDIR to a local directory only root may write (or /tmp)",
            ));
            return;
        }
    };
    let mode = meta.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    if mode & 0o002 != 0 && !sticky {
        out.push(Check::failed(
            name,
            format!(
                "{} is writable by every user and not sticky (mode {:o}): another user could replace a run's files",
                dir.display(),
                mode & 0o7777
            ),
            format!("chmod 700 {} (or 1777, as /tmp)", dir.display()),
        ));
        return;
    }
    let st = match rustix::fs::statfs(dir) {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::failed(
                name,
                format!("statfs {}: {e}", dir.display()),
                "set TMPDIR to a local directory",
            ));
            return;
        }
    };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let kind = st.f_type as u64;
    if let Some((_, fs)) = REMOTE.iter().find(|(m, _)| *m == kind) {
        out.push(Check::failed(
            name,
            format!(
                "{} is on {fs}: decrypted trains would leave this host",
                dir.display()
            ),
            "set TMPDIR to a directory on a local disk",
        ));
        return;
    }
    #[allow(clippy::unnecessary_cast)]
    let free = st.f_bavail as u64 * st.f_bsize as u64;
    // A run holds the train's disk (its image file grows to at most disk_mib), the pulled
    // train and its decrypted copy (each at most train_bytes).
    let need = (inp.cfg.limits.disk_mib << 20) + 2 * inp.cfg.limits.train_bytes;
    if free < need {
        out.push(Check::failed(
            name,
            format!(
                "{} has {} MiB free; one run may need {} MiB (limits.disk_mib plus twice limits.train_bytes)",
                dir.display(),
                free >> 20,
                need >> 20
            ),
            "free space there, point TMPDIR at a larger local disk, or lower the limits",
        ));
        return;
    }
    out.push(Check::ok(
        name,
        format!(
            "{}: local, {} MiB free (a run may need {} MiB); runs' directories are made 0700",
            dir.display(),
            free >> 20,
            need >> 20
        ),
    ));
}

pub(super) fn audit(cfg: &StationConfig, key: Option<&PrivateKey>, out: &mut Vec<Check>) {
    let name = "audit log";
    let Some(path) = &cfg.audit.log else {
        out.push(Check::failed(
            name,
            "no [audit] log in the configuration: runs would leave no record, and a train could run twice",
            "set [audit] log = \"/var/lib/pht/audit.jsonl\"",
        ));
        return;
    };
    let Some(key) = key else {
        out.push(Check::skipped(name, "the key could not be read"));
        return;
    };
    match crate::audit::AuditLog::new(path).verify(key.public()) {
        Ok(records) => out.push(Check::ok(
            name,
            format!(
                "{}: {} record(s), signed and chained, intact",
                path.display(),
                records.len()
            ),
        )),
        Err(e) => out.push(Check::failed(
            name,
            e.to_string(),
            "keep the file as evidence and find out who changed it; the station refuses to run trains until its log verifies",
        )),
    }
}
