#![no_main]
// Untrusted layer bytes (a train layer from a registry): unpacking must never write outside the
// directory it was given, and whatever it accepts holds only files and directories.
use libfuzzer_sys::fuzz_target;
use train_image::{read_layer, LayerRole, OptTree};

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("opt");
    std::fs::create_dir(&root).unwrap();
    let mut tree = OptTree::new(&root);
    let _ = read_layer(data, "sha256:fuzz", LayerRole::Train, Some(&mut tree));
    let _ = read_layer(data, "sha256:fuzz", LayerRole::Base, None);
    // Nothing beside the tree, and no links or special files in it.
    let beside: Vec<_> = std::fs::read_dir(outer.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);
    fn walk(p: &std::path::Path) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            assert!(t.is_file() || t.is_dir(), "{:?}", e.path());
            if t.is_dir() {
                walk(&e.path());
            }
        }
    }
    walk(&root);
});
