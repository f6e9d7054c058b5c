#![no_main]
// The body, and what it asserts, is e2e::fuzz::native_config (replayed over the corpus by cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| e2e::fuzz::native_config(data));
