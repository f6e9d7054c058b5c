//! `station watch` end to end: the real route service, two registries with notifications (and
//! token auth), Docker, and one watcher daemon per station; creators use `train create
//! --route-service`, `train submit`, `train status --follow` and `train results ID`.

use e2e::route::{wait_for, RouteScene, Setup};
use e2e::watch::{
    creator, fingerprint, follow, left, results, submit, submit_pinned, Watcher, COUNT,
};
use e2e::{bin, ok, Scene};
use std::process::Command;

/// `station queue --json` of the watcher's station.
fn queue(rs: &RouteScene, w: &Watcher) -> serde_json::Value {
    serde_json::from_str(&ok(&mut rs.operator(w, &["queue", "--json"]))).unwrap()
}

/// Waits until `id` is in `w`'s queue with the watcher's inspection of it; returns the entry.
fn queued(rs: &RouteScene, w: &Watcher, id: &str) -> serde_json::Value {
    let mut entry = serde_json::Value::Null;
    wait_for(120, &format!("train {id} in the queue of {}", w.id), || {
        let q = queue(rs, w);
        entry = q
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["train"] == id && !e["inspection"].is_null())
            .cloned()
            .unwrap_or_default();
        !entry.is_null()
    });
    entry
}

#[test]
fn the_demo_route_with_both_formats_on_three_watchers_with_token_auth() {
    let rs = RouteScene::new(Setup {
        token: true,
        ..Setup::default()
    });
    let ws = [
        rs.watcher("st-1", ""),
        rs.watcher("st-2", "approval = \"manual\""),
        rs.watcher("st-3", ""),
    ];
    let w2 = &ws[1];
    let route = ["st-1", "st-2", "st-3"];
    for format in ["native", "legacy"] {
        let id = submit(&rs, format, COUNT, &route);
        let (mut status, status_out) = follow(&rs, &id);
        // st-2's operator reviews it: creator, route, entrypoint and files, then approves.
        let entry = queued(&rs, w2, &id);
        assert_eq!(entry["creator"], "creator");
        assert_eq!(entry["route"], serde_json::json!(route));
        let files = entry["inspection"]["files"].to_string();
        assert!(files.contains("run.sh"), "{entry:#}");
        assert!(
            entry["inspection"]["problems"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{entry:#}"
        );
        let out = ok(&mut rs.operator(w2, &["approve", &id]));
        assert!(out.contains("approved"), "{out}");
        let code = status.wait().unwrap().code();
        let shown = std::fs::read_to_string(&status_out).unwrap();
        assert_eq!(code, Some(0), "{shown}\n{}", rs.log());
        for what in ["delivered", "approved", "running", "finished"] {
            assert!(shown.contains(what), "`{what}` not followed:\n{shown}");
        }
        assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\nst-3,7\n", "{format}");
        let v = rs.train(&id);
        let reports: Vec<_> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        // A normal route shows the creator no refused pushes: a second notification or the
        // station's report of a recorded push is a duplicate, not "an older state".
        let odd: Vec<_> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["kind"] == "push_ignored"
                    && !e["detail"]
                        .as_str()
                        .unwrap()
                        .contains("the service's own write")
            })
            .collect();
        assert!(odd.is_empty(), "{odd:#?}");
        for kind in ["pulled", "running"] {
            assert_eq!(
                reports.iter().filter(|k| *k == kind).count(),
                3,
                "{reports:?}"
            );
        }
    }
    // The mover removed the source tags: under token auth a delete needs the `delete` scope.
    let log = rs.log();
    assert!(!log.contains("could not remove"), "{log}");
    assert!(log.contains(" removed image="), "{log}");
    for w in &ws {
        assert_eq!(left(w, "container"), 0, "containers left at {}", w.id);
        // Every report was taken (a `done` after the registry's notification is no replay).
        assert!(!w.log().contains("refused"), "{}", w.log());
    }
}

