//! Faults of the parts around the system, on a running route with `station watch` daemons: a
//! registry answering 500 at random behind a proxy, PostgreSQL restarted mid-route, the Docker
//! engine restarted mid-run, a station's disk full. Each train finishes or fails with a
//! reason; none is lost, and no station pushes a train twice.
//!
//! These restart machine-wide services (PostgreSQL's test cluster, the Docker engine), so they
//! run one at a time (a lock), and in a test binary of their own (cargo runs test binaries one
//! after the other): no other test sees the restarts.

use e2e::ok;
use e2e::route::{wait_for, RouteScene, Setup};
use e2e::watch::{left, results, submit, Watcher, COUNT};
use serde_json::Value;
use std::process::Command;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// `COUNT` after a pause, so that a fault can be made while the container runs.
fn slow(secs: u32) -> String {
    format!(
        "#!/bin/sh\necho started\nsleep {secs}\n{}",
        COUNT.strip_prefix("#!/bin/sh\n").unwrap()
    )
}

/// `pushed` records of `station`'s audit log for train `id`.
fn pushes(rs: &RouteScene, station: &str, id: &str) -> usize {
    rs.scene
        .audit_records(&format!("{station}.toml"))
        .iter()
        .filter(|r| r["decision"] == "pushed" && r["train_id"] == id)
        .count()
}

fn states(v: &Value) -> usize {
    v["states"].as_array().map_or(0, Vec::len)
}

#[test]
fn registries_answering_500_at_random_delay_the_train_but_lose_or_repeat_no_stop() {
    let _one = serial();
    let rs = RouteScene::new(Setup {
        flaky: true,
        ..Setup::default()
    });
    let route = ["st-1", "st-2", "st-3"];
    let _ws: Vec<Watcher> = route
        .iter()
        .map(|s| rs.watcher(s, "max_attempts = 40\n"))
        .collect();
    let id = submit(&rs, "native", COUNT, &route);
    // From here on every party's registry requests fail at random: the service's moves, the
    // watchers' pulls and pushes, the engine's image pulls.
    for p in &rs.proxies {
        p.fail_one_in(40);
    }
    let v = rs.wait_state(&id, "finished", 600);
    for p in &rs.proxies {
        p.fail_one_in(0);
    }
    let (injected, passed): (u64, u64) = rs
        .proxies
        .iter()
        .map(|p| p.counts())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    eprintln!(
        "faults injected: {injected} of {} requests",
        injected + passed
    );
    assert!(
        injected > 0,
        "no fault was injected: the test proved nothing"
    );
    assert_eq!(states(&v), 4, "one state per stop: {v:#}");
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\nst-3,7\n");
    for s in route {
        assert_eq!(pushes(&rs, s, &id), 1, "{s} pushed train {id} once");
    }
}

/// Restarts the PostgreSQL cluster behind `PHT_TEST_POSTGRES_URL` (scripts/postgres.sh).
fn restart_postgres() {
    let port = std::env::var("PHT_TEST_POSTGRES_URL")
        .unwrap()
        .rsplit_once(':')
        .and_then(|(_, p)| p.split('/').next().map(str::to_string))
        .unwrap();
    let clusters = ok(Command::new("pg_lsclusters").arg("-h"));
    let (version, name) = clusters
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&port.as_str()))
        .map(|f| (f[0].to_string(), f[1].to_string()))
        .expect("the test cluster in pg_lsclusters");
    ok(Command::new("pg_ctlcluster").args([&version, &name, "restart", "-m", "fast"]));
}

#[test]
fn postgresql_restarted_twice_mid_route_loses_and_repeats_nothing() {
    let _one = serial();
    let pg = std::env::var("PHT_TEST_POSTGRES_URL")
        .expect("PHT_TEST_POSTGRES_URL (scripts/postgres.sh; the README's test command sets it)");
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        postgres: Some(pg),
        ..Setup::default()
    });
    let w1 = rs.watcher("st-1", "");
    let w2 = rs.watcher("st-2", "");
    let id = submit(&rs, "native", &slow(6), &["st-1", "st-2"]);
    // While st-1's container runs (its push and report come after the restart), and again
    // while st-2's does.
    wait_for(120, "the container at st-1", || left(&w1, "container") > 0);
    restart_postgres();
    wait_for(180, "the container at st-2", || left(&w2, "container") > 0);
    restart_postgres();
    let v = rs.wait_state(&id, "finished", 240);
    assert_eq!(states(&v), 3, "one state per stop: {v:#}");
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n");
    assert_eq!((pushes(&rs, "st-1", &id), pushes(&rs, "st-2", &id)), (1, 1));
}

