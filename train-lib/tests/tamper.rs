//! The tamper table: every check is fed its attack, and the specific error is asserted. After
//! each rejection the directory must be byte-for-byte as it was, with no staging left behind.

mod support;

use serde_json::Value;
use std::fs;
use std::path::Path;
use support::*;
use train_lib::error::ProtocolError;
use train_lib::keys::{KeyRole, PrivateKey, TrustStore};
use train_lib::tree::TreeError;
use train_lib::{Format, Rejection, Station, TrainDir};

/// A train with a 200 KiB model (several STREAM chunks) that station 0 has run, with results.
fn after_first_stop(format: Format) -> Fixture {
    run_first_stop(format, 70_000)
}

fn edit_json(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let p = dir.join("train_config.json");
    let mut v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    // Native configs are written back canonically, so that the check under test is the one that
    // fires and not the canonical-form check; values the model cannot hold are written as is.
    let out = match serde_json::from_value::<train_lib::native::NativeConfig>(v.clone()) {
        Ok(cfg) if v.get("format").is_some() => cfg.to_json(),
        _ => {
            let mut out = serde_json::to_vec_pretty(&v).unwrap();
            out.push(b'\n');
            out
        }
    };
    fs::write(p, out).unwrap();
}

fn flip(path: &Path, offset: usize) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 0x01;
    fs::write(path, b).unwrap();
}

/// Runs `op` on the fixture after `attack`, and checks the rejection and that nothing changed.
fn expect(
    f: &Fixture,
    attack: impl FnOnce(&Path),
    op: impl FnOnce(&TrainDir) -> Result<train_lib::StepReport, ProtocolError>,
    check: impl FnOnce(&ProtocolError) -> bool,
) {
    attack(&f.dir);
    let before = snapshot(&f.dir);
    let err = match TrainDir::open(&f.dir) {
        Ok(t) => op(&t).expect_err("the attack must be rejected"),
        Err(e) => e,
    };
    assert!(check(&err), "unexpected error: {err}");
    assert_eq!(
        before,
        snapshot(&f.dir),
        "directory changed after rejection ({err})"
    );
    assert!(no_staging_left(&f.dir));
}

fn rejected(err: &ProtocolError, want: &Rejection) -> bool {
    err.rejection() == Some(want)
}

macro_rules! native_pre_run_case {
    ($name:ident, $attack:expr, $want:pat $(if $guard:expr)?) => {
        #[test]
        fn $name() {
            let f = after_first_stop(Format::Native);
            expect(&f, $attack, |t| t.pre_run(&f.station(1)), |e| matches!(e.rejection(), Some($want) $(if $guard)?));
        }
    };
}

// --- native: files ---------------------------------------------------------------------------

native_pre_run_case!(native_flipped_train_byte, |d: &Path| flip(&d.join("pht_train/main.py"), 12),
    Rejection::Decrypt { path, .. } if path == "pht_train/main.py");
native_pre_run_case!(native_flipped_result_byte, |d: &Path| flip(&d.join("pht_results/plots/b.bin"), 70_000),
    Rejection::Decrypt { path, .. } if path == "pht_results/plots/b.bin");
native_pre_run_case!(native_truncated_at_chunk_boundary, |d: &Path| {
        let p = d.join("pht_train/model/weights.bin");
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..8 + 2 * (65536 + 16)]).unwrap();
    }, Rejection::Decrypt { path, .. } if path == "pht_train/model/weights.bin");
native_pre_run_case!(native_chunks_reordered, |d: &Path| {
        let p = d.join("pht_train/model/weights.bin");
        let mut b = fs::read(&p).unwrap();
        let c = 65536 + 16;
        let first = b[8..8 + c].to_vec();
        b.copy_within(8 + c..8 + 2 * c, 8);
        b[8 + c..8 + 2 * c].copy_from_slice(&first);
        fs::write(&p, b).unwrap();
    }, Rejection::Decrypt { path, .. } if path == "pht_train/model/weights.bin");
native_pre_run_case!(
    native_results_swapped_between_paths,
    |d: &Path| {
        // Same listing, contents exchanged: the path-bound keys refuse both.
        let a = d.join("pht_results/a.csv");
        let b = d.join("pht_results/plots/b.bin");
        let (da, db) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        fs::write(&a, db).unwrap();
        fs::write(&b, da).unwrap();
    },
    Rejection::Decrypt { .. }
);
native_pre_run_case!(native_train_file_moved_to_results, |d: &Path| {
        // Same name and bytes, other role: the role is bound into the key.
        fs::copy(d.join("pht_train/main.py"), d.join("pht_results/a.csv")).unwrap();
    }, Rejection::Decrypt { path, .. } if path == "pht_results/a.csv");