#[test]
fn a_rejection_reaches_the_creator_with_its_reason() {
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    let _w1 = rs.watcher("st-1", "");
    let w2 = rs.watcher(
        "st-2",
        "approval = \"manual\"\nauto_approve_creators = [\"someone-else\"]",
    );
    let id = submit(&rs, "native", COUNT, &["st-1", "st-2"]);
    let (mut status, status_out) = follow(&rs, &id);
    queued(&rs, &w2, &id);
    let o = e2e::run(&mut rs.operator(&w2, &["reject", &id]));
    assert_eq!(o.status.code(), Some(1), "a rejection needs a reason");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--reason"));
    ok(&mut rs.operator(
        &w2,
        &["reject", &id, "--reason", "the cohort is closed this week"],
    ));
    let code = status.wait().unwrap().code();
    let shown = std::fs::read_to_string(&status_out).unwrap();
    assert_eq!(code, Some(5), "{shown}");
    assert!(shown.contains("the cohort is closed this week"), "{shown}");
    let o = e2e::run(
        creator(&rs)
            .args(["results", &id, "--key"])
            .arg(rs.scene.key("creator"))
            .arg("--out")
            .arg(rs.scene.path("none")),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("is failed"), "{err}");
}

#[test]
fn a_station_offline_while_a_train_waits_for_it_runs_it_when_back() {
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    let _w1 = rs.watcher("st-1", "");
    let id = submit(&rs, "native", COUNT, &["st-1", "st-2"]);
    // The train waits in st-2's inbox while st-2 has never polled.
    wait_for(120, "the train at st-2", || {
        let v = rs.train(&id);
        v["state"] == "at_station" && v["current_hop"] == 1
    });
    let (_, stations) = rs.call("GET", "/v1/stations", Some("root"), None);
    let st2 = stations
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "st-2")
        .unwrap();
    assert_eq!(st2["liveness"], "never_seen");
    let _w2 = rs.watcher("st-2", "");
    rs.wait_state(&id, "finished", 120);
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n");
}

#[test]
fn a_watcher_killed_mid_run_runs_the_train_once_after_its_restart_and_leaves_nothing() {
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto"), ("st-2", 1, "auto")],
        ..Setup::default()
    });
    let slow = format!("#!/bin/sh\necho started\nsleep 8\n{}", &COUNT[10..]);
    let mut w1 = rs.watcher("st-1", "");
    let _w2 = rs.watcher("st-2", "");
    let id = submit(&rs, "native", &slow, &["st-1", "st-2"]);
    wait_for(120, "the container at st-1", || left(&w1, "container") > 0);
    w1.kill();
    assert_eq!(
        left(&w1, "container"),
        1,
        "SIGKILL leaves the container running"
    );
    w1.start();
    rs.wait_state(&id, "finished", 180);
    assert_eq!(results(&rs, &id), "st-1,7\nst-2,7\n", "st-1 counted once");
    let records = rs.scene.audit_records("st-1.toml");
    let decisions: Vec<&str> = records
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| **d == "pushed").count(),
        1,
        "{decisions:?}"
    );
    assert_eq!(
        decisions.iter().filter(|d| **d == "interrupted").count(),
        1,
        "{decisions:?}"
    );
    assert_eq!(left(&w1, "container"), 0);
    assert_eq!(left(&w1, "volume"), 0);
    let files: Vec<_> = std::fs::read_dir(&w1.tmp).unwrap().collect();
    assert!(files.is_empty(), "left in TMPDIR: {files:?}");
}

#[test]
fn sigterm_stops_the_run_reports_it_interrupted_and_it_runs_after_the_restart() {
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto")],
        ..Setup::default()
    });
    let slow = format!("#!/bin/sh\necho started\nsleep 30\n{}", &COUNT[10..]);
    let mut w1 = rs.watcher("st-1", "");
    let id = submit(&rs, "native", &slow, &["st-1"]);
    wait_for(120, "the container at st-1", || left(&w1, "container") > 0);
    assert_eq!(w1.terminate(), Some(0), "{}", w1.log());
    assert_eq!(left(&w1, "container"), 0, "the run was stopped and removed");
    let v = rs.train(&id);
    let kinds: Vec<_> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert!(kinds.contains(&"interrupted".into()), "{kinds:?}");
    assert_eq!(v["hops"][0]["state"], "delivered", "{v:#}");
    assert_eq!(rs.digest(0, "st-1/outbox", &id), None, "nothing pushed");
    w1.start();
    rs.wait_state(&id, "finished", 180);
    if std::env::var_os("PHT_TEST_SHOW_LOGS").is_some() {
        eprintln!("{}", w1.log());
    }
}

