#![no_main]
// The body, and what it asserts, is e2e::fuzz::api_bodies (replayed over the corpus by cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| e2e::fuzz::api_bodies(data));