native_pre_run_case!(native_extra_train_file, |d: &Path| fs::write(d.join("pht_train/evil.py"), b"x").unwrap(),
    Rejection::UnlistedFile(p) if p == "pht_train/evil.py");
native_pre_run_case!(native_missing_train_file, |d: &Path| fs::remove_file(d.join("pht_train/main.py")).unwrap(),
    Rejection::MissingFile(p) if p == "pht_train/main.py");
native_pre_run_case!(native_extra_result_file, |d: &Path| fs::write(d.join("pht_results/new.csv"), b"x").unwrap(),
    Rejection::UnlistedFile(p) if p == "pht_results/new.csv");
native_pre_run_case!(native_extra_result_dir, |d: &Path| fs::create_dir(d.join("pht_results/newdir")).unwrap(),
    Rejection::UnlistedFile(p) if p == "pht_results/newdir");
native_pre_run_case!(native_missing_result_file, |d: &Path| fs::remove_file(d.join("pht_results/a.csv")).unwrap(),
    Rejection::MissingFile(p) if p == "pht_results/a.csv");
native_pre_run_case!(
    native_unknown_top_level_entry,
    |d: &Path| fs::write(d.join("extra"), b"x").unwrap(),
    Rejection::BadEntry(_)
);

// --- native: configuration -------------------------------------------------------------------

native_pre_run_case!(
    native_whitespace_in_config,
    |d: &Path| {
        let p = d.join("train_config.json");
        let mut b = fs::read(&p).unwrap();
        b.insert(1, b' ');
        fs::write(p, b).unwrap();
    },
    Rejection::NonCanonicalConfig
);
native_pre_run_case!(
    native_uppercase_hex,
    |d: &Path| edit_json(d, |v| {
        let s = v["creator_signature"].as_str().unwrap().to_uppercase();
        v["creator_signature"] = s.into();
    }),
    Rejection::ConfigSchema(_)
);
native_pre_run_case!(
    native_unknown_field,
    |d: &Path| edit_json(d, |v| v["note"] = "hi".into()),
    Rejection::ConfigSchema(_)
);
native_pre_run_case!(
    native_train_file_listed_twice,
    |d: &Path| edit_json(d, |v| {
        let first = v["train"]["files"][0].clone();
        v["train"]["files"].as_array_mut().unwrap().push(first);
    }),
    Rejection::ConfigSchema(m) if m.contains("twice")
);
native_pre_run_case!(
    native_result_listed_twice,
    |d: &Path| edit_json(d, |v| {
        let first = v["stops"][0]["results"][0].clone();
        v["stops"][0]["results"].as_array_mut().unwrap().push(first);
    }),
    Rejection::ConfigSchema(m) if m.contains("twice")
);
native_pre_run_case!(
    native_entrypoint_changed,
    |d: &Path| edit_json(d, |v| v["train"]["entrypoint"] = "model/weights.bin".into()),
    Rejection::CreatorSignature
);
native_pre_run_case!(
    native_manifest_hash_changed,
    |d: &Path| edit_json(d, |v| {
        v["train"]["files"][0]["sha256"] = "00".repeat(32).into();
    }),
    Rejection::CreatorSignature
);
native_pre_run_case!(
    native_route_key_replaced,
    |d: &Path| edit_json(d, |v| {
        v["train"]["route"][2]["public_key"] = public(5).to_pem().into();
    }),
    Rejection::CreatorSignature
);
native_pre_run_case!(
    native_master_image_set,
    |d: &Path| edit_json(d, |v| v["train"]["master_image"] = "sha256:00".into()),
    Rejection::CreatorSignature
);
native_pre_run_case!(
    native_builder_signature_changed,
    |d: &Path| edit_json(d, |v| {
        let s = v["build"]["signature"].as_str().unwrap().replace('a', "b");
        v["build"]["signature"] = s.into();
    }),
    Rejection::BuilderSignature(_)
);
native_pre_run_case!(
    native_dispatch_signature_changed,
    |d: &Path| edit_json(d, |v| {
        let s = v["dispatch"]["signature"]
            .as_str()
            .unwrap()
            .replace('a', "b");
        v["dispatch"]["signature"] = s.into();
    }),
    Rejection::DispatchSignature
);
native_pre_run_case!(
    native_session_id_changed,
    |d: &Path| edit_json(d, |v| v["stops"][0]["session_id"] = "11".repeat(32).into()),
    Rejection::ChainDigest { index: 0, .. }
);
native_pre_run_case!(
    native_results_manifest_changed,
    |d: &Path| edit_json(d, |v| {
        v["stops"][0]["results"][0]["size"] = 5.into();
    }),
    Rejection::ChainDigest { index: 0, .. }
);
native_pre_run_case!(
    native_stop_signature_changed,
    |d: &Path| edit_json(d, |v| {
        let s = v["stops"][0]["signature"]
            .as_str()
            .unwrap()
            .replace('a', "b");
        v["stops"][0]["signature"] = s.into();
    }),
    Rejection::ChainSignature { index: 0, .. }
);
native_pre_run_case!(
    native_key_wraps_swapped,
    |d: &Path| edit_json(d, |v| {
        let w1 = v["keys"][1]["wrapped"].clone();
        v["keys"][1]["wrapped"] = v["keys"][2]["wrapped"].clone();
        v["keys"][2]["wrapped"] = w1;
    }),
    Rejection::KeyWraps
);
native_pre_run_case!(
    native_stop_removed,
    |d: &Path| edit_json(d, |v| {
        v["stops"].as_array_mut().unwrap().clear();
    }),
    Rejection::KeyWraps
);
native_pre_run_case!(
    native_path_traversal_in_manifest,
    |d: &Path| edit_json(d, |v| v["train"]["files"][0]["path"] =
        "../../etc/passwd".into()),
    Rejection::UnsafePath(_)
);