#[test]
fn a_wrong_key_at_the_service_stops_the_watcher_with_what_to_do_and_a_rotation_fixes_it() {
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto")],
        ..Setup::default()
    });
    // st-1's operator configured another key than the one the admin registered.
    let config = rs.watcher_config("st-1", "");
    let text = std::fs::read_to_string(&config).unwrap();
    let real = rs.scene.key("st-1").display().to_string();
    let other = rs.scene.key("builder").display().to_string();
    std::fs::write(&config, text.replace(&real, &other)).unwrap();
    let mut w = rs.watcher_with("st-1", config);
    assert_eq!(w.exit_code(60), Some(1));
    let log = w.log();
    let (registered, mine) = (
        fingerprint(&rs.scene, "st-1"),
        fingerprint(&rs.scene, "builder"),
    );
    assert!(
        log.contains(&format!("holds key {registered} for station st-1"))
            && log.contains(&format!("is {mine}"))
            && log.contains("station keys rotate --reuse"),
        "{log}"
    );
    // The operator proposes the configured key; the admin accepts it by fingerprint.
    let out = ok(&mut rs.operator(&w, &["keys", "rotate", "--reuse"]));
    assert!(
        out.contains(&format!(
            "route-service station accept-key st-1 --fingerprint {mine}"
        )),
        "{out}"
    );
    let o = e2e::run(Command::new(bin("route-service")).args([
        "station",
        "accept-key",
        "st-1",
        "--fingerprint",
        &registered,
        "--database",
        &rs.database,
    ]));
    assert!(
        !o.status.success(),
        "a fingerprint other than the proposed one is refused"
    );
    rs.admin(&["station", "accept-key", "st-1", "--fingerprint", &mine]);
    w.start();
    w.wait_log(60, "watching");
    // A creator who pinned the old key is stopped before anything is built…
    let err = submit_pinned(&rs, "native", COUNT, &[("st-1", registered.clone())]).unwrap_err();
    assert!(
        err.contains(&format!(
            "holds key {mine} for station st-1, but you pinned {registered}"
        )),
        "{err}"
    );
    // … and one who pins the new key gets a train that runs.
    let id = submit_pinned(&rs, "native", COUNT, &[("st-1", mine.clone())]).unwrap();
    rs.wait_state(&id, "finished", 120);
}

#[test]
fn a_rotated_key_is_taken_into_use_once_accepted_and_trains_built_for_the_old_key_say_why_they_fail(
) {
    let mut rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto")],
        ..Setup::default()
    });
    let w = rs.watcher("st-1", "approval = \"manual\"");
    let old = fingerprint(&rs.scene, "st-1");
    // A train built for the old key waits for approval while the key changes.
    let t_old = submit(&rs, "native", COUNT, &["st-1"]);
    queued(&rs, &w, &t_old);
    let out = ok(&mut rs.operator(&w, &["keys", "rotate"]));
    let next = rs.scene.path("keys/st-1.key.pem.next");
    assert!(next.exists(), "{out}");
    let new = out
        .lines()
        .find_map(|l| l.strip_prefix("proposed "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_ne!(new, old);
    rs.admin(&["station", "accept-key", "st-1", "--fingerprint", &new]);
    let mut w = w;
    w.wait_log(60, "used from now on");
    assert_eq!(fingerprint(&rs.scene, "st-1"), new, "KEY.next became KEY");
    assert!(rs.scene.path("keys/st-1.key.pem.previous").exists());
    // The audit log was handed over: it verifies with the new key.
    ok(&mut rs.operator(&w, &["audit", "verify"]));
    ok(&mut rs.operator(&w, &["approve", &t_old]));
    let v = rs.wait_state(&t_old, "failed", 120);
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("rotated its key") && reason.contains(&new),
        "{v:#}"
    );
    // A train built for the new key runs.
    let t_new = submit(&rs, "native", COUNT, &["st-1"]);
    queued(&rs, &w, &t_new);
    ok(&mut rs.operator(&w, &["approve", &t_new]));
    rs.wait_state(&t_new, "finished", 120);
}

