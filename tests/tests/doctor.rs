//! `station doctor` against the real route service (token auth), registry, Docker engine and
//! loop devices: all `ok` and exit 0 for a station set up right; then each precondition
//! broken on its own, and the line that names it, with what to do, and a non-zero exit.

use e2e::bin;
use e2e::route::{RouteScene, Setup};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `station doctor --config cfg` with TMPDIR `tmp` and `env`; (success, stdout).
fn doctor(cfg: &Path, tmp: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(bin("station"));
    c.args(["doctor", "--config"]).arg(cfg).env("TMPDIR", tmp);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = e2e::run(&mut c);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    (o.status.success(), out)
}

/// The report's line for `name`, which must start with `mark`.
fn line<'a>(out: &'a str, mark: &str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{mark:<5} {name} ")))
        .unwrap_or_else(|| panic!("no `{mark} {name}` line in:\n{out}"))
}

#[test]
fn doctor_passes_a_sound_station_and_names_each_broken_precondition_with_what_to_do() {
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        token: true,
        ..Setup::default()
    });
    // Limits the test's work area can hold whatever the host's free space: with the defaults
    // (16 GiB disk bound, 16 GiB of layers) one run may need 48 GiB, and a CI host once had 44.
    let cfg = rs.watcher_config("st-1", "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[limits]\ndisk_mib = 256\ntrain_bytes = 268435456\n");
    std::fs::write(&cfg, text).unwrap();
    let tmp = rs.scene.path("doctor-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();

    let (ok, out) = doctor(&cfg, &tmp, &[]);
    assert!(ok, "a sound station passes:\n{out}");
    eprintln!("{out}");
    for name in [
        "configuration",
        "key",
        "route service",
        "key at the service",
        "registry",
        "clock",
        "docker engine",
        "disk bound",
        "work area",
        "audit log",
    ] {
        line(&out, "ok", name);
    }
    assert!(line(&out, "ok", "registry").contains("written"), "{out}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the doctor leaves nothing in the work area"
    );

    let base = std::fs::read_to_string(&cfg).unwrap();
    let variant = |name: &str, from: &str, to: &str| {
        assert!(base.contains(from), "{from} in {base}");
        let p = rs.scene.path(name);
        std::fs::write(&p, base.replace(from, to)).unwrap();
        p
    };
    let fails = |cfg: &Path, tmp: &Path, env: &[(&str, &str)], name: &str, needle: &str| {
        let (ok, out) = doctor(cfg, tmp, env);
        assert!(!ok, "exit 0 although {name} is broken:\n{out}");
        let l = line(&out, "FAIL", name);
        assert!(l.contains(needle), "`{needle}` in `{l}`:\n{out}");
        // Below a failure (and its continuation lines), what to do.
        let fix = out
            .lines()
            .skip_while(|x| *x != l)
            .skip(1)
            .take_while(|x| x.starts_with(' '))
            .any(|x| x.trim_start().starts_with('→'));
        assert!(fix, "what to do after `{l}`:\n{out}");
        out
    };

    // The configuration does not load.
    let bad = rs.scene.path("doctor-bad.toml");
    std::fs::write(&bad, "[station\nid = 1\n").unwrap();
    fails(&bad, &tmp, &[], "configuration", "");

    // The key: missing; readable by others.
    let key = rs.scene.key("st-1").display().to_string();
    let c = variant("doctor-nokey.toml", &key, "/nonexistent/st-1.pem");
    let out = fails(&c, &tmp, &[], "key", "/nonexistent/st-1.pem");
    line(&out, "skip", "key at the service");
    let open = rs.scene.path("st-1-open.pem");
    std::fs::copy(&key, &open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = variant("doctor-openkey.toml", &key, open.to_str().unwrap());
    fails(&c, &tmp, &[], "key", "readable by others");

    // Another station's key: the service holds a different one.
    let other = rs.scene.key("st-2").display().to_string();
    let c = variant("doctor-otherkey.toml", &key, &other);
    fails(&c, &tmp, &[], "key at the service", "none could run here");

    // A wrong API key; a service that is not there.
    let wrong = rs.scene.path("wrong.api-key");
    std::fs::write(&wrong, "pht_not-the-key-of-st-1").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_file = rs.scene.path("st-1.api-key").display().to_string();
    let c = variant("doctor-wrongkey.toml", &key_file, wrong.to_str().unwrap());
    let out = fails(&c, &tmp, &[], "route service", "401");
    assert!(out.contains("not this station's"), "{out}");
    line(&out, "skip", "registry");
    let c = variant("doctor-noservice.toml", &rs.url, "http://127.0.0.1:1");
    fails(&c, &tmp, &[], "route service", "cannot reach");

    // The station's registry not among those it may send credentials to.
    let a = rs.regs[0].addr.clone();
    let c = variant(
        "doctor-registries.toml",
        &format!("registries = [\"{a}\""),
        "registries = [\"127.0.0.1:1\"",
    );
    fails(&c, &tmp, &[], "registry", "not in [watch] registries");

    // No engine; no mkfs.ext4 or losetup (an empty PATH).
    fails(
        &cfg,
        &tmp,
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        "docker engine",
        "",
    );
    fails(
        &cfg,
        &tmp,
        &[("PATH", "/nonexistent")],
        "disk bound",
        "mkfs.ext4",
    );

    // A work area everyone may write; one too small for a run.
    let open_tmp = rs.scene.path("doctor-open-tmp");
    std::fs::create_dir_all(&open_tmp).unwrap();
    std::fs::set_permissions(&open_tmp, std::fs::Permissions::from_mode(0o777)).unwrap();
    fails(&cfg, &open_tmp, &[], "work area", "writable by every user");
    let small = rs.scene.path("doctor-small-tmp");
    std::fs::create_dir_all(&small).unwrap();
    e2e::ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
            .arg(&small),
    );
    let (_, out) = doctor(&cfg, &small, &[]);
    let _ = Command::new("umount").arg(&small).status();
    let l = line(&out, "FAIL", "work area");
    assert!(l.contains("MiB free"), "{l}");

    // An audit log someone edited.
    let log = rs.scene.audit_log("st-1.toml");
    std::fs::write(&log, "{\"seq\":0,\"decision\":\"pushed\"}\n").unwrap();
    fails(&cfg, &tmp, &[], "audit log", "");
    std::fs::remove_file(&log).unwrap();

    // The registry down.
    rs.regs[0].stop();
    fails(&cfg, &tmp, &[], "registry", "reading the inbox");
}