// --- native: turn, replay, keys, pins ----------------------------------------------------------

#[test]
fn native_skipped_station_is_refused() {
    let f = after_first_stop(Format::Native);
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&f.station(2)),
        |e| matches!(e.rejection(), Some(Rejection::NotYourTurn { index: 2, .. })),
    );
}

#[test]
fn native_replayed_older_state_is_refused() {
    let f = after_first_stop(Format::Native);
    let old = f.tmp.path().join("old");
    copy_tree(&f.dir, &old);
    f.run_stop(1, &[]);
    // The state that station 1 already ran is replayed to station 1, and to station 2.
    fs::remove_dir_all(&f.dir).unwrap();
    fs::rename(&old, &f.dir).unwrap();
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&f.station(2)),
        |e| matches!(e.rejection(), Some(Rejection::NotYourTurn { .. })),
    );
}

#[test]
fn native_rerun_of_the_same_stop_is_refused() {
    let f = after_first_stop(Format::Native);
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&f.station(0)),
        |e| matches!(e.rejection(), Some(Rejection::NotYourTurn { index: 0, .. })),
    );
}

#[test]
fn native_finished_train_is_refused() {
    let f = after_first_stop(Format::Native);
    f.run_stop(1, &[]);
    f.run_stop(2, &[("c.txt", b"c".to_vec())]);
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&f.station(0)),
        |e| rejected(e, &Rejection::TrainFinished),
    );
    let r = f.results();
    assert_eq!(r.get("c.txt"), Some(&Some(b"c".to_vec())));
}

#[test]
fn native_wrong_station_key_and_unknown_station() {
    let f = after_first_stop(Format::Native);
    let trust = TrustStore::default();
    let wrong = Station {
        id: &f.ids[1],
        key: station_key(2),
        trust: &trust,
    };
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&wrong),
        |e| rejected(e, &Rejection::WrongStationKey(f.ids[1].clone())),
    );
    let stranger = Station {
        id: "nobody",
        key: station_key(1),
        trust: &trust,
    };
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&stranger),
        |e| rejected(e, &Rejection::StationNotInRoute("nobody".into())),
    );
}

/// Edits the creator-signed body of a fresh native train and signs it again with the creator's
/// key: the train is then exactly what a (careless or malicious) creator could send.
fn resign_native(dir: &Path, edit: impl FnOnce(&mut train_lib::native::config::TrainBody)) {
    let p = dir.join("train_config.json");
    let mut cfg = train_lib::native::NativeConfig::parse(&fs::read(&p).unwrap()).unwrap();
    edit(&mut cfg.train);
    use train_lib::native::config::HexBytes;
    cfg.creator_signature = HexBytes(creator().sign_pss_sha256(&cfg.body_digest()).unwrap());
    cfg.build = None;
    cfg.dispatch.signature = HexBytes(creator().sign_pss_sha256(&cfg.dispatch_digest()).unwrap());
    fs::write(p, cfg.to_json()).unwrap();
}