/// Stops the Docker engine scripts/services.sh started (SIGTERM: its containers are stopped
/// with it), leaves it down for `down` and starts it again with the script.
fn restart_docker(down: std::time::Duration) {
    let state =
        std::env::var("PHT_SERVICES_DIR").unwrap_or_else(|_| "/var/lib/pht-services".into());
    let pid = std::fs::read_to_string(format!("{state}/dockerd.pid"))
        .expect("dockerd.pid: the engine scripts/services.sh started");
    let pid = pid.trim().to_string();
    ok(Command::new("kill").args(["-TERM", &pid]));
    wait_for(60, "dockerd to stop", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    std::thread::sleep(down);
    let o = Command::new("bash")
        .arg(e2e::root().join("scripts/services.sh"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/services.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_docker_engine_restarted_mid_run_runs_the_train_again_and_once() {
    let _one = serial();
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    let w1 = rs.watcher("st-1", "");
    let _w2 = rs.watcher("st-2", "");
    let id = submit(&rs, "native", &slow(10), &["st-1", "st-2"]);
    wait_for(120, "the container at st-1", || left(&w1, "container") > 0);
    // Down for longer than the watcher's three attempts at five-second resyncs take: an
    // engine that cannot be reached must not use up the train's attempts.
    restart_docker(std::time::Duration::from_secs(25));
    let v = rs.wait_state(&id, "finished", 300);
    assert_eq!(states(&v), 3, "one state per stop: {v:#}");
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n", "st-1 counted once");
    assert_eq!(pushes(&rs, "st-1", &id), 1);
    let records = rs.scene.audit_records("st-1.toml");
    assert!(
        records.iter().any(|r| r["train_id"] == id
            && r["decision"] != "pushed"
            && r["decision"] != "started"),
        "the run the restart broke is on record: {records:#?}"
    );
    assert_eq!(left(&w1, "container"), 0);
    assert_eq!(left(&w1, "volume"), 0);
}

/// A tmpfs of `mib` MiB at `dir`, unmounted when dropped.
struct Small(std::path::PathBuf);

impl Small {
    fn mount(dir: std::path::PathBuf, mib: u32) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        ok(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&dir));
        Self(dir)
    }
}

impl Drop for Small {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_station_disk_fails_the_run_with_why_and_the_train_runs_once_when_there_is_room() {
    let _one = serial();
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto")],
        ..Setup::default()
    });
    // The station's work area (its TMPDIR) on a small disk, filled to the last byte.
    let small = Small::mount(rs.scene.path("tmp-st-1"), 16);
    let filler = small.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let mb = vec![0u8; 1 << 20];
        while f.write_all(&mb).is_ok() {}
        let _ = f.write_all(&[0u8; 4096]);
        while f.write_all(&[0u8]).is_ok() {}
    }
    let mut w1 = rs.watcher("st-1", "max_attempts = 10\n");
    let id = submit(&rs, "native", COUNT, &["st-1"]);
    w1.wait_log(120, "No space left on device");
    assert_eq!(pushes(&rs, "st-1", &id), 0);
    let v = rs.train(&id);
    assert_ne!(
        v["state"], "failed",
        "a full disk is the station's trouble, retried: {v:#}"
    );
    // The operator makes room; the next attempt runs it.
    std::fs::remove_file(&filler).unwrap();
    let v = rs.wait_state(&id, "finished", 180);
    assert_eq!(states(&v), 2, "{v:#}");
    assert_eq!(results(&rs, &id), "st-1,7\n");
    assert_eq!(pushes(&rs, "st-1", &id), 1);
    assert_eq!(left(&w1, "container"), 0);
    assert_eq!(left(&w1, "volume"), 0);
    let files: Vec<_> = std::fs::read_dir(&small.0).unwrap().collect();
    assert!(files.is_empty(), "left on the small disk: {files:?}");
    drop(w1);
}
