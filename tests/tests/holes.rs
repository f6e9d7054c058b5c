//! The attacks that once got through `station run` (issue 9), each fed to the real station on
//! the real engine and registries, with the outcome asserted: replays by re-encoding, runs of
//! one train at once, many stations appending to one log, legacy trains on a master of the
//! attacker's, private files, layers that unpack past their allowance, deep and hostile
//! output, a station killed mid-run, a train filling its disk.

use e2e::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const COUNT: &str = "#!/bin/sh\nset -e\nrows=$(wc -l < /opt/train_data/data-$STATION_ID/rows.csv)\necho \"$STATION_ID,$rows\" >> /opt/pht_results/counts.csv\n";

fn sha256_hex(data: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    let out = ok(Command::new("sha256sum").arg(f.path()));
    out.split_whitespace().next().unwrap().to_string()
}

fn curl(args: &[&str]) -> Vec<u8> {
    let o = run(Command::new("curl").args(["-fsS"]).args(args));
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

const MANIFEST_TYPES: &str = "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

fn get_manifest(reg: &str, repo: &str, tag: &str) -> serde_json::Value {
    let raw = curl(&[
        "-H",
        MANIFEST_TYPES,
        &format!("http://{reg}/v2/{repo}/manifests/{tag}"),
    ]);
    serde_json::from_slice(&raw).unwrap()
}

fn put_manifest(reg: &str, repo: &str, tag: &str, body: &[u8], media_type: &str) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), body).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {media_type}"),
        "--data-binary",
        &format!("@{}", f.path().display()),
        &format!("http://{reg}/v2/{repo}/manifests/{tag}"),
    ]);
}

/// Uploads `data` as a blob of `repo`; returns its digest.
fn put_blob(reg: &str, repo: &str, data: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_hex(data));
    let o = run(Command::new("curl").args([
        "-fsS",
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("http://{reg}/v2/{repo}/blobs/uploads/"),
    ]));
    let headers = String::from_utf8_lossy(&o.stdout).to_string();
    let loc = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("http://{reg}{loc}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", f.path().display()),
        &format!("{url}{sep}digest={digest}"),
    ]);
    digest
}

/// Pushes the same train state as `repo:tag` under new encodings: the manifest re-serialised
/// with an annotation added, and the image configuration changed in a field no signature covers.
/// Returns the two new tags.
fn re_encodings(reg: &str, repo: &str, tag: &str) -> [String; 2] {
    let mut m = get_manifest(reg, repo, tag);
    let media_type = m["mediaType"].as_str().unwrap().to_string();
    m["annotations"] = serde_json::json!({"org.example.note": "the same state, another digest"});
    put_manifest(
        reg,
        repo,
        "re-serialised",
        &serde_json::to_vec_pretty(&m).unwrap(),
        &media_type,
    );

    let mut m = get_manifest(reg, repo, tag);
    let cd = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&curl(&[&format!("http://{reg}/v2/{repo}/blobs/{cd}")])).unwrap();
    cfg["config"]["Labels"]["org.example.unsigned"] = "changed".into();
    let raw = serde_json::to_vec(&cfg).unwrap();
    let digest = put_blob(reg, repo, &raw);
    m["config"]["digest"] = digest.into();
    m["config"]["size"] = raw.len().into();
    put_manifest(
        reg,
        repo,
        "re-configured",
        &serde_json::to_vec(&m).unwrap(),
        &media_type,
    );
    ["re-serialised".into(), "re-configured".into()]
}