#[test]
fn native_signed_routes_with_ids_or_keys_a_station_refuses() {
    // What `train create` refuses (train-lib/tests/cli.rs) is refused by a station with the
    // same message, even when the creator signed it.
    for (edit, want) in [
        (
            Box::new(|b: &mut train_lib::native::config::TrainBody| {
                b.route[1].id = "station-1\n".into()
            }) as Box<dyn FnOnce(&mut _)>,
            train_lib::ids::check("train.route[1].id", "station-1\n").unwrap_err(),
        ),
        (
            Box::new(|b: &mut train_lib::native::config::TrainBody| {
                b.route[1].id = " station-1".into()
            }),
            train_lib::ids::check("train.route[1].id", " station-1").unwrap_err(),
        ),
        (
            Box::new(|b: &mut train_lib::native::config::TrainBody| b.route[1].id = "..".into()),
            train_lib::ids::check("train.route[1].id", "..").unwrap_err(),
        ),
        (
            Box::new(|b: &mut train_lib::native::config::TrainBody| {
                b.route[2].public_key = b.route[0].public_key.clone()
            }),
            Rejection::SharedStationKey {
                first: "station-0".into(),
                second: "station-2".into(),
            },
        ),
        (
            Box::new(|b: &mut train_lib::native::config::TrainBody| {
                b.creator.id = "creator\u{1b}[2K".into()
            }),
            train_lib::ids::check("train.creator.id", "creator\u{1b}[2K").unwrap_err(),
        ),
    ] {
        let f = create_train(Format::Native, 3, &[("main.py", b"print(1)".to_vec())]);
        resign_native(&f.dir, edit);
        expect(
            &f,
            |_| {},
            |t| t.pre_run(&f.station(0)),
            |e| rejected(e, &want),
        );
    }
}

fn trust_file(dir: &Path, json: String) -> TrustStore {
    let p = dir.join("trust.json");
    fs::write(&p, json).unwrap();
    TrustStore::from_file(&p).unwrap()
}

#[test]
fn native_pins_refuse_keys_only_the_config_vouches_for() {
    let f = after_first_stop(Format::Native);
    // A creator pin for a different key: the config's own creator key is not trusted.
    let trust = trust_file(
        f.tmp.path(),
        format!(
            r#"{{"creators":[{{"id":"creator-1","key":"{}"}}]}}"#,
            public(5).fingerprint()
        ),
    );
    assert!(trust.pins(KeyRole::Creator));
    let st = Station {
        id: &f.ids[1],
        key: station_key(1),
        trust: &trust,
    };
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&st),
        |e| matches!(e.rejection(), Some(Rejection::UntrustedKey { role, .. }) if role == "creator"),
    );
    // Station pins that leave one route station out.
    let trust = trust_file(
        f.tmp.path(),
        format!(
            r#"{{"stations":[{{"id":"{}","key":"{}"}},{{"id":"{}","key":"{}"}}]}}"#,
            f.ids[0],
            public(2).fingerprint(),
            f.ids[1],
            public(3).fingerprint()
        ),
    );
    let st = Station {
        id: &f.ids[1],
        key: station_key(1),
        trust: &trust,
    };
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&st),
        |e| matches!(e.rejection(), Some(Rejection::UntrustedKey { role, .. }) if role == "station"),
    );
    // A pinned builder that did not sign.
    let trust = trust_file(
        f.tmp.path(),
        format!(r#"{{"builders":["{}"]}}"#, public(5).fingerprint()),
    );
    let st = Station {
        id: &f.ids[1],
        key: station_key(1),
        trust: &trust,
    };
    expect(
        &f,
        |_| {},
        |t| t.pre_run(&st),
        |e| matches!(e.rejection(), Some(Rejection::UntrustedKey { role, .. }) if role == "builder"),
    );
    // The right pins pass.
    let trust = trust_file(
        f.tmp.path(),
        format!(
            r#"{{"creators":[{{"id":"creator-1","key":"{}"}}],"builders":["{}"],"stations":[{{"id":"{}","key":"{}"}},{{"id":"{}","key":"{}"}},{{"id":"{}","key":"{}"}}]}}"#,
            public(0).fingerprint(),
            public(1).fingerprint(),
            f.ids[0],
            public(2).fingerprint(),
            f.ids[1],
            public(3).fingerprint(),
            f.ids[2],
            public(4).fingerprint()
        ),
    );
    let st = Station {
        id: &f.ids[1],
        key: station_key(1),
        trust: &trust,
    };
    f.open().pre_run(&st).unwrap();
}

