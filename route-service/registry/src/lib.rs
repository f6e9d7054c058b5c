//! What the route service speaks with registries, apart from the service itself: the bodies of
//! their notifications ([`notify`]) and the token issuer's grammar, grants and signing
//! ([`token`]). A crate of its own so that the fuzz targets (`train-lib/fuzz`) reach these
//! parsers without compiling (and instrumenting) the HTTP service and its database drivers:
//! that build took 6 min 37 s of a CI run (docs/benchmarks.md).

pub mod notify;
pub mod token;
