#![no_main]
// The body, and what it asserts, is fuzz_bodies::api_bodies (replayed over the corpus by cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_bodies::api_bodies(data));