#[test]
fn native_symlink_in_results_is_refused() {
    let f = after_first_stop(Format::Native);
    f.open().pre_run(&f.station(1)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", f.dir.join("pht_results/leak")).unwrap();
    expect(
        &f,
        |_| {},
        |t| t.post_run(&f.station(1)),
        |e| {
            matches!(
                e,
                ProtocolError::Tree(TreeError::NotRegular {
                    kind: "symlink",
                    ..
                })
            )
        },
    );
}

#[test]
fn native_post_run_refuses_a_train_that_changed_its_own_files() {
    let f = after_first_stop(Format::Native);
    f.open().pre_run(&f.station(1)).unwrap();
    expect(
        &f,
        |d| fs::write(d.join("pht_train/main.py"), b"print('pwned')\n").unwrap(),
        |t| t.post_run(&f.station(1)),
        |e| rejected(e, &Rejection::TrainModified("pht_train/main.py".into())),
    );
}

#[test]
fn native_post_run_refuses_a_directory_that_was_not_pre_run() {
    let f = after_first_stop(Format::Native);
    expect(
        &f,
        |_| {},
        |t| t.post_run(&f.station(1)),
        |e| matches!(e.rejection(), Some(Rejection::TrainModified(_))),
    );
}

#[test]
fn native_results_refuse_the_wrong_creator_key() {
    let f = after_first_stop(Format::Native);
    let out = f.tmp.path().join("out");
    let err = f
        .open()
        .results(station_key(0), &TrustStore::default(), &out)
        .unwrap_err();
    assert_eq!(err.rejection(), Some(&Rejection::WrongCreatorKey));
    assert!(!out.exists());
}

#[test]
fn native_first_stop_refuses_smuggled_results() {
    let f = create_train(Format::Native, 2, &[("main.py", b"x".to_vec())]);
    expect(
        &f,
        |d| fs::write(d.join("pht_results/planted.csv"), b"x").unwrap(),
        |t| t.pre_run(&f.station(0)),
        |e| matches!(e.rejection(), Some(Rejection::UnexpectedResults(_))),
    );
}

// --- legacy ----------------------------------------------------------------------------------

/// The reference's own train after station 1, ready for station 2.
fn g3_at_station_2() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("train");
    copy_tree(&vectors().join("phtmedic-g3/01-after-station_1"), &dir);
    (tmp, dir)
}

fn legacy_expect(
    attack: impl FnOnce(&Path),
    station: &str,
    key: &str,
    check: impl FnOnce(&ProtocolError) -> bool,
) {
    let (_tmp, dir) = g3_at_station_2();
    attack(&dir);
    let before = snapshot(&dir);
    let key = g3_key(key);
    let trust = TrustStore::default();
    let st = Station {
        id: station,
        key: &key,
        trust: &trust,
    };
    let err = TrainDir::open(&dir)
        .and_then(|t| t.pre_run(&st))
        .expect_err("the attack must be rejected");
    assert!(check(&err), "unexpected error: {err}");
    assert_eq!(before, snapshot(&dir));
    assert!(no_staging_left(&dir));
}

macro_rules! legacy_case {
    ($name:ident, $attack:expr, $want:pat $(if $guard:expr)?) => {
        #[test]
        fn $name() {
            legacy_expect($attack, "station_2", "station_2", |e| matches!(e.rejection(), Some($want) $(if $guard)?));
        }
    };
}

// CBC has no MAC: a flipped IV byte yields other plaintext, caught by the hashes.
legacy_case!(
    legacy_flipped_train_iv,
    |d: &Path| flip(&d.join("pht_train/entrypoint.py"), 0),
    Rejection::TrainHash
);
legacy_case!(
    legacy_flipped_result_iv,
    |d: &Path| flip(&d.join("pht_results/count.csv"), 0),
    Rejection::ResultHash
);
legacy_case!(legacy_truncated_result, |d: &Path| {
        let p = d.join("pht_results/plots/hist.bin");
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..b.len() - 3]).unwrap();
    }, Rejection::Decrypt { path, .. } if path == "pht_results/plots/hist.bin");
