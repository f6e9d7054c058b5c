//! The committed fuzz corpus (`train-lib/fuzz/corpus/<target>/`), replayed through the
//! targets' bodies in plain `cargo test`: what a fuzzing run once found stays fixed.

use std::path::Path;

#[test]
fn every_corpus_input_of_every_target_passes_its_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../train-lib/fuzz/corpus");
    let mut n = 0;
    for (name, body) in fuzz_bodies::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target has a corpus)", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: no corpus");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(r.is_ok(), "{name}: {} fails its checks", f.display());
            n += 1;
        }
    }
    assert!(n >= fuzz_bodies::TARGETS.len());
}

#[test]
fn every_fuzz_target_has_a_binary_and_every_binary_a_body() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../train-lib/fuzz/fuzz_targets");
    let mut bins: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    bins.sort();
    let mut names: Vec<String> = fuzz_bodies::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    names.sort();
    assert_eq!(bins, names);
}
