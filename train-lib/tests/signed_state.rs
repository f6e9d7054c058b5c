//! `signed_state`: what a configuration alone proves (the route service counts a push by it),
//! on the native vectors and on PHT-meDIC's own legacy trains, and what it refuses.

mod support;

use std::path::Path;
use train_lib::keys::{public_key_from_file, TrustStore};
use train_lib::{signed_state, Format, ProtocolError, Rejection};

const NATIVE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/native-v1");

fn config(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("train_config.json")).unwrap()
}

#[test]
fn each_native_state_counts_the_stops_that_signed_it() {
    for (dir, done) in [
        ("00-created", 0),
        ("01-after-station-a", 1),
        ("02-after-station-b", 2),
        ("03-after-station-c", 3),
    ] {
        let s = signed_state(
            &config(&Path::new(NATIVE).join(dir)),
            &TrustStore::default(),
        )
        .unwrap();
        assert_eq!((s.format, s.stops_done), (Format::Native, done), "{dir}");
        assert_eq!(s.route.len(), 3);
    }
}

#[test]
fn legacy_states_of_the_reference_count_their_stops_too() {
    let g3 = support::vectors().join("phtmedic-g3");
    for (dir, done) in [("00-built", 0), ("02-after-station_2", 2)] {
        let s = signed_state(&config(&g3.join(dir)), &TrustStore::default()).unwrap();
        assert_eq!((s.format, s.stops_done), (Format::Legacy, done), "{dir}");
    }
}

#[test]
fn a_stop_signature_that_does_not_verify_or_a_key_that_is_not_pinned_is_refused() {
    let dir = Path::new(NATIVE).join("02-after-station-b");
    let text = String::from_utf8(config(&dir)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The last stop's signature, one hex digit changed.
    let sig = v["stops"][1]["signature"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    let bad = text.replace(&sig, &flipped);
    let e = signed_state(bad.as_bytes(), &TrustStore::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ProtocolError::Rejected(Rejection::ChainSignature { index: 1, .. })
        ),
        "{e}"
    );
    // Pinned to another key for station-b: refused whatever the signatures say.
    let other = public_key_from_file(&Path::new(NATIVE).join("keys/station-c.pub.pem")).unwrap();
    let creator = public_key_from_file(&Path::new(NATIVE).join("keys/creator.pub.pem")).unwrap();
    let trust = TrustStore::pinned(
        &[("creator", creator.fingerprint().as_str())],
        &[("station-b", other.fingerprint().as_str())],
    );
    assert!(signed_state(&config(&dir), &trust).is_err());
}