legacy_case!(legacy_extra_train_file, |d: &Path| fs::write(d.join("pht_train/extra.py"), b"x").unwrap(),
    Rejection::UnlistedFile(p) if p == "pht_train/extra.py");
legacy_case!(legacy_missing_train_file, |d: &Path| fs::remove_file(d.join("pht_train/r_script.r")).unwrap(),
    Rejection::MissingFile(p) if p == "pht_train/r_script.r");
legacy_case!(
    legacy_hash_changed,
    |d: &Path| edit_json(d, |v| v["hash"] = "00".repeat(64).into()),
    Rejection::CreatorSignature
);
legacy_case!(
    legacy_creator_signature_changed,
    |d: &Path| edit_json(d, |v| {
        let s = v["signature"].as_str().unwrap().replace('a', "b");
        v["signature"] = s.into();
    }),
    Rejection::CreatorSignature
);
legacy_case!(
    legacy_builder_signature_changed,
    |d: &Path| edit_json(d, |v| {
        let s = v["build"]["signature"].as_str().unwrap().replace('a', "b");
        v["build"]["signature"] = s.into();
    }),
    Rejection::BuilderSignature(_)
);
legacy_case!(
    legacy_result_hash_nulled,
    |d: &Path| edit_json(d, |v| v["result_hash"] = Value::Null),
    Rejection::ResultHash
);
legacy_case!(
    legacy_result_hash_changed,
    |d: &Path| edit_json(d, |v| v["result_hash"] = "00".repeat(64).into()),
    Rejection::ChainDigest { index: 0, .. }
);
legacy_case!(legacy_result_signature_changed, |d: &Path| edit_json(d, |v| {
        let s = v["result_signature"].as_str().unwrap().replace('a', "b");
        v["result_signature"] = s.into();
    }), Rejection::ResultSignature(s) if s == "station_1");
legacy_case!(
    legacy_stop_signature_changed,
    |d: &Path| edit_json(d, |v| {
        let s = v["route"][0]["signature"]["signature"]
            .as_str()
            .unwrap()
            .replace('a', "b");
        v["route"][0]["signature"]["signature"] = s.into();
    }),
    Rejection::ChainSignature { index: 0, .. }
);
legacy_case!(
    legacy_stop_signed_over_a_forged_digest,
    |d: &Path| edit_json(d, |v| {
        // Validly signed by station 1's own key, but not the digest of the chain: the reference
        // only checks signatures and would accept this.
        let forged = [7u8; 64];
        let sig = g3_key("station_1")
            .sign_pss_prehashed_sha512(&forged)
            .unwrap();
        v["route"][0]["signature"] =
            serde_json::json!({"digest": hex::encode(forged), "signature": hex::encode(sig)});
    }),
    Rejection::ChainDigest { index: 0, .. }
);
legacy_case!(
    legacy_key_wrap_missing,
    |d: &Path| edit_json(d, |v| v["route"][1]["encrypted_key"] = Value::Null),
    Rejection::MissingKeyWrap(_)
);
legacy_case!(
    legacy_key_wrap_for_another_key,
    |d: &Path| edit_json(d, |v| v["route"][1]["encrypted_key"] =
        v["route"][2]["encrypted_key"].clone()),
    Rejection::KeyUnwrap(_)
);
legacy_case!(
    legacy_path_traversal_in_file_list,
    |d: &Path| edit_json(d, |v| v["file_list"][0] = "../../etc/passwd".into()),
    Rejection::UnsafePath(_)
);
legacy_case!(
    legacy_unknown_top_level_entry,
    |d: &Path| fs::write(d.join("run.sh"), b"x").unwrap(),
    Rejection::BadEntry(_)
);
legacy_case!(
    legacy_route_indices_broken,
    |d: &Path| edit_json(d, |v| v["route"][2]["index"] = 7.into()),
    Rejection::RouteIndices
);
legacy_case!(
    legacy_duplicate_station,
    |d: &Path| edit_json(d, |v| v["route"][2]["station"] = "station_2".into()),
    Rejection::DuplicateStation(_)
);

