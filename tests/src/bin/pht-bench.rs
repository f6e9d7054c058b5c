//! Station benchmarks, side by side in one run, printed as a table:
//!
//! 1. station overhead: `station run` of a small train minus a plain `docker run` of the same
//!    image doing the same trivial work;
//! 2. copying a 200 MiB train image to the other registry: `train image copy` beside
//!    `skopeo copy` of the same image;
//! 3. lineage check of a train on a 300 MiB master: `train verify REF --master REF` beside the
//!    reference's `validate_train_image` (images already in the engine, which favours it).
//!
//! Needs the services (`eval "$(scripts/services.sh)"`), release binaries and the reference
//! virtualenv (`eval "$(scripts/reference-venv.sh)"`):
//!   cargo build --release --workspace --bins
//!   target/release/pht-bench --python "$PHT_REFERENCE_PYTHON"

use e2e::*;
use std::process::Command;
use std::time::Instant;

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = arg("--runs").map_or(5, |r| r.parse().unwrap());
    let push_mib: usize = arg("--push-mib").map_or(200, |r| r.parse().unwrap());
    let master_mib: usize = arg("--master-mib").map_or(300, |r| r.parse().unwrap());
    let python = arg("--python");
    let (a, b) = (registry('A'), registry('B'));
    let mut rows: Vec<(String, String, String, String)> = Vec::new();

    // 1. Station overhead.
    let s = Scene::new(&["st-1"]);
    let train = s.create("native", "#!/bin/sh\necho ok > /opt/pht_results/ok\n");
    let repo = e2e::repo("bench-overhead");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let pinned = ok(Command::new("docker").args(["pull", "-q", &img]));
    let _ = pinned;
    let mut st = Vec::new();
    let mut dr = Vec::new();
    for i in 0..=runs {
        let target = format!("{a}/{repo}:run-{i}");
        let t = secs(|| {
            let o = s.station("st-1", &img, &["--push", &target]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        });
        let d = secs(|| {
            ok(Command::new("docker").args([
                "run",
                "--rm",
                "--network",
                "none",
                &img,
                "-c",
                "echo ok > /tmp/ok",
            ]));
        });
        if i > 0 {
            // The first of each warms the engine's image store.
            st.push(t);
            dr.push(d);
        }
    }
    let (ms, md) = (median(st), median(dr));
    rows.push((
        "station overhead (small train)".into(),
        format!("station run {ms:.3} s"),
        format!("docker run {md:.3} s"),
        format!("overhead {:.3} s (target ≤ 1.0 s)", ms - md),
    ));

    // 2. Copy a 200 MiB train image across registries.
    let s = Scene::new(&["st-1"]);
    std::fs::create_dir_all(s.path("algo")).unwrap();
    let big = s.path("algo/weights.bin");
    ok(Command::new("head")
        .args(["-c", &format!("{}M", push_mib), "/dev/urandom"])
        .stdout(std::fs::File::create(&big).unwrap()));
    let train = s.create("native", "#!/bin/sh\ntrue\n");
    let repo = e2e::repo("bench-push");
    let img = format!("{a}/{repo}:st-1");
    s.build(&train, &img);
    let mut ours = Vec::new();
    let mut skopeo = Vec::new();
    for i in 0..runs {
        // skopeo remembers where it has seen blobs and would mount them from an earlier copy
        // instead of sending them; forget, so both send every byte.
        let _ = std::fs::remove_file("/var/lib/containers/cache/blob-info-cache-v1.boltdb");
        ours.push(secs(|| {
            ok(Command::new(bin("train")).args([
                "image",
                "copy",
                &img,
                &format!("{b}/{repo}-ours-{i}:x"),
            ]));
        }));
        skopeo.push(secs(|| {
            ok(Command::new("skopeo").args([
                "copy",
                "-q",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{img}"),
                &format!("docker://{b}/{repo}-skopeo-{i}:x"),
            ]));
        }));
    }
    // The station's own push of the same train after a run: the new train layer written and
    // pushed, the master's layers copied across (`seconds.push` of `--json`).
    let mut pushes = Vec::new();
    for i in 0..runs {
        let o = s.station(
            "st-1",
            &img,
            &["--json", "--push", &format!("{b}/{repo}-station-{i}:x")],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        pushes.push(v["seconds"]["push"].as_f64().unwrap());
    }
    let (mo, mk) = (median(ours), median(skopeo));
    let mp = median(pushes);
    rows.push((
        format!("station push of a {push_mib} MiB train to the other registry"),
        format!("station run: push step {mp:.3} s"),
        format!("skopeo copy {mk:.3} s"),
        format!("{:.2}× skopeo's speed (builds the layer too)", mk / mp),
    ));
    rows.push((
        format!("copy {push_mib} MiB train to the other registry"),
        format!("train image copy {mo:.3} s"),
        format!("skopeo copy {mk:.3} s"),
        format!("{:.2}× skopeo's speed (target ≥ 1)", mk / mo),
    ));

    // 3. Lineage check on a 300 MiB master.
    let big_master = format!("{a}/master/busybox-{master_mib}m:1");
    docker_image(
        &format!(
            "FROM {}\nRUN head -c {master_mib}m /dev/urandom > /model.bin\n",
            master()
        ),
        &[],
        &big_master,
    );
    let s = Scene::new(&["st-1"]);
    let train = s.create("native", "#!/bin/sh\ntrue\n");
    let repo = e2e::repo("bench-lineage");
    let img = format!("{a}/{repo}:st-1");
    ok(Command::new(bin("train"))
        .args(["image", "build"])
        .arg(&train)
        .args(["--master", &big_master, "--tag", &img, "--creator-key"])
        .arg(s.key("creator")));
    let mut ours = Vec::new();
    for _ in 0..runs {
        ours.push(secs(|| {
            ok(Command::new(bin("train")).args(["verify", &img, "--master", &big_master]));
        }));
    }
    let mo = median(ours);
    let reference = python.map(|py| {
        ok(Command::new("docker").args(["pull", "-q", &img]));
        let code = format!(
            "import time\nfrom train_lib.docker_util.validate_master_image import validate_train_image\n\
             ts=[]\nfor _ in range({n}):\n    t=time.perf_counter(); validate_train_image('{big_master}', '{img}'); ts.append(time.perf_counter()-t)\n\
             print(sorted(ts)[len(ts)//2])\n",
            n = runs.min(3)
        );
        let out = ok(Command::new(py).args(["-c", &code]));
        out.trim().parse::<f64>().unwrap()
    });
    rows.push((
        format!("lineage check, {master_mib} MiB master"),
        format!("train verify --master {mo:.3} s"),
        reference.map_or("reference: pass --python".into(), |r| {
            format!("validate_train_image {r:.3} s")
        }),
        reference.map_or(String::new(), |r| {
            format!("{:.0}× faster (target ≥ 50×)", r / mo)
        }),
    ));

    println!("| benchmark | ours | beside | ratio |");
    println!("|---|---|---|---|");
    for (a, b, c, d) in rows {
        println!("| {a} | {b} | {c} | {d} |");
    }
    println!(
        "\n(medians of {runs} runs; the reference's lineage check: median of {} runs)",
        runs.min(3)
    );
}
