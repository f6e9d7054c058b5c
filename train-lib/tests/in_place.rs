//! Pre-run decrypts the train directory's own files in place, in both formats. These tests feed
//! it the cases that path must survive: a rejection found only after whole files were rewritten,
//! files shared with another directory, a signal mid-rewrite, and a directory left behind by a
//! killed pre-run.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use support::*;
use train_lib::crypto::{hasher::SplitHasher, stream};
use train_lib::error::ProtocolError;
use train_lib::keys::TrustStore;
use train_lib::native::{NativeConfig, OAEP, OAEP_LABEL};
use train_lib::{Format, Rejection};

/// A native train that station 0 has run: a 200 KiB model, a large and a small result.
fn fixture() -> Fixture {
    fixture_in(Format::Native)
}

fn fixture_in(format: Format) -> Fixture {
    run_first_stop(format, 3 << 20)
}

/// Contents, mode and modification time of every file.
/// The file key, as any participant can unwrap it: here station 1, whose turn it is.
fn file_key(f: &Fixture) -> [u8; 32] {
    let cfg = NativeConfig::parse(&fs::read(f.dir.join("train_config.json")).unwrap()).unwrap();
    let me = station_key(1);
    let wrap = cfg
        .keys
        .iter()
        .find(|w| w.fingerprint == me.public().fingerprint())
        .unwrap();
    let key = me
        .oaep_unwrap(OAEP, &wrap.wrapped.0, Some(OAEP_LABEL))
        .unwrap();
    key[..].try_into().unwrap()
}

fn seal(key: &[u8; 32], role: &str, path: &str, plain: &[u8]) -> Vec<u8> {
    let mut ct = Vec::new();
    let mut h = SplitHasher::new(&aws_lc_rs::digest::SHA256, 0);
    stream::encrypt(
        &stream::file_key(key, role, path),
        plain,
        &mut ct,
        &mut h,
        0,
    )
    .unwrap();
    ct
}

fn rejection(e: ProtocolError) -> Rejection {
    match e {
        ProtocolError::Rejected(r) => r,
        other => panic!("expected a rejection, got: {other}"),
    }
}

/// A participant holds the file key and can seal other bytes that authenticate; only the signed
/// SHA-256 catches it, after the whole file (and others beside it) was decrypted in place. Every
/// file must come back byte for byte, with its mode and modification time.
#[test]
fn a_participant_resealing_a_file_is_caught_and_every_file_is_put_back() {
    for (role, rel, path, len, want) in [
        (
            "results",
            "pht_results/plots/b.bin",
            "plots/b.bin",
            3 << 20,
            Rejection::ResultFile("pht_results/plots/b.bin".into()),
        ),
        (
            "train",
            "pht_train/model/weights.bin",
            "model/weights.bin",
            200 * 1024,
            Rejection::TrainFile("pht_train/model/weights.bin".into()),
        ),
    ] {
        let f = fixture();
        let key = file_key(&f);
        // Same length as the signed manifest says, other bytes.
        let mut other = bytes(len, 77);
        other[len / 2] ^= 1;
        fs::write(f.dir.join(rel), seal(&key, role, path, &other)).unwrap();
        // Modes the pre-run would change, so that restoring them is checked too.
        for p in ["pht_results/a.csv", rel] {
            fs::set_permissions(f.dir.join(p), fs::Permissions::from_mode(0o640)).unwrap();
        }
        let before = state(&f.dir);
        let err = f.open().pre_run(&f.station(1)).unwrap_err();
        assert_eq!(rejection(err), want);
        assert!(before == state(&f.dir), "{rel}: directory changed");
        assert!(no_staging_left(&f.dir));
    }
}

