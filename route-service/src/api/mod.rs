//! The HTTP API under `/v1` (axum), its OpenAPI document at `/openapi.json` (utoipa), SSE
//! feeds, registry notification endpoints, health and metrics.
//!
//! Roles, least privilege: an **admin** sees and manages everything; a **creator** submits
//! trains and sees and cancels only its own; a **station** sees only trains whose open hop is
//! its own, reports on them and approves or rejects them. Denials are logged with the principal
//! and answered 403; unknown principals and wrong keys 401.

pub(crate) mod caller;
mod doc;
mod error;
pub(crate) mod feeds;
mod health;
pub(crate) mod registry_events;
mod rejections;
pub(crate) mod station_self;
pub(crate) mod stations;
pub mod streams;
mod token;
pub(crate) mod trains;

pub use caller::Caller;
pub use error::Failure;

use crate::config::Config;
use crate::db::Db;
use crate::mover::Mover;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::path::PathBuf;
use std::sync::Arc;
use train_image::Registry;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The state store.
    pub db: Db,
    /// The movers (for pushes announced by notifications and reports).
    pub mover: Arc<Mover>,
    /// Registry access (submission checks, outbox reads).
    pub reg: Registry,
    /// The settings.
    pub cfg: Arc<Config>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Where submissions are unpacked for verification (private, ciphertext only).
    pub work: PathBuf,
    /// Cancelled at shutdown: feeds and long-polls end so the server can stop.
    pub stop: tokio_util::sync::CancellationToken,
    /// The registry token issuer, when configured.
    pub tokens: Option<Arc<crate::token::TokenIssuer>>,
    /// Open feeds and long-polls per principal.
    pub streams: Arc<streams::Streams>,
}

pub use doc::openapi;

/// The router with every endpoint, and `pages` (the dashboard's routes) under the same
/// layers.
pub fn router(st: AppState, pages: Router<AppState>) -> Router {
    let body_limit = st.cfg.max_body_bytes;
    Router::new()
        .route("/v1/trains", post(trains::submit).get(trains::list))
        .route("/v1/trains/{id}", get(trains::get_one))
        .route("/v1/trains/{id}/cancel", post(trains::cancel))
        .route("/v1/trains/{id}/retry", post(trains::retry))
        .route("/v1/trains/{id}/reports", post(stations::report))
        .route("/v1/trains/{id}/approve", post(stations::approve))
        .route("/v1/trains/{id}/reject", post(stations::reject))
        .route("/v1/trains/{id}/events", get(feeds::train_feed))
        .route("/v1/stations", get(stations::list_stations))
        .route(
            "/v1/stations/{id}/key",
            get(stations::station_key).post(station_self::propose_key),
        )
        .route(
            "/v1/stations/{id}/key/accept",
            post(station_self::accept_key),
        )
        .route(
            "/v1/stations/{id}/approval",
            axum::routing::put(station_self::set_approval),
        )
        .route("/v1/stations/{id}/inbox", get(stations::inbox))
        .route("/v1/stations/{id}/events", get(feeds::station_feed))
        .route("/v1/creators", get(stations::list_creators))
        .route(
            "/v1/registry-events/distribution",
            post(registry_events::distribution),
        )
        .route("/v1/registry-events/harbor", post(registry_events::harbor))
        .route(
            "/v1/notifications",
            get(registry_events::list_notifications),
        )
        .route("/v1/registry-token", get(token::issue))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi_json))
        .merge(pages)
        .fallback(rejections::unknown_route)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            rejections::json_errors,
        ))
        .with_state(st)
}
