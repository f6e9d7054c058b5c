#![no_main]
// The body, and what it asserts, is fuzz_bodies::token_scope (replayed over the corpus by cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_bodies::token_scope(data));
