//! End to end, against the Docker engine and the two registries of `scripts/services.sh`:
//! trains built on the offline master image travel three stations in both formats, one hop
//! crossing to the second registry; failures push nothing; a hostile train finds no way out.

use e2e::*;
use std::process::Command;

/// Counts the rows of the station's data and appends `station,rows` to the shared results.
const COUNT: &str = "#!/bin/sh\nset -e\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

fn travel(format: &str) {
    let s = Scene::new(&["st-1", "st-2", "st-3"]);
    let train = s.create(format, COUNT);
    let (a, b) = (registry('A'), registry('B'));
    let repo = repo(&format!("travel-{format}"));
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    // Legacy trains sign no master: a station runs them only on masters its policy names.
    let cfg = |id: &str| {
        s.config(&format!("{id}.toml"), &master_policy())
            .to_str()
            .unwrap()
            .to_string()
    };

    // Stop 1: default push target is the same repository tagged with the next station.
    let o = s.station("st-1", &first, &["--json", "--config", &cfg("st-1")]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["decision"], "pushed");
    assert_eq!(summary["exit_code"], 0);
    assert!(exists(&a, &repo, "st-2"));

    // Stop 2 pushes across to registry B.
    let second = format!("{a}/{repo}:st-2");
    let o = s.station(
        "st-2",
        &second,
        &[
            "--push",
            &format!("{b}/{repo}:st-3"),
            "--config",
            &cfg("st-2"),
        ],
    );
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    assert!(exists(&b, &repo, "st-3"));

    // Stop 3 on registry B; after the last stop the tag is `done`.
    let third = format!("{b}/{repo}:st-3");
    let o = s.station("st-3", &third, &["--config", &cfg("st-3")]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    assert!(exists(&b, &repo, "done"));

    let results = s.results(&format!("{b}/{repo}:done"));
    assert_eq!(
        results,
        vec![(
            "counts.csv".to_string(),
            "st-1,7\nst-2,7\nst-3,7\n".to_string()
        )]
    );
    // The final image still descends from the master, layer for layer.
    let v = ok(Command::new(bin("train")).args([
        "verify",
        &format!("{b}/{repo}:done"),
        "--master",
        master(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(leftover_containers(&repo), 0);
}

#[test]
fn native_train_travels_three_stations_across_two_registries() {
    travel("native");
}

#[test]
fn legacy_train_travels_three_stations_across_two_registries() {
    travel("legacy");
}

fn failing(script: &str, config: Option<&str>, expect_code: i32, expect: &str) {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create("native", script);
    let a = registry('A');
    let repo = repo("fail");
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    let mut extra = vec![];
    let cfg_path = s.path("station.toml");
    let audit = s.path("audit.jsonl");
    let cfg = format!(
        "[audit]\nlog = \"{}\"\n{}",
        audit.display(),
        config.unwrap_or("")
    );
    std::fs::write(&cfg_path, cfg).unwrap();
    extra.push("--config");
    extra.push(cfg_path.to_str().unwrap());
    let o = s.station("st-1", &first, &extra);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, expect_code, "{err}");
    assert!(err.contains(expect), "stderr lacks `{expect}`:\n{err}");
    assert!(!exists(&a, &repo, "st-2"), "a failed run pushed an image");
    assert_eq!(leftover_containers(&repo), 0);
    assert_eq!(
        s.tmp_leftovers(),
        Vec::<String>::new(),
        "decrypted bytes left behind"
    );
    // The decision is in the audit log, which verifies.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains(if expect_code == 4 {
            "train-failed"
        } else {
            "rejected"
        }),
        "{log}"
    );
    ok(Command::new(bin("station"))
        .args(["audit", "verify"])
        .arg(&audit)
        .arg("--key")
        .arg(s.key("st-1")));
}

#[test]
fn a_train_that_exits_non_zero_pushes_nothing() {
    failing(
        "#!/bin/sh\necho partial > /opt/pht_results/x\nexit 3\n",
        None,
        4,
        "exited with code 3",
    );
}

#[test]
fn a_train_that_overruns_its_time_is_killed_and_pushes_nothing() {
    failing(
        "#!/bin/sh\nsleep 60\n",
        Some("[limits]\ntimeout_secs = 2\n"),
        4,
        "wall-clock limit of 2 s",
    );
}

#[test]
fn a_train_that_leaves_a_symlink_in_its_results_pushes_nothing() {
    failing(
        "#!/bin/sh\nln -s /etc/passwd /opt/pht_results/leak\n",
        None,
        4,
        "may leave only files and directories",
    );
}

#[test]
fn a_master_outside_the_policy_is_rejected() {
    failing(
        "#!/bin/sh\ntrue\n",
        Some("[policy]\nallowed_masters = [\"127.0.0.1:9/elsewhere/\"]\n"),
        3,
        "not allowed by this station's policy",
    );
}

#[test]
fn a_creator_outside_the_policy_is_rejected() {
    failing(
        "#!/bin/sh\ntrue\n",
        Some("[policy]\nallowed_creators = [\"someone-else\"]\n"),
        3,
        "creator `creator` is not allowed",
    );
}

#[test]
fn an_image_altered_after_signing_is_rejected() {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create("native", COUNT);
    let a = registry('A');
    let repo = repo("altered");

    // 1. The train layer rebuilt with one ciphertext byte changed.
    let f = std::fs::read_dir(train.join("pht_train"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len() - 1;
    bytes[n] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let tampered = format!("{a}/{repo}:tampered");
    s.build(&train, &tampered);
    let o = s.station("st-1", &tampered, &[]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("run.sh"), "the message names the file: {err}");
    assert!(!exists(&a, &repo, "st-2"));

    // 2. A layer added on top of a good image (docker build FROM it): the master's layers are
    //    no longer the train's base layers.
    let good = format!("{a}/{repo}:good");
    std::fs::remove_dir_all(s.path("train")).unwrap();
    let train = s.create("native", COUNT);
    s.build(&train, &good);
    let evil = s.path("evil.sh");
    std::fs::write(&evil, "#!/bin/sh\necho evil\n").unwrap();
    let added = format!("{a}/{repo}:added");
    docker_image(
        &format!("FROM {good}\nCOPY evil.sh /usr/local/bin/evil.sh\n"),
        &[("evil.sh", evil.as_path())],
        &added,
    );
    let o = s.station("st-1", &added, &[]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("lineage") || err.contains("train layer"),
        "{err}"
    );
    assert!(!exists(&a, &repo, "st-2"));
    assert_eq!(leftover_containers(&repo), 0);
}

#[test]
fn a_hostile_train_finds_no_network_a_read_only_root_and_no_root() {
    let probe = r#"#!/bin/sh
r=/opt/pht_results/probe.txt
echo "uid=$(id -u)" >> $r
if touch /probe 2>/dev/null; then echo "rootfs=writable" >> $r; else echo "rootfs=read-only" >> $r; fi
if touch /opt/pht_train/probe 2>/dev/null; then echo "train=writable" >> $r; else echo "train=read-only" >> $r; fi
if echo x > /opt/train_data/data-st-1/rows.csv 2>/dev/null; then echo "data=writable" >> $r; else echo "data=read-only" >> $r; fi
ifaces=$(ls /sys/class/net | tr '\n' ' ')
echo "interfaces=$ifaces" >> $r
if wget -q -T 2 -O /dev/null http://REGISTRY/v2/ 2>/dev/null; then echo "registry=reachable" >> $r; else echo "registry=unreachable" >> $r; fi
grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -d '\t' | tr ':' '=' >> $r
"#
    .replace("REGISTRY", &registry('A'));
    let s = Scene::new(&["st-1"]);
    let train = s.create("native", &probe);
    let a = registry('A');
    let repo = repo("hostile");
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    let o = s.station("st-1", &first, &[]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    let r = s.results(&format!("{a}/{repo}:done"));
    let probe = &r[0].1;
    for line in [
        "uid=65534",
        "rootfs=read-only",
        "train=read-only",
        "data=read-only",
        "interfaces=lo ",
        "registry=unreachable",
        "CapEff=0000000000000000",
        "NoNewPrivs=1",
    ] {
        assert!(
            probe.lines().any(|l| l.trim_end() == line.trim_end()),
            "`{line}` missing:\n{probe}"
        );
    }
}

#[test]
fn a_station_does_not_run_the_same_state_twice() {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create("native", COUNT);
    let a = registry('A');
    let repo = repo("replay");
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    let cfg = s.path("station.toml");
    std::fs::write(
        &cfg,
        format!("[audit]\nlog = \"{}\"\n", s.path("audit.jsonl").display()),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    assert_eq!(
        code_and_err(&s.station("st-1", &first, &["--config", c])).0,
        0
    );
    let again = s.station(
        "st-1",
        &first,
        &["--config", c, "--push", &format!("{a}/{repo}:again")],
    );
    let (code, err) = code_and_err(&again);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already ran this exact train state"), "{err}");
    assert!(!exists(&a, &repo, "again"));
    let log = std::fs::read_to_string(s.path("audit.jsonl")).unwrap();
    let all: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The run that pushed recorded `started` before its container started.
    assert_eq!(all[0]["decision"], "started");
    let records: Vec<&serde_json::Value> =
        all.iter().filter(|r| r["decision"] != "started").collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["decision"], "pushed");
    assert_eq!(records[0]["exit_code"], 0);
    assert!(records[0]["result_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(records[1]["decision"], "rejected");
    assert_eq!(records[0]["digest_out"].as_str().unwrap().len(), 71);
    assert_eq!(records[1]["digest_in"], records[0]["digest_in"]);
}

/// A train image built the PHT-meDIC way: `repo:base` = the master plus `base_run` (which makes
/// the empty train directories), and `repo:latest` = `:base` plus the train directory copied to
/// /opt with docker build, no labels of ours. Returns `repo:latest`.
fn reference_style(train: &std::path::Path, repo: &str, base_run: &str) -> String {
    let a = registry('A');
    let base = format!("{a}/{repo}:base");
    docker_image(&format!("FROM {}\nRUN {base_run}\n", master()), &[], &base);
    let latest = format!("{a}/{repo}:latest");
    docker_image(
        &format!("FROM {base}\nCOPY opt/ /opt/\nCMD [\"/opt/pht_train/run.sh\"]\n"),
        &[("opt", train)],
        &latest,
    );
    latest
}

#[test]
fn a_reference_style_legacy_image_rebases_onto_its_base_tag() {
    // PHT-meDIC builds `:base` (master + empty train directories) and the train on top of it
    // with docker build; no labels of ours.
    // No labels: the master is the one the configuration's `source` names, run only because the
    // station's policy names it, and proven by lineage.
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create_with("legacy", COUNT, &["--master-image", master()]);
    let a = registry('A');
    let repo = repo("reference");
    let latest = reference_style(&train, &repo, "mkdir -p /opt/pht_train /opt/pht_results");
    let cfg = |id: &str| {
        s.config(&format!("{id}.toml"), &master_policy())
            .to_str()
            .unwrap()
            .to_string()
    };
    let o = s.station("st-1", &latest, &["--config", &cfg("st-1")]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    let o = s.station(
        "st-2",
        &format!("{a}/{repo}:st-2"),
        &["--config", &cfg("st-2")],
    );
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    assert_eq!(
        s.results(&format!("{a}/{repo}:done")),
        vec![("counts.csv".to_string(), "st-1,7\nst-2,7\n".to_string())]
    );
}

#[test]
fn an_interrupted_station_removes_its_container_and_decrypted_train() {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create("native", "#!/bin/sh\nsleep 120\n");
    let a = registry('A');
    let repo = repo("interrupt");
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    let audit = s.path("audit.jsonl");
    let cfg = s.path("station.toml");
    std::fs::write(&cfg, format!("[audit]\nlog = \"{}\"\n", audit.display())).unwrap();
    let mut child = s
        .station_cmd("st-1", &first)
        .arg("--config")
        .arg(&cfg)
        .spawn()
        .unwrap();
    // Wait until the container runs.
    let t0 = std::time::Instant::now();
    while leftover_containers(&repo) == 0 {
        assert!(t0.elapsed().as_secs() < 60, "the container never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(leftover_containers(&repo), 0);
    assert_eq!(
        s.tmp_leftovers(),
        Vec::<String>::new(),
        "decrypted bytes left behind"
    );
    assert!(!exists(&a, &repo, "st-2"));
    let log = std::fs::read_to_string(&audit).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["decision"], "interrupted", "{log}");
    assert!(last["digest_in"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn image_copy_skips_mounts_or_streams_and_keeps_the_digest() {
    let s = Scene::new(&["st-1"]);
    let train = s.create("native", COUNT);
    let (a, b) = (registry('A'), registry('B'));
    let repo = repo("copy");
    let src = format!("{a}/{repo}:st-1");
    s.build(&train, &src);
    let copy = |to: &str| -> serde_json::Value {
        let out = ok(Command::new(bin("train")).args(["image", "copy", &src, to, "--json"]));
        serde_json::from_str(&out).unwrap()
    };
    // Across registries every blob is streamed.
    let across = copy(&format!("{b}/{repo}:copy"));
    assert_eq!(across["mounted"], 0);
    assert_eq!(across["skipped"], 0);
    assert!(across["sent"].as_u64().unwrap() >= 2, "{across}");
    // Within one registry, into another repository: mounted, nothing sent.
    let within = copy(&format!("{a}/{repo}-mirror:copy"));
    assert_eq!(within["sent"], 0, "{within}");
    assert!(within["mounted"].as_u64().unwrap() >= 2);
    // Again: everything is already there.
    let again = copy(&format!("{a}/{repo}-mirror:copy2"));
    assert_eq!(again["sent"], 0);
    assert_eq!(again["mounted"], 0);
    assert_eq!(across["digest"], within["digest"]);
    assert_eq!(within["digest"], again["digest"]);
}

#[test]
fn verify_of_an_image_on_another_master_fails_with_exit_3() {
    let s = Scene::new(&["st-1"]);
    let train = s.create("native", COUNT);
    let a = registry('A');
    let repo = repo("other-master");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    // Another master: the test master with one more layer.
    let other = format!("{a}/{repo}-master:1");
    docker_image(
        &format!("FROM {}\nRUN echo x > /x\n", master()),
        &[],
        &other,
    );
    let o = run(Command::new(bin("train")).args(["verify", &img, "--master", &other, "--json"]));
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let lineage = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lineage")
        .unwrap();
    assert_eq!(lineage["ok"], false);
    assert!(
        lineage["detail"]
            .as_str()
            .unwrap()
            .contains("labelled as built on"),
        "{lineage}"
    );
}

#[test]
fn an_image_whose_entrypoint_was_changed_still_runs_the_signed_entrypoint() {
    // ENTRYPOINT, CMD and ENV live in the image configuration, outside every signature; a
    // `docker build` that changes only them adds no layer, so lineage alone cannot see it.
    let s = Scene::new(&["st-1"]);
    let train = s.create("native", COUNT);
    let a = registry('A');
    let repo = repo("entrypoint");
    let good = format!("{a}/{repo}:good");
    s.build(&train, &good);
    let evil = format!("{a}/{repo}:st-1");
    docker_image(&format!(
            "FROM {good}\nENV LD_PRELOAD=/tmp/evil.so\nENTRYPOINT [\"/bin/sh\", \"-c\", \"echo pwned > /opt/pht_results/counts.csv\"]\nCMD []\n"
        ), &[], &evil);
    let o = s.station("st-1", &evil, &[]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    assert_eq!(
        s.results(&format!("{a}/{repo}:done")),
        vec![("counts.csv".to_string(), "st-1,7\n".to_string())]
    );
}

#[test]
fn a_base_layer_with_content_under_the_train_paths_is_rejected() {
    // A PHT-meDIC-style `:base` that hides a file in /opt/pht_train below the train layer.
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create_with("legacy", COUNT, &["--master-image", master()]);
    let a = registry('A');
    let repo = repo("base-smuggle");
    let latest = reference_style(
        &train,
        &repo,
        "mkdir -p /opt/pht_train /opt/pht_results && echo 'echo evil' > /opt/pht_train/evil.sh",
    );
    let cfg = s.config("st-1.toml", &master_policy());
    let o = s.station("st-1", &latest, &["--config", cfg.to_str().unwrap()]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("opt/pht_train/evil.sh") && err.contains("base layer"),
        "{err}"
    );
    assert!(!exists(&a, &repo, "st-2"));
    // `train verify` says the same, in its JSON report.
    let o = run(Command::new(bin("train")).args(["verify", &latest, "--json"]));
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let base_check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "base layers")
        .unwrap();
    assert_eq!(base_check["ok"], false, "{base_check}");
}
