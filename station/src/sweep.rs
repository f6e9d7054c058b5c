//! What runs of dead station processes left behind, removed when a station starts.
//!
//! A station killed outright (SIGKILL, power loss) leaves its container, the container's `/opt`
//! volume with decrypted data, the loop device under it, and its private work directory, and no
//! decision in its audit log. Every container and volume of a run carries the station id, the
//! host and the run's work directory in its labels; a work directory is locked by its run for as
//! long as the run lives. So at start a station removes, for every run whose work directory is
//! gone or unlocked: its containers, its volumes, its loop devices and its work directory, and
//! appends `interrupted` to the audit log for each `started` record of such a run. Runs still
//! going (in this process or another) hold their locks and are left alone.
//!
//! A sweep takes only the runs of its own work area (`tmp`). Two station processes with one
//! station id and different configurations (a `station watch` beside a hand-run `station run`)
//! each keep their own audit log; had one swept the other's dead run, that run would have been
//! removed with no `interrupted` record in the log that holds its `started`.

use crate::audit::{self, AuditError, AuditLog};
use crate::disk;
use crate::engine::{EngineError, LeftoverKind, TrainEngine};
use crate::workdir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use train_lib::keys::PrivateKey;

/// Why a sweep could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// The engine could not list or remove what was left.
    #[error("removing what earlier runs left: {0}")]
    Engine(#[from] EngineError),
    /// Their runs could not be recorded.
    #[error("recording earlier runs as interrupted: {0}")]
    Audit(#[from] AuditError),
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Containers (Jobs, pods) removed.
    pub containers: usize,
    /// Volumes (claims) removed.
    pub volumes: usize,
    /// Loop devices detached.
    pub loop_devices: usize,
    /// Work directories removed.
    pub workdirs: usize,
    /// Runs recorded as interrupted.
    pub interrupted: usize,
}

impl Swept {
    /// Whether anything was found.
    pub fn any(&self) -> bool {
        *self != Swept::default()
    }
}

/// This host's name (as the station labels its containers with it).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Removes the leftovers of dead runs of `station` on this host; `tmp` is where work
/// directories are made. With an audit log, records their runs as `interrupted`.
pub async fn sweep<E: TrainEngine>(
    engine: &E,
    station: &str,
    tmp: &Path,
    audit: Option<(&AuditLog, &PrivateKey)>,
) -> Result<Swept, SweepError> {
    let mut out = Swept::default();
    // Paths are compared as `area/<name>`: one directory seen through two spellings of the
    // area must be locked once, as a second lock on it would fail and call the run alive.
    let area = canonical(tmp);
    let ours = |dir: &Path| -> Option<PathBuf> {
        let in_area = dir.parent().is_some_and(|p| canonical(p) == area);
        dir.file_name().filter(|_| in_area).map(|n| area.join(n))
    };
    // Dead work directories, each with its lock held while it is cleaned.
    let mut dead: BTreeMap<PathBuf, workdir::Dead> = workdir::dead_in(tmp)
        .into_iter()
        .filter_map(|(p, d)| Some((ours(&p)?, d)))
        .collect();
    let is_dead = |p: &Path, dead: &mut BTreeMap<PathBuf, workdir::Dead>| -> bool {
        if dead.contains_key(p) {
            return true;
        }
        match workdir::dead(p) {
            Some(guard) => {
                dead.insert(p.to_path_buf(), guard);
                true
            }
            None => false,
        }
    };
    let mut leftovers = engine.leftovers(station, &host()).await?;
    // Containers (Jobs, pods) before volumes (claims): storage in use cannot be removed.
    leftovers.sort_by_key(|l| l.kind);
    for l in leftovers {
        let Some(dir) = l.workdir.as_deref().and_then(|w| ours(Path::new(w))) else {
            continue;
        };
        if !is_dead(&dir, &mut dead) {
            continue;
        }
        engine.remove_leftover(&l).await?;
        match l.kind {
            LeftoverKind::Runner => out.containers += 1,
            LeftoverKind::Storage => out.volumes += 1,
        }
    }
    let dirs: Vec<PathBuf> = dead.keys().cloned().collect();
    out.loop_devices = disk::detach_images_in(&dirs);
    if let Some((log, key)) = audit {
        let records = log.verify(key.public())?;
        let gone: Vec<String> = audit::unfinished(&records)
            .into_iter()
            .filter(|r| {
                r.workdir
                    .as_deref()
                    .and_then(|w| ours(Path::new(w)))
                    .is_some_and(|w| is_dead(&w, &mut dead))
            })
            .filter_map(|r| r.run_id.clone())
            .collect();
        if !gone.is_empty() {
            // Checked again under the append lock: another station start may have closed them.
            let appended = log.append_many(key, |now| {
                audit::unfinished(now)
                    .into_iter()
                    .filter(|r| r.run_id.as_ref().is_some_and(|id| gone.contains(id)))
                    .map(|started| {
                        let mut r = audit::record(&started.station, audit::RecordKind::Interrupted);
                        r.run_id = started.run_id.clone();
                        r.train_id = started.train_id.clone();
                        r.identity = started.identity.clone();
                        r.digest_in = started.digest_in.clone();
                        r.reason = Some(
                            "the station process ended during the run (killed or crashed); at the next start its container, volume and work directory were removed and nothing was pushed"
                                .into(),
                        );
                        r
                    })
                    .collect()
            })?;
            out.interrupted = appended.len();
        }
    }
    for (dir, guard) in dead {
        if dir.exists() && std::fs::remove_dir_all(&dir).is_ok() {
            out.workdirs += 1;
        }
        drop(guard);
    }
    Ok(out)
}

/// `p` with symbolic links resolved where it exists, so one area given two ways is one area.
fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine as Fake;
    use crate::engine::{End, Leftover};

    #[tokio::test]
    async fn removes_what_dead_runs_left_and_records_them_and_spares_live_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let logdir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&logdir.path().join("audit.jsonl"));
        let key = PrivateKey::generate(2048).unwrap();
        // A live run (this test holds its directory) and a dead one (its directory unlocked).
        let live = workdir::WorkDir::create(tmp.path(), "live").unwrap();
        let dead_dir = tmp.path().join("pht-station-dead");
        train_lib::tree::private::create_dir(&dead_dir).unwrap();
        std::fs::write(dead_dir.join("plaintext.csv"), b"secret").unwrap();
        for (run, dir) in [("live", live.path()), ("dead", dead_dir.as_path())] {
            let mut r = audit::record("s1", audit::RecordKind::Started);
            r.run_id = Some(run.into());
            r.workdir = Some(dir.display().to_string());
            log.append(&key, r).unwrap();
        }
        let fake = Fake::new(End::Exited(0), vec![]);
        *fake.leftovers.lock().unwrap() = vec![
            Leftover {
                kind: LeftoverKind::Storage,
                id: "vol-dead".into(),
                workdir: Some(dead_dir.display().to_string()),
            },
            Leftover {
                kind: LeftoverKind::Runner,
                id: "ctr-dead".into(),
                workdir: Some(dead_dir.display().to_string()),
            },
            Leftover {
                kind: LeftoverKind::Runner,
                id: "ctr-live".into(),
                workdir: Some(live.path().display().to_string()),
            },
        ];
        let s = sweep(&fake, "s1", tmp.path(), Some((&log, &key)))
            .await
            .unwrap();
        assert_eq!(s.containers, 1);
        assert_eq!(s.volumes, 1);
        assert_eq!(s.workdirs, 1);
        assert_eq!(s.interrupted, 1);
        assert_eq!(
            *fake.removed.lock().unwrap(),
            ["ctr-dead", "vol-dead"],
            "container first"
        );
        assert!(!dead_dir.exists());
        assert!(live.path().exists());
        let records = log.verify(key.public()).unwrap();
        let last = records.last().unwrap();
        assert_eq!(last.decision, audit::RecordKind::Interrupted);
        assert_eq!(last.run_id.as_deref(), Some("dead"));
        assert_eq!(
            audit::unfinished(&records).len(),
            1,
            "the live run stays open"
        );
        // A second sweep finds nothing more.
        *fake.leftovers.lock().unwrap() = vec![];
        let again = sweep(&fake, "s1", tmp.path(), Some((&log, &key)))
            .await
            .unwrap();
        assert!(!again.any(), "{again:?}");
    }

    #[tokio::test]
    async fn a_dead_run_of_another_work_area_is_left_to_the_station_that_owns_it() {
        // Two configurations of one station id on one host: each sweeps only its own `tmp`.
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let logdir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&logdir.path().join("audit.jsonl"));
        let key = PrivateKey::generate(2048).unwrap();
        let dir = theirs.path().join("pht-station-elsewhere");
        train_lib::tree::private::create_dir(&dir).unwrap();
        let mut r = audit::record("s1", audit::RecordKind::Started);
        r.run_id = Some("elsewhere".into());
        r.workdir = Some(dir.display().to_string());
        log.append(&key, r).unwrap();
        let fake = Fake::new(End::Exited(0), vec![]);
        *fake.leftovers.lock().unwrap() = vec![Leftover {
            kind: LeftoverKind::Runner,
            id: "ctr-elsewhere".into(),
            workdir: Some(dir.display().to_string()),
        }];
        let s = sweep(&fake, "s1", ours.path(), Some((&log, &key)))
            .await
            .unwrap();
        assert!(!s.any(), "{s:?}");
        assert!(fake.removed.lock().unwrap().is_empty());
        assert!(dir.exists());
        // Its own station's sweep, with the same area given through a symbolic link, takes it.
        let link = logdir.path().join("area");
        std::os::unix::fs::symlink(theirs.path(), &link).unwrap();
        let s = sweep(&fake, "s1", &link, Some((&log, &key))).await.unwrap();
        assert_eq!(
            (s.containers, s.workdirs, s.interrupted),
            (1, 1, 1),
            "{s:?}"
        );
        assert!(!dir.exists());
    }
}
