#![no_main]
// Untrusted key text (configs carry hex(PEM) public keys): parse or fail cleanly.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = train_lib::keys::public_key_from_text(data, "fuzz");
    let _ = train_lib::keys::PrivateKey::from_text(data, Some(b"pw"), "fuzz");
});