/// Legacy (CBC, no MAC): a changed byte decrypts to other bytes and is caught only by the result
/// hash, after every file was decrypted in place; all of them are encrypted back, byte for byte.
#[test]
fn legacy_result_hash_mismatch_puts_every_file_back() {
    let f = fixture_in(Format::Legacy);
    let p = f.dir.join("pht_results/plots/b.bin");
    let mut b = fs::read(&p).unwrap();
    b[1_000_000] ^= 0x20;
    fs::write(&p, b).unwrap();
    fs::set_permissions(
        f.dir.join("pht_train/main.py"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let before = state(&f.dir);
    let err = f.open().pre_run(&f.station(1)).unwrap_err();
    assert_eq!(rejection(err), Rejection::ResultHash);
    assert!(before == state(&f.dir), "directory changed");
    assert!(no_staging_left(&f.dir));
}

#[test]
fn decrypted_files_are_private() {
    let f = fixture();
    fs::set_permissions(
        f.dir.join("pht_results/a.csv"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    f.open().pre_run(&f.station(1)).unwrap();
    for rel in [
        "pht_results/a.csv",
        "pht_results/plots/b.bin",
        "pht_train/main.py",
    ] {
        let mode = fs::metadata(f.dir.join(rel)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{rel}");
    }
    assert_eq!(fs::read(f.dir.join("pht_results/a.csv")).unwrap(), b"a,1\n");
}

/// A file hard-linked from elsewhere must not receive plaintext: the pre-run decrypts into a
/// staging copy instead, and the other name keeps its ciphertext.
#[test]
fn hard_linked_files_are_not_rewritten() {
    for format in [Format::Native, Format::Legacy] {
        let f = fixture_in(format);
        let outside = f.tmp.path().join("kept-elsewhere.bin");
        fs::hard_link(f.dir.join("pht_results/plots/b.bin"), &outside).unwrap();
        let ciphertext = fs::read(&outside).unwrap();
        f.open().pre_run(&f.station(1)).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), ciphertext, "{format}");
        assert_eq!(
            fs::read(f.dir.join("pht_results/plots/b.bin")).unwrap(),
            bytes(3 << 20, 9)
        );
        assert!(no_staging_left(&f.dir));
    }
}

/// The staging path rejects and leaves everything as it was, too.
#[test]
fn the_staging_path_rejects_without_a_trace() {
    let f = fixture();
    let outside = f.tmp.path().join("kept-elsewhere.csv");
    fs::hard_link(f.dir.join("pht_results/a.csv"), &outside).unwrap();
    let p = f.dir.join("pht_results/plots/b.bin");
    let mut b = fs::read(&p).unwrap();
    b[100_000] ^= 1;
    fs::write(&p, b).unwrap();
    let before = state(&f.dir);
    let err = f.open().pre_run(&f.station(1)).unwrap_err();
    assert!(
        matches!(rejection(err), Rejection::Decrypt { ref path, .. } if path == "pht_results/plots/b.bin")
    );
    assert!(before == state(&f.dir));
    assert!(no_staging_left(&f.dir));
}

/// A pre-run killed while rewriting leaves its marker; every later step refuses the directory
/// with the check that says what happened, instead of failing on half-decrypted files.
#[test]
fn a_directory_left_by_a_killed_pre_run_is_refused_by_every_step() {
    let f = fixture();
    let t = f.open();
    fs::write(f.dir.join(".pht-pre-run-in-progress"), b"").unwrap();
    let is_interrupted = |r: Result<train_lib::StepReport, ProtocolError>| {
        matches!(r.map_err(rejection), Err(Rejection::Interrupted(_)))
    };
    assert!(is_interrupted(t.pre_run(&f.station(1))));
    assert!(is_interrupted(t.post_run(&f.station(1))));
    let out = f.tmp.path().join("out");
    assert!(is_interrupted(t.results(
        creator(),
        &TrustStore::default(),
        &out
    )));
    assert!(matches!(
        train_lib::TrainDir::open(&f.dir).map_err(rejection),
        Err(Rejection::Interrupted(_))
    ));
    let report = t.verify(&TrustStore::default());
    assert!(
        report.as_ref().map_or(true, |r| !r.ok()),
        "verify must not pass a damaged directory"
    );
}
