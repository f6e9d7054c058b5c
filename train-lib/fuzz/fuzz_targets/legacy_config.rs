#![no_main]
// Untrusted PHT-meDIC configuration bytes: parse, route ordering, file names, keys.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = train_lib::legacy::LegacyConfig::parse(data) {
        let _ = c.ordered_route();
        if let Ok(files) = c.train_files() {
            for f in files {
                // Whatever the config says, names that reach the file system stay inside pht_train.
                assert!(!f.starts_with('/') && !f.split('/').any(|p| p == ".." || p.is_empty()));
            }
        }
        let _ = c.creator_key();
        let _ = c.to_json();
    }
});
