//! The `train` command-line contract, as outside tests and CI use it: commands, environment
//! variables, exit codes (0 ok, 1 error, 2 usage, 3 rejected) and the JSON report.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use support::*;

fn train(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_train"));
    c.current_dir(dir).args(args);
    for v in [
        "STATION_ID",
        "STATION_PRIVATE_KEY_PATH",
        "RSA_STATION_PRIVATE_KEY",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit code and that stderr mentions `needle`.
fn fails(o: &Output, code: i32, needle: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
}

fn setup(format: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for k in ["alice", "builder", "s1", "s2"] {
        ok(&train(
            d,
            &["keygen", k, "--out-dir", "keys", "--bits", "2048"],
            &[],
        ));
    }
    write_files(
        &d.join("algo"),
        &[
            ("main.py", b"print(1)\n".to_vec()),
            ("query.json", b"{}".to_vec()),
        ],
    );
    let out = train(
        d,
        &[
            "create",
            "--format",
            format,
            "--files",
            "algo",
            "--entrypoint",
            "main.py",
            "--creator-id",
            "alice",
            "--creator-key",
            "keys/alice.key.pem",
            "--builder-key",
            "keys/builder.key.pem",
            "--station",
            "s1=keys/s1.pub.pem",
            "--station",
            "s2=keys/s2.pub.pem",
            "--out",
            "t",
        ],
        &[],
    );
    ok(&out);
    tmp
}

#[test]
fn keygen_writes_a_private_pkcs8_and_a_public_spki() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&train(
        tmp.path(),
        &["keygen", "k", "--out-dir", "o", "--bits", "2048"],
        &[],
    ));
    assert!(out.contains("sha256:"));
    let key = tmp.path().join("o/k.key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(fs::read_to_string(tmp.path().join("o/k.pub.pem"))
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    // Never overwrites a key.
    assert_eq!(
        train(
            tmp.path(),
            &["keygen", "k", "--out-dir", "o", "--bits", "2048"],
            &[]
        )
        .status
        .code(),
        Some(1)
    );
}

#[test]
fn a_route_through_the_cli_with_every_key_source() {
    for format in ["native", "legacy"] {
        let tmp = setup(format);
        let d = tmp.path();
        let v: serde_json::Value =
            serde_json::from_str(&ok(&train(d, &["verify", "t", "--json"], &[]))).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["format"], format);
        // s1 by flags.
        ok(&train(
            d,
            &[
                "pre-run",
                "t",
                "--station",
                "s1",
                "--key",
                "keys/s1.key.pem",
            ],
            &[],
        ));
        fs::write(d.join("t/pht_results/r.csv"), b"s1\n").unwrap();
        ok(&train(
            d,
            &[
                "post-run",
                "t",
                "--station",
                "s1",
                "--key",
                "keys/s1.key.pem",
            ],
            &[],
        ));
        // s2 by STATION_ID and STATION_PRIVATE_KEY_PATH, then by RSA_STATION_PRIVATE_KEY (hex PEM).
        ok(&train(
            d,
            &["pre-run", "t"],
            &[
                ("STATION_ID", "s2"),
                ("STATION_PRIVATE_KEY_PATH", "keys/s2.key.pem"),
            ],
        ));
        let hexed = hex::encode(fs::read(d.join("keys/s2.key.pem")).unwrap());
        let out = ok(&train(
            d,
            &["post-run", "t", "--json"],
            &[("STATION_ID", "s2"), ("RSA_STATION_PRIVATE_KEY", &hexed)],
        ));
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["index"], 1);
        ok(&train(
            d,
            &[
                "results",
                "t",
                "--key",
                "keys/alice.key.pem",
                "--out",
                "res",
            ],
            &[],
        ));
        assert_eq!(fs::read(d.join("res/r.csv")).unwrap(), b"s1\n");
        // The finished train is rejected with exit 3 and left as it was.
        let before = snapshot(&d.join("t"));
        let o = train(
            d,
            &[
                "pre-run",
                "t",
                "--station",
                "s1",
                "--key",
                "keys/s1.key.pem",
            ],
            &[],
        );
        fails(&o, 3, "finished its route");
        assert_eq!(before, snapshot(&d.join("t")));
    }
}

