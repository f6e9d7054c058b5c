//! Property tests: random trains over random routes arrive intact for the creator, in both
//! formats; and in the native format any single changed byte anywhere is rejected.

mod support;

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::fs;
use support::*;
use train_lib::{Format, TrainDir};

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(16),
        Just(65_535),
        Just(65_536),
        Just(65_537),
        0usize..140_000
    ]
}

fn rel_path() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c]{1,3}\\.(csv|bin)", "(sub|deep/er)/[a-c]{1,3}\\.txt",]
}

fn train_files() -> impl Strategy<Value = Vec<(String, usize)>> {
    prop::collection::btree_map(rel_path(), size(), 1..4).prop_map(|m| m.into_iter().collect())
}

fn results_per_stop(stops: usize) -> impl Strategy<Value = Vec<Vec<(String, usize, u8)>>> {
    prop::collection::vec(
        prop::collection::vec((rel_path(), size(), any::<u8>()), 0..3),
        stops,
    )
}

/// Per stop: the result writes (path, size, seed); the train files; whether legacy.
type Route = (Vec<Vec<(String, usize, u8)>>, Vec<(String, usize)>, bool);

fn route_and_results() -> impl Strategy<Value = Route> {
    (1usize..=4).prop_flat_map(|n| (results_per_stop(n), train_files(), any::<bool>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_route_delivers_the_results((per_stop, files, legacy) in route_and_results()) {
        let format = if legacy { Format::Legacy } else { Format::Native };
        let owned: Vec<(String, Vec<u8>)> = files.iter().enumerate().map(|(i, (p, n))| (p.clone(), bytes(*n, i as u8))).collect();
        let src: Vec<(&str, Vec<u8>)> = owned.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
        let f = create_train(format, per_stop.len(), &src);
        let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (i, writes) in per_stop.iter().enumerate() {
            let w: Vec<(String, Vec<u8>)> = writes.iter().map(|(p, n, seed)| (p.clone(), bytes(*n, *seed))).collect();
            // A later write to a path that is a directory (or under a file) is skipped.
            let w: Vec<(String, Vec<u8>)> = w.into_iter().filter(|(p, _)| {
                !expected.keys().any(|k| k.starts_with(&format!("{p}/")) || p.starts_with(&format!("{k}/")))
            }).collect();
            for (p, b) in &w {
                expected.insert(p.clone(), b.clone());
            }
            let refs: Vec<(&str, Vec<u8>)> = w.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
            f.run_stop(i, &refs);
        }
        // The train files come back unchanged at every stop; check at the last.
        let got: BTreeMap<String, Vec<u8>> = f.results().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        prop_assert_eq!(got, expected);
        let rep = f.open().verify(&train_lib::keys::TrustStore::default()).unwrap();
        prop_assert!(rep.ok(), "{:?}", rep.checks);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn native_any_single_byte_change_is_rejected(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let f = create_train(Format::Native, 2, &[("main.py", bytes(100, 1)), ("m/w.bin", bytes(70_000, 2))]);
        f.run_stop(0, &[("r.csv", bytes(10, 3)), ("p/q.bin", bytes(66_000, 4))]);
        let files: Vec<_> = snapshot(&f.dir).into_iter().filter_map(|(k, v)| v.map(|_| k)).collect();
        let victim = f.dir.join(pick.get(&files));
        let mut data = fs::read(&victim).unwrap();
        let i = at.index(data.len());
        data[i] ^= x;
        fs::write(&victim, &data).unwrap();
        let before = snapshot(&f.dir);
        let res = TrainDir::open(&f.dir).and_then(|t| t.pre_run(&f.station(1)));
        prop_assert!(res.is_err(), "changing byte {} of {} was accepted", i, victim.display());
        prop_assert_eq!(before, snapshot(&f.dir));
    }
}
