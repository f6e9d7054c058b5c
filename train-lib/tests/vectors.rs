//! Known-answer tests on `../shared/vectors`: trains produced by PHT-meDIC 2.0.5 itself.

mod support;

use aws_lc_rs::digest::{digest, SHA512};
use std::fs;
use support::*;
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{legacy, Rejection, Station, TrainDir};

fn station<'a>(id: &'a str, key: &'a PrivateKey, trust: &'a TrustStore) -> Station<'a> {
    Station { id, key, trust }
}

#[test]
fn g3_every_stop_pre_runs_and_the_creator_reads_the_expected_results() {
    let v = vectors().join("phtmedic-g3");
    let trust = TrustStore::default();
    let tmp = tempfile::tempdir().unwrap();
    for (state, st) in [
        ("00-built", "station_1"),
        ("01-after-station_1", "station_2"),
        ("02-after-station_2", "station_3"),
    ] {
        let dir = tmp.path().join(state);
        copy_tree(&v.join(state), &dir);
        let key = g3_key(st);
        let r = TrainDir::open(&dir)
            .unwrap()
            .pre_run(&station(st, &key, &trust))
            .unwrap();
        assert_eq!(r.format, "legacy");
        assert_eq!(
            snapshot(&dir.join("pht_train")),
            snapshot(&v.join("expected-train-files")),
            "{state}"
        );
    }
    let dir = tmp.path().join("03");
    copy_tree(&v.join("03-after-station_3"), &dir);
    let out = tmp.path().join("results");
    TrainDir::open(&dir)
        .unwrap()
        .results(&g3_key("user"), &trust, &out)
        .unwrap();
    assert_eq!(snapshot(&out), snapshot(&v.join("expected-results")));
}

#[test]
fn g3_our_post_run_reproduces_the_reference_chain_digests() {
    // Station 1's post-run over the same plaintext must give the reference's result_hash and
    // chain digest (signatures differ: PSS is randomised).
    let v = vectors().join("phtmedic-g3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    copy_tree(&v.join("00-built"), &dir);
    let trust = TrustStore::default();
    let key = g3_key("station_1");
    let t = TrainDir::open(&dir).unwrap();
    t.pre_run(&station("station_1", &key, &trust)).unwrap();
    // The results station 1 produced, decrypted from the next state.
    let next = tmp.path().join("next");
    copy_tree(&v.join("01-after-station_1"), &next);
    let k2 = g3_key("station_2");
    TrainDir::open(&next)
        .unwrap()
        .pre_run(&station("station_2", &k2, &trust))
        .unwrap();
    copy_tree(&next.join("pht_results"), &dir.join("pht_results"));
    t.post_run(&station("station_1", &key, &trust)).unwrap();
    let ours: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("train_config.json")).unwrap()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&fs::read(v.join("01-after-station_1/train_config.json")).unwrap())
            .unwrap();
    assert_eq!(ours["result_hash"], theirs["result_hash"]);
    assert_eq!(
        ours["route"][0]["signature"]["digest"],
        theirs["route"][0]["signature"]["digest"]
    );
    assert_eq!(ours["hash"], theirs["hash"]);
    // And station 2 accepts what we wrote.
    t.pre_run(&station("station_2", &k2, &trust)).unwrap();
}