#[test]
fn exit_codes_say_what_kind_of_failure() {
    let tmp = setup("native");
    let d = tmp.path();
    // Usage.
    assert_eq!(train(d, &["pre-run"], &[]).status.code(), Some(2));
    assert_eq!(train(d, &["frobnicate"], &[]).status.code(), Some(2));
    // A key that cannot be read: 1, naming the file.
    let o = train(
        d,
        &["pre-run", "t", "--station", "s1", "--key", "keys/nope.pem"],
        &[],
    );
    fails(&o, 1, "keys/nope.pem");
    // No key at all: 1, saying where keys come from.
    let o = train(d, &["pre-run", "t", "--station", "s1"], &[]);
    fails(&o, 1, "RSA_STATION_PRIVATE_KEY");
    // A rejected train: 3, naming the check and the file.
    fs::write(d.join("t/pht_train/evil.py"), b"x").unwrap();
    let o = train(
        d,
        &[
            "pre-run",
            "t",
            "--station",
            "s1",
            "--key",
            "keys/s1.key.pem",
        ],
        &[],
    );
    fails(&o, 3, "pht_train/evil.py");
    let o = train(d, &["verify", "t", "--json"], &[]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    // Legacy without a builder key is an input error.
    let o = train(
        d,
        &[
            "create",
            "--format",
            "legacy",
            "--files",
            "algo",
            "--entrypoint",
            "main.py",
            "--creator-id",
            "a",
            "--creator-key",
            "keys/alice.key.pem",
            "--station",
            "s1=keys/s1.pub.pem",
            "--out",
            "t2",
        ],
        &[],
    );
    fails(&o, 1, "--builder-key");
}

#[test]
fn encrypted_keys_take_their_password_from_the_named_variable() {
    let v = vectors().join("phtmedic-desktop-app");
    let tmp = tempfile::tempdir().unwrap();
    assert!(Command::new("tar")
        .arg("xf")
        .arg(v.join("result.tar"))
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap()
        .success());
    let key = v.join("private.pem");
    let o = train(
        tmp.path(),
        &[
            "results",
            ".",
            "--key",
            key.to_str().unwrap(),
            "--out",
            "o",
            "--key-password-env",
            "PW",
        ],
        &[("PW", "leuko")],
    );
    ok(&o);
    assert_eq!(
        fs::read(tmp.path().join("o/station_acc.csv")).unwrap(),
        b"acc\n1.0 \n"
    );
    let o = train(
        tmp.path(),
        &[
            "results",
            ".",
            "--key",
            key.to_str().unwrap(),
            "--out",
            "o2",
        ],
        &[],
    );
    fails(&o, 1, "--key-password-env");
}

#[test]
fn help_teaches_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let h = ok(&train(tmp.path(), &["--help"], &[]));
    for word in [
        "keygen",
        "create",
        "pre-run",
        "post-run",
        "verify",
        "results",
        "Exit codes",
        "rejected",
    ] {
        assert!(h.contains(word), "--help lacks {word}");
    }
    let h = ok(&train(tmp.path(), &["pre-run", "--help"], &[]));
    for word in [
        "STATION_ID",
        "STATION_PRIVATE_KEY_PATH",
        "RSA_STATION_PRIVATE_KEY",
        "--trust",
    ] {
        assert!(h.contains(word), "pre-run --help lacks {word}");
    }
}

#[test]
fn create_refuses_what_a_station_would_refuse_with_its_message() {
    let tmp = setup("native");
    let d = tmp.path();
    let create = |format: &str, stations: &[&str], out: &str| {
        let mut args = vec![
            "create",
            "--format",
            format,
            "--files",
            "algo",
            "--entrypoint",
            "main.py",
            "--creator-id",
            "alice",
            "--creator-key",
            "keys/alice.key.pem",
            "--builder-key",
            "keys/builder.key.pem",
            "--out",
            out,
        ];
        for s in stations {
            args.extend(["--station", s]);
        }
        train(d, &args, &[])
    };
    // The messages a station gives (train-lib/tests/tamper.rs feeds them to pre-run).
    let bad_id = |i: usize, id: &str| {
        train_lib::ids::check(&format!("train.route[{i}].id"), id)
            .unwrap_err()
            .to_string()
    };
    for (i, (stations, want)) in [
        (
            vec!["s1=keys/s1.pub.pem", "s\n2=keys/s2.pub.pem"],
            bad_id(1, "s\n2"),
        ),
        (vec![" s1=keys/s1.pub.pem"], bad_id(0, " s1")),
        (vec!["s1 =keys/s1.pub.pem"], bad_id(0, "s1 ")),
        (vec!["..=keys/s1.pub.pem"], bad_id(0, "..")),
        (
            vec!["s1=keys/s1.pub.pem", "s2=keys/s1.pub.pem"],
            train_lib::Rejection::SharedStationKey {
                first: "s1".into(),
                second: "s2".into(),
            }
            .to_string(),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = format!("native-{i}");
        fails(&create("native", &stations, &out), 1, &want);
        assert!(!d.join(&out).exists(), "nothing is written");
    }
    // Legacy stations compare ids in the reference's Python form: `01` is station `1`.
    let o = create(
        "legacy",
        &["1=keys/s1.pub.pem", "01=keys/s2.pub.pem"],
        "legacy-0",
    );
    fails(
        &o,
        1,
        &train_lib::Rejection::DuplicateStation("1".into()).to_string(),
    );
    assert!(!d.join("legacy-0").exists());
}

#[path = "../../image/tests/hostile/mod.rs"]
mod hostile;

#[tokio::test(flavor = "multi_thread")]
async fn verify_of_an_image_whose_blob_does_not_match_its_digest_exits_3() {
    // A registry that serves a layer other than the one its digest names: tampering, so a
    // rejection (3), not a registry error (1).
    let layer = b"not what the digest says".to_vec();
    let cfg = hostile::config_for(&[hostile::sha256(b"x")]);
    let mut forged = layer.clone();
    forged[0] ^= 1;
    let addr = hostile::serve(hostile::image_routes(
        "t/forged",
        &cfg,
        &[layer],
        &[(1, hostile::Reply::Bytes(forged))],
    ))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let reference = format!("{addr}/t/forged:x");
    let o = tokio::task::spawn_blocking(move || train(tmp.path(), &["verify", &reference], &[]))
        .await
        .unwrap();
    fails(&o, 3, "digest mismatch");
}