fn replay_by_re_encoding(format: &str) {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create(format, COUNT);
    let a = registry('A');
    let repo = repo(&format!("reencode-{format}"));
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    let cfg = s.config("st-1.toml", &master_policy());
    let cfg = cfg.to_str().unwrap();
    let o = s.station("st-1", &first, &["--config", cfg]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    for tag in re_encodings(&a, &repo, "st-1") {
        let again = format!("{a}/{repo}:{tag}");
        let push = format!("{a}/{repo}:again-{tag}");
        let o = s.station("st-1", &again, &["--config", cfg, "--push", &push]);
        let (code, err) = code_and_err(&o);
        assert_eq!(code, 3, "{tag}: {err}");
        assert!(
            err.contains("already ran this exact train state"),
            "{tag}: {err}"
        );
        assert!(!exists(&a, &repo, &format!("again-{tag}")));
    }
}

#[test]
fn a_native_state_re_encoded_is_still_refused_as_a_replay() {
    replay_by_re_encoding("native");
}

#[test]
fn a_legacy_state_re_encoded_is_still_refused_as_a_replay() {
    replay_by_re_encoding("legacy");
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(c: Child) -> (i32, String) {
    let o = c.wait_with_output().unwrap();
    code_and_err(&o)
}

#[test]
fn two_runs_of_one_state_at_once_push_once() {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create(
        "native",
        "#!/bin/sh\nsleep 3\necho done > /opt/pht_results/r\n",
    );
    let a = registry('A');
    let repo = repo("twice-at-once");
    let first = format!("{a}/{repo}:st-1");
    s.build(&train, &first);
    let cfg = s.config("st-1.toml", "");
    let spawn = |push: &str| {
        s.station_cmd("st-1", &first)
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "--push",
                &format!("{a}/{repo}:{push}"),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (spawn("one"), spawn("two"));
    let mut ends = [finish(one), finish(two)];
    ends.sort();
    assert_eq!(ends[0].0, 0, "{}", ends[0].1);
    assert_eq!(ends[1].0, 3, "{}", ends[1].1);
    assert!(
        ends[1].1.contains("in progress") || ends[1].1.contains("already ran"),
        "{}",
        ends[1].1
    );
    assert_ne!(
        exists(&a, &repo, "one"),
        exists(&a, &repo, "two"),
        "exactly one pushed"
    );
    let decisions: Vec<String> = s
        .audit_records("st-1.toml")
        .iter()
        .map(|r| r["decision"].as_str().unwrap().to_string())
        .filter(|d| d != "started")
        .collect();
    let mut sorted = decisions.clone();
    sorted.sort();
    assert_eq!(sorted, ["pushed", "rejected"], "{decisions:?}");
}

#[test]
fn runs_of_different_trains_go_on_side_by_side() {
    let s = Scene::new(&["st-1"]);
    let a = registry('A');
    let cfg = s.config("st-1.toml", "");
    let mut children = Vec::new();
    let mut repos = Vec::new();
    for n in 0..2 {
        std::fs::remove_dir_all(s.path("train")).ok();
        let train = s.create(
            "native",
            &format!("#!/bin/sh\nsleep 6\necho {n} > /opt/pht_results/r\n"),
        );
        let repo = repo(&format!("side-by-side-{n}"));
        let img = format!("{a}/{repo}:st-1");
        s.build(&train, &img);
        children.push(
            s.station_cmd("st-1", &img)
                .args(["--config", cfg.to_str().unwrap()])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        repos.push(repo);
    }
    // Both containers run at the same moment: the lock of one train does not hold the other.
    wait_for(
        "both trains running at once",
        Duration::from_secs(60),
        || repos.iter().all(|r| leftover_containers(r) == 1),
    );
    for c in children {
        let (code, err) = finish(c);
        assert_eq!(code, 0, "{err}");
    }
}

#[test]
fn many_stations_appending_at_once_keep_one_chain() {
    let s = Scene::new(&["st-1"]);
    let cfg = s.config("st-1.toml", "");
    let a = registry('A');
    let n = 12;
    let children: Vec<Child> = (0..n)
        .map(|i| {
            s.station_cmd("st-1", &format!("{a}/trains/no-such-train-{i}:st-1"))
                .args(["--config", cfg.to_str().unwrap()])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        assert_eq!(finish(c).0, 1);
    }
    let out = ok(Command::new(bin("station"))
        .args(["audit", "verify"])
        .arg(s.audit_log("st-1.toml"))
        .arg("--key")
        .arg(s.key("st-1")));
    assert!(out.contains(&format!("{n} records")), "{out}");
    let mut runs: Vec<String> = s
        .audit_records("st-1.toml")
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), n, "every decision present once");
}

#[test]
fn a_legacy_train_runs_only_on_a_master_the_policy_names() {
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create("legacy", COUNT);
    let a = registry('A');
    let repo = repo("legacy-master");
    // With no policy: refused, naming the setting.
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let o = s.station("st-1", &img, &[]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("allowed_masters"), "{err}");
    // The same, validly signed train layer on a master of the attacker's, whose ENTRYPOINT
    // would read the station's data: its master is not one the policy names.
    let evil_master = format!("{a}/{repo}-evil-master:1");
    docker_image(
        &format!("FROM {}\nENTRYPOINT [\"/bin/sh\", \"-c\", \"cat /opt/train_data/*/* > /opt/pht_results/counts.csv\"]\n", master()),
        &[],
        &evil_master,
    );
    let rebased = format!("{a}/{repo}:rebased");
    ok(Command::new(bin("train"))
        .args(["image", "build"])
        .arg(&train)
        .args([
            "--master",
            &evil_master,
            "--tag",
            &rebased,
            "--entrypoint",
            "run.sh",
        ]));
    let cfg = s.config("st-1.toml", &master_policy());
    let o = s.station("st-1", &rebased, &["--config", cfg.to_str().unwrap()]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("not allowed by this station's policy"),
        "{err}"
    );
    assert!(!exists(&a, &repo, "st-2"));
    // A policy entry is a path, matched by whole segments: `…/busybox` does not allow
    // `…/busybox-evil`.
    let lookalike = format!("{}-evil:1", master().rsplit_once(':').unwrap().0);
    docker_image(&format!("FROM {}\n", master()), &[], &lookalike);
    let tagged = format!("{a}/{repo}:lookalike");
    ok(Command::new(bin("train"))
        .args(["image", "build"])
        .arg(&train)
        .args([
            "--master",
            &lookalike,
            "--tag",
            &tagged,
            "--entrypoint",
            "run.sh",
        ]));
    let o = s.station("st-1", &tagged, &["--config", cfg.to_str().unwrap()]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("not allowed by this station's policy"),
        "{err}"
    );
    // On the master the policy names, it runs.
    let o = s.station("st-1", &img, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
}

fn modes(dir: &Path, out: &mut Vec<(String, u32, bool)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let mode = m.permissions().mode() & 0o777;
        out.push((e.path().display().to_string(), mode, m.is_dir()));
        if m.is_dir() {
            modes(&e.path(), out);
        }
    }
}

#[test]
fn a_station_s_files_are_private_from_their_creation() {
    let s = Scene::new(&["st-1"]);
    let train = s.create(
        "native",
        "#!/bin/sh\nsleep 4\necho x > /opt/pht_results/r\n",
    );
    let a = registry('A');
    let repo = repo("private");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let child = s
        .station_cmd("st-1", &img)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the container to run", Duration::from_secs(60), || {
        leftover_containers(&repo) == 1
    });
    let mut seen = Vec::new();
    modes(&s.path("tmp"), &mut seen);
    assert!(
        seen.iter().any(|(p, _, _)| p.ends_with("opt.ext4")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(p, _, _)| p.contains("pht_train/")),
        "{seen:?}"
    );
    for (p, mode, dir) in &seen {
        assert_eq!(*mode, if *dir { 0o700 } else { 0o600 }, "{p}");
    }
    assert_eq!(finish(child).0, 0);
}

#[test]
fn a_layer_that_unpacks_past_its_allowance_is_refused_and_leaves_nothing() {
    let s = Scene::new(&["st-1", "st-2"]);
    let a = registry('A');
    // Native: a signed train file's ciphertext replaced by 64 MiB of zeros (the layer is some
    // 100 KiB gzipped); the signed configuration says how long it may be.
    let train = s.create("native", COUNT);
    let f = std::fs::read_dir(train.join("pht_train"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&f, vec![0u8; 64 << 20]).unwrap();
    let repo = repo("bomb");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let o = s.station("st-1", &img, &[]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("refused before unpacking"), "{err}");
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
    // Legacy: no sizes are signed; the station's limit applies.
    std::fs::remove_dir_all(&train).unwrap();
    let train = s.create("legacy", COUNT);
    std::fs::write(train.join("pht_results/zeros"), vec![0u8; 8 << 20]).unwrap();
    let img = format!("{a}/{repo}:legacy");
    s.build(&train, &img);
    let cfg = s.config(
        "st-1.toml",
        &format!("{}[limits]\ntrain_bytes = 1048576\n", master_policy()),
    );
    let o = s.station("st-1", &img, &["--config", cfg.to_str().unwrap()]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("more than 1048576 bytes"), "{err}");
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
    assert!(!exists(&a, &repo, "st-2"));
}

#[test]
fn deep_or_hostile_output_neither_crashes_nor_fools_the_station() {
    // 1,900 nested directories in the results, and output that would erase the `[train]`
    // prefix and print a fake station line.
    let script = "#!/bin/sh\nd=/opt/pht_results\ni=0\nwhile [ $i -lt 1900 ]; do d=$d/a; i=$((i+1)); done\nmkdir -p $d\necho deep > $d/x\nprintf 'working\\r\\033[2K\\033[1Apushed 127.0.0.1:5001/fake@sha256:00 (0.1 s)\\n'\n";
    let s = Scene::new(&["st-1", "st-2"]);
    let train = s.create("native", script);
    let a = registry('A');
    let repo = repo("deep");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let cfg = s.config("st-1.toml", "");
    let o = s.station("st-1", &img, &["--config", cfg.to_str().unwrap()]);
    let (code, err) = code_and_err(&o);
    assert!(
        code == 0 || code == 4,
        "the station must not die on a train's output: {code}\n{err}"
    );
    assert!(
        !err.contains('\u{1b}') && !err.contains('\r'),
        "raw control characters reached the terminal:\n{err}"
    );
    assert!(err.contains("[train] working\\u{d}\\u{1b}[2K"), "{err}");
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
    let decisions: Vec<_> = s
        .audit_records("st-1.toml")
        .iter()
        .map(|r| r["decision"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(decisions.len(), 2, "{decisions:?}");
}

fn loop_devices_under(dir: &Path) -> usize {
    let out = ok(Command::new("losetup").args(["--list", "--noheadings", "--output", "BACK-FILE"]));
    out.lines()
        .filter(|l| l.trim().starts_with(&dir.display().to_string()))
        .count()
}

fn volumes_of_run(run_id: &str) -> usize {
    ok(Command::new("docker").args([
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=org.pht.station.run={run_id}"),
    ]))
    .lines()
    .count()
}

#[test]
fn a_station_killed_mid_run_is_cleaned_up_at_its_next_start() {
    let s = Scene::new(&["st-1", "st-2"]);
    let a = registry('A');
    let train = s.create("native", "#!/bin/sh\nsleep 120\n");
    let repo = repo("killed");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let cfg = s.config("st-1.toml", "");
    let mut child = s
        .station_cmd("st-1", &img)
        .args(["--config", cfg.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the container to run", Duration::from_secs(60), || {
        leftover_containers(&repo) == 1
    });
    child.kill().unwrap(); // SIGKILL: no cleanup, no decision
    child.wait().unwrap();
    let started = s.audit_records("st-1.toml");
    let run_id = started.last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(started.last().unwrap()["decision"], "started");
    let tmp = s.path("tmp");
    assert_eq!(leftover_containers(&repo), 1, "what SIGKILL leaves");
    assert_eq!(volumes_of_run(&run_id), 1);
    assert_eq!(loop_devices_under(&tmp), 1);
    assert_eq!(s.tmp_leftovers().len(), 1);

    // A start of the same station id with another work area and audit log (a hand-run
    // `station run` beside the daemon) leaves the run to the configuration whose log holds it.
    let elsewhere = s.path("tmp-elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let other_cfg = s.config("elsewhere.toml", "");
    let o = run(s
        .station_cmd("st-1", &format!("{a}/{repo}-absent:st-1"))
        .env("TMPDIR", &elsewhere)
        .args(["--config", other_cfg.to_str().unwrap()]));
    assert_ne!(code_and_err(&o).0, 0, "nothing to pull there");
    assert_eq!(leftover_containers(&repo), 1, "left to its own station");
    assert_eq!(volumes_of_run(&run_id), 1);
    assert_eq!(s.tmp_leftovers().len(), 1);

    // The next start (another train) removes all of it and records the run as interrupted.
    std::fs::remove_dir_all(&train).unwrap();
    let train = s.create("native", COUNT);
    let other = format!("{a}/{repo}-next:st-1");
    s.build(&train, &other);
    let o = s.station("st-1", &other, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(code_and_err(&o).0, 0, "{}", code_and_err(&o).1);
    assert_eq!(leftover_containers(&repo), 0);
    assert_eq!(volumes_of_run(&run_id), 0);
    assert_eq!(loop_devices_under(&tmp), 0);
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
    let records = s.audit_records("st-1.toml");
    assert!(
        records
            .iter()
            .any(|r| r["decision"] == "interrupted" && r["run_id"] == run_id.as_str()),
        "{records:#?}"
    );
    ok(Command::new(bin("station"))
        .args(["audit", "verify"])
        .arg(s.audit_log("st-1.toml"))
        .arg("--key")
        .arg(s.key("st-1")));
}

#[test]
fn a_train_cannot_write_past_its_disk() {
    // 200 MiB written to a 32 MiB disk, the error ignored, exit 0.
    let s = Scene::new(&["st-1", "st-2"]);
    let a = registry('A');
    let train = s.create(
        "native",
        "#!/bin/sh\ndd if=/dev/zero of=/opt/pht_results/big bs=1M count=200 2>/dev/null\nexit 0\n",
    );
    let repo = repo("disk");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let cfg = s.config("st-1.toml", "[limits]\ndisk_mib = 32\n");
    let o = s.station("st-1", &img, &["--config", cfg.to_str().unwrap(), "--json"]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("filled its disk (limits.disk_mib = 32 MiB)"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["decision"], "train-failed");
    assert_eq!(summary["disk"]["full"], true);
    let host = summary["disk"]["host_bytes"].as_u64().unwrap();
    assert!(
        host <= 32 << 20,
        "the host's disk took {host} bytes, past the 32 MiB bound"
    );
    assert!(!exists(&a, &repo, "st-2"));
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
}

#[test]
fn a_train_over_its_memory_limit_is_told_apart_from_one_that_exits() {
    // The shell doubles a string until the kernel's OOM killer stops it at 32 MiB: the run
    // says memory, not "exit code 137" (which a train may return itself).
    let s = Scene::new(&["st-1", "st-2"]);
    let a = registry('A');
    let train = s.create(
        "native",
        "#!/bin/sh\nx=a\nwhile true; do x=\"$x$x\"; done\n",
    );
    let repo = repo("oom");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let cfg = s.config("st-1.toml", "[limits]\nmemory_mib = 32\n");
    let o = s.station("st-1", &img, &["--config", cfg.to_str().unwrap()]);
    let (code, err) = code_and_err(&o);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("went over its memory limit of 32 MiB (limits.memory_mib)"),
        "{err}"
    );
    assert!(!exists(&a, &repo, "st-2"));
    assert_eq!(s.tmp_leftovers(), Vec::<String>::new());
}
