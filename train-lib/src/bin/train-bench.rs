//! Benchmark (filled in below).
fn main() {}
