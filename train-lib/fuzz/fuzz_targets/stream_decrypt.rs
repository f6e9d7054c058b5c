#![no_main]
// Untrusted ciphertext: decryption must reject or round-trip, never panic or write
// unauthenticated plaintext.
use libfuzzer_sys::fuzz_target;
use train_lib::crypto::{hasher::SplitHasher, stream};

fuzz_target!(|data: &[u8]| {
    let key = stream::file_key(&[9u8; 32], "results", "f.bin");
    let mut out = Vec::new();
    let mut h = SplitHasher::new(&aws_lc_rs::digest::SHA256, 0);
    let hint = data.first().copied().unwrap_or(0) as u64 * 4096;
    if stream::decrypt(&key, data, &mut out, &mut h, hint).is_ok() {
        let mut again = Vec::new();
        let mut h2 = SplitHasher::new(&aws_lc_rs::digest::SHA256, 0);
        stream::encrypt(&key, &out[..], &mut again, &mut h2, hint).unwrap();
        assert_eq!(again, data);
    } else {
        assert!(out.len() <= data.len());
    }
});
