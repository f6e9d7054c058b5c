#![no_main]
// The body, and what it asserts, is fuzz_bodies::stream_decrypt (replayed over the corpus by cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_bodies::stream_decrypt(data));