#[test]
fn desktop_app_known_answers() {
    let v = vectors().join("phtmedic-desktop-app");
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("xf")
        .arg(v.join("result.tar"))
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let key = PrivateKey::from_file(&v.join("private.pem"), Some(b"leuko")).unwrap();
    assert!(matches!(
        PrivateKey::from_file(&v.join("private.pem"), Some(b"wrong")),
        Err(train_lib::keys::KeyError::Password { .. })
    ));
    assert!(matches!(
        PrivateKey::from_file(&v.join("private.pem"), None),
        Err(train_lib::keys::KeyError::Password { .. })
    ));
    let cfg = legacy::LegacyConfig::parse(&fs::read(tmp.path().join("train_config.json")).unwrap())
        .unwrap();
    assert!(cfg.build.is_none(), "older config without build");
    let sym = key
        .oaep_unwrap(
            legacy::OAEP,
            &hex::decode(cfg.creator.encrypted_key.as_ref().unwrap()).unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(
        hex::encode(&sym[..]),
        "f1bf92cc39dd3d9c72b373e4cb93b8a4c5288dbbe6ada3c3c07a95a4c5fba971"
    );

    let out = tmp.path().join("out");
    TrainDir::open(tmp.path())
        .unwrap()
        .results(&key, &TrustStore::default(), &out)
        .unwrap();
    let plain = fs::read(out.join("station_acc.csv")).unwrap();
    assert_eq!(plain, b"acc\n1.0 \n");
    let mut m = plain.clone();
    m.extend(hex::decode(&cfg.session_id).unwrap());
    assert_eq!(
        hex::encode(digest(&SHA512, &m)),
        cfg.result_hash.clone().unwrap()
    );

    let route_key =
        train_lib::keys::public_key_from_text(cfg.route[0].rsa_public_key.as_bytes(), "route")
            .unwrap();
    let rh = hex::decode(cfg.result_hash.as_ref().unwrap()).unwrap();
    assert!(route_key.verify_pss_prehashed_sha512(
        &rh,
        &hex::decode(cfg.result_signature.as_ref().unwrap()).unwrap()
    ));
    let sig = cfg.route[0].signature.as_ref().unwrap();
    assert!(route_key.verify_pss_prehashed_sha512(
        &hex::decode(&sig.digest).unwrap(),
        &hex::decode(&sig.signature).unwrap()
    ));
    let mut d0 = hex::decode(&cfg.session_id).unwrap();
    d0.extend(&rh);
    assert_eq!(hex::encode(digest(&SHA512, &d0)), sig.digest);
    let creator = cfg.creator_key().unwrap();
    assert!(creator.verify_pkcs1_sha512(
        &hex::decode(&cfg.hash).unwrap(),
        &hex::decode(&cfg.signature).unwrap()
    ));
    assert_eq!(&creator, key.public());

    // The train files are not in the tar: verify says so and fails.
    let rep = TrainDir::open(tmp.path())
        .unwrap()
        .verify(&TrustStore::default())
        .unwrap();
    assert!(!rep.ok());
    assert!(rep
        .checks
        .iter()
        .any(|c| !c.ok && c.detail.contains("missing")));
    // A wrong creator key is refused before anything is written.
    let err = TrainDir::open(tmp.path())
        .unwrap()
        .results(
            &g3_key("user"),
            &TrustStore::default(),
            &tmp.path().join("o2"),
        )
        .unwrap_err();
    assert_eq!(err.rejection(), Some(&Rejection::WrongCreatorKey));
    assert!(!tmp.path().join("o2").exists());
}

#[test]
fn key_encodings_all_load_to_the_same_key() {
    let v = vectors().join("phtmedic-g3/keys");
    let pkcs1 = fs::read(v.join("station_1.key.pem")).unwrap();
    assert!(String::from_utf8_lossy(&pkcs1).contains("BEGIN RSA PRIVATE KEY"));
    let k1 = PrivateKey::from_text(&pkcs1, None, "pkcs1").unwrap();
    let k8 = PrivateKey::from_text(k1.to_pkcs8_pem().unwrap().as_bytes(), None, "pkcs8").unwrap();
    let hexed = PrivateKey::from_text(hex::encode(&pkcs1).as_bytes(), None, "env").unwrap();
    assert_eq!(k1.public(), k8.public());
    assert_eq!(k1.public(), hexed.public());
    let spki = train_lib::keys::public_key_from_file(&v.join("station_1.pub.pem")).unwrap();
    assert_eq!(&spki, k1.public());
    assert!(format!("{k1:?}").contains("redacted"));
    assert!(!format!("{k1:?}").contains("PRIVATE"));
}

#[test]
fn station_ids_compare_by_string_form() {
    // The reference turns numeric-looking ids into numbers; `2` in the config is station "2".
    let v = vectors().join("phtmedic-g3");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    copy_tree(&v.join("01-after-station_1"), &dir);
    let p = dir.join("train_config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    cfg["route"][1]["station"] = 2.into();
    fs::write(&p, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let key = g3_key("station_2");
    let trust = TrustStore::default();
    TrainDir::open(&dir)
        .unwrap()
        .pre_run(&station("2", &key, &trust))
        .unwrap();
    // And the string form of a number written as a string, with the reference's int() rules.
    cfg["route"][1]["station"] = "002".into();
    let dir2 = tmp.path().join("t2");
    copy_tree(&v.join("01-after-station_1"), &dir2);
    fs::write(
        dir2.join("train_config.json"),
        serde_json::to_vec_pretty(&cfg).unwrap(),
    )
    .unwrap();
    TrainDir::open(&dir2)
        .unwrap()
        .pre_run(&station("2", &key, &trust))
        .unwrap();
}