#[test]
fn legacy_skip_replay_finish_and_wrong_key() {
    legacy_expect(
        |_| {},
        "station_3",
        "station_3",
        |e| matches!(e.rejection(), Some(Rejection::NotYourTurn { index: 2, .. })),
    );
    legacy_expect(
        |_| {},
        "station_1",
        "station_1",
        |e| matches!(e.rejection(), Some(Rejection::NotYourTurn { index: 0, .. })),
    );
    legacy_expect(
        |_| {},
        "station_2",
        "station_3",
        |e| rejected(e, &Rejection::WrongStationKey("station_2".into())),
    );
    legacy_expect(
        |_| {},
        "station_9",
        "station_2",
        |e| rejected(e, &Rejection::StationNotInRoute("station_9".into())),
    );
    // A finished train.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    copy_tree(&vectors().join("phtmedic-g3/03-after-station_3"), &dir);
    let key = g3_key("station_1");
    let trust = TrustStore::default();
    let err = TrainDir::open(&dir)
        .unwrap()
        .pre_run(&Station {
            id: "station_1",
            key: &key,
            trust: &trust,
        })
        .unwrap_err();
    assert_eq!(err.rejection(), Some(&Rejection::TrainFinished));
}

#[test]
fn legacy_first_station_refuses_planted_results_and_a_set_result_hash() {
    for attack in [
        Box::new(|d: &Path| fs::write(d.join("pht_results/planted.csv"), b"x").unwrap())
            as Box<dyn Fn(&Path)>,
        Box::new(|d: &Path| edit_json(d, |v| v["result_hash"] = "00".repeat(64).into())),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        copy_tree(&vectors().join("phtmedic-g3/00-built"), &dir);
        fs::create_dir_all(dir.join("pht_results")).unwrap();
        attack(&dir);
        let before = snapshot(&dir);
        let key = g3_key("station_1");
        let trust = TrustStore::default();
        let err = TrainDir::open(&dir)
            .unwrap()
            .pre_run(&Station {
                id: "station_1",
                key: &key,
                trust: &trust,
            })
            .unwrap_err();
        assert!(
            matches!(err.rejection(), Some(Rejection::UnexpectedResults(_))),
            "{err}"
        );
        assert_eq!(before, snapshot(&dir));
    }
}

#[test]
fn legacy_pins_apply_too() {
    let (tmp, dir) = g3_at_station_2();
    let p = tmp.path().join("trust.json");
    fs::write(
        &p,
        format!(
            r#"{{"stations":[{{"id":"station_2","key":"{}"}}]}}"#,
            g3_key("station_2").public().fingerprint()
        ),
    )
    .unwrap();
    let trust = TrustStore::from_file(&p).unwrap();
    let key = g3_key("station_2");
    let err = TrainDir::open(&dir)
        .unwrap()
        .pre_run(&Station {
            id: "station_2",
            key: &key,
            trust: &trust,
        })
        .unwrap_err();
    assert!(
        matches!(err.rejection(), Some(Rejection::UntrustedKey { role, id, .. }) if role == "station" && id == "station_1"),
        "{err}"
    );
}

#[test]
fn legacy_post_run_refuses_modified_train_files_and_symlinks() {
    let f = create_train(Format::Legacy, 2, &[("main.py", b"print(1)".to_vec())]);
    f.open().pre_run(&f.station(0)).unwrap();
    expect(
        &f,
        |d| fs::write(d.join("pht_train/main.py"), b"print(2)").unwrap(),
        |t| t.post_run(&f.station(0)),
        |e| matches!(e.rejection(), Some(Rejection::TrainModified(_))),
    );
    fs::write(f.dir.join("pht_train/main.py"), b"print(1)").unwrap();
    expect(
        &f,
        |d| std::os::unix::fs::symlink("/etc/shadow", d.join("pht_results/x")).unwrap(),
        |t| t.post_run(&f.station(0)),
        |e| matches!(e, ProtocolError::Tree(TreeError::NotRegular { .. })),
    );
}

#[test]
fn key_loading_failures_are_specific() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("k.pem");
    fs::write(&p, b"not a key").unwrap();
    assert!(matches!(
        PrivateKey::from_file(&p, None),
        Err(train_lib::keys::KeyError::Format { .. })
    ));
    assert!(matches!(
        PrivateKey::from_file(&tmp.path().join("nope"), None),
        Err(train_lib::keys::KeyError::Read { .. })
    ));
    fs::write(&p, public(0).to_pem()).unwrap();
    assert!(matches!(
        PrivateKey::from_file(&p, None),
        Err(train_lib::keys::KeyError::Format { .. })
    ));
}