#[test]
fn trust_commands_write_the_pins_pre_run_enforces() {
    let scene = Scene::new(&["st-1"]);
    let trust = scene.path("trust.json");
    let cfg = scene.config(
        "trust-station.toml",
        &format!("[policy]\ntrust = \"{}\"\n", trust.display()),
    );
    let station = |args: &[&str]| {
        e2e::run(
            Command::new(bin("station"))
                .args(args)
                .arg("--config")
                .arg(&cfg),
        )
    };
    let pubkey = scene.path("keys/creator.pub.pem");
    let o = station(&[
        "trust",
        "add",
        "creator",
        "creator",
        pubkey.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fp = fingerprint(&scene, "builder");
    assert!(station(&["trust", "add", "builder", "ci", &fp])
        .status
        .success());
    let o = station(&["trust", "add", "admin", "x", &fp]);
    assert_eq!(o.status.code(), Some(2), "an unknown role is a usage error");
    let o = station(&["trust", "add", "station", "st-9", "sha256:short"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not a key fingerprint")
    );
    let list = String::from_utf8_lossy(&station(&["trust", "list"]).stdout).into_owned();
    assert!(list.contains("creator") && list.contains(&fp), "{list}");
    // What the commands wrote is what pre-run reads. A builder is pinned and this train
    // carries no builder countersignature: refused.
    let t = scene.create("native", COUNT);
    let verify = || {
        e2e::run(
            Command::new(bin("train"))
                .arg("verify")
                .arg(&t)
                .arg("--trust")
                .arg(&trust),
        )
    };
    assert!(
        !verify().status.success(),
        "a pinned builder that did not sign"
    );
    assert!(station(&["trust", "remove", "builder", "ci"])
        .status
        .success());
    let o = verify();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The creator pinned to another key: refused.
    assert!(station(&["trust", "add", "creator", "creator", &fp])
        .status
        .success());
    assert!(
        !verify().status.success(),
        "a creator key other than the pinned one"
    );
    let o = station(&["trust", "remove", "builder", "ci"]);
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("no builder `ci` is pinned")
    );
}

#[test]
fn concurrency_two_runs_two_trains_at_once() {
    let rs = RouteScene::new(Setup {
        stations: &[("st-1", 0, "auto")],
        ..Setup::default()
    });
    let w = rs.watcher("st-1", "concurrency = 2");
    let slow = format!("#!/bin/sh\nsleep 6\n{}", &COUNT[10..]);
    let a = submit(&rs, "native", &slow, &["st-1"]);
    let b = submit(&rs, "native", &slow, &["st-1"]);
    wait_for(120, "two containers at st-1 at once", || {
        left(&w, "container") == 2
    });
    rs.wait_state(&a, "finished", 120);
    rs.wait_state(&b, "finished", 120);
    assert_eq!(left(&w, "container"), 0);
}

/// Issue 19, hole 3: `station watch` sent its API key to whatever host an inbox item named.
/// An item on a registry the station's configuration does not name is refused and reported;
/// nothing is pulled from there.
#[test]
fn an_inbox_item_on_a_registry_the_station_did_not_name_is_refused_and_reported() {
    let rs = RouteScene::new(Setup {
        token: true,
        ..Setup::default()
    });
    // st-1's inbox is on registry A; this configuration names registry B only (as if a
    // hostile route service had named a host of its own).
    let cfg = rs.watcher_config("st-1", "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let a = rs.regs[0].addr.clone();
    let only_b = text.replace(&format!("\"{a}\", "), "");
    assert_ne!(text, only_b);
    std::fs::write(&cfg, only_b).unwrap();
    let _w = rs.watcher_with("st-1", cfg);
    let t = submit(&rs, "native", COUNT, &["st-1"]);
    let v = rs.wait_state(&t, "failed", 120);
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&a) && reason.contains("not one of this station's registries"),
        "{v:#}"
    );
}
