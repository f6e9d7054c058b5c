//! The PHT route service as a library: it keeps every train's route, learns from registry
//! notifications (and a reconciliation pass) when a station has pushed the next state of a
//! train, and moves that state into the next station's inbox, or finally into the creator's
//! results repository, exactly once. It never holds a key that can decrypt a train: it reads
//! images only to verify signatures at submission.
//!
//! Layout: [`config`] (settings), [`db`] (SQLite or PostgreSQL through one code base: the
//! model and its persisted hop state machine), [`auth`] (API keys and roles), [`submit`]
//! (verification of a submitted image), [`notify`] (registry notification bodies),
//! [`mover`] (leased moves, reconciliation), [`api`] (the axum router, SSE, OpenAPI) and
//! [`serve`] (everything started together, with graceful shutdown).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod capacity;
pub mod clock;
pub mod config;
pub mod db;
pub mod machine;
pub mod metrics;
pub mod mover;
pub use route_registry::notify;
pub mod serve;
pub mod submit;
pub use route_registry::token;
pub mod ui;

pub use config::Config;
pub use db::Db;
