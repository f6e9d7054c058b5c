//! `/healthz` (the process answers), `/readyz` (the database and every registry answer),
//! `/metrics` (Prometheus text), `/openapi.json`.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use std::time::Duration;

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz",
    responses((status = 200, description = "the process answers", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the database and every configured registry answer, else 503 with
/// what does not.
#[utoipa::path(get, path = "/readyz",
    responses((status = 200, description = "ready", body = Readiness),
              (status = 503, description = "not ready: `problems` says what", body = Readiness)))]
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if let Err(e) = st.db.ping().await {
        problems.push(format!("database: {e}"));
    }
    for r in &st.cfg.registries {
        if let Err(e) = reachable(&r.address, r.insecure, &st.cfg.ca_certs).await {
            problems.push(format!("registry {} ({}): {e}", r.name, r.address));
        }
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready: problems.is_empty(),
            problems,
        }),
    )
}

/// Any HTTP answer from `/v2/` counts (401 means the registry is up and wants a token).
async fn reachable(address: &str, insecure: bool, ca_certs: &[Vec<u8>]) -> Result<(), String> {
    let plain = insecure || train_lib::net::is_loopback_host(address);
    let url = format!("{}://{address}/v2/", if plain { "http" } else { "https" });
    let mut c = reqwest::Client::builder().timeout(Duration::from_secs(2));
    for pem in ca_certs {
        c = c.add_root_certificate(reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?);
    }
    let c = c.build().map_err(|e| e.to_string())?;
    c.get(url)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| train_lib::net::explain(&e))
}

/// `/readyz`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether the database and every registry answer.
    pub ready: bool,
    /// What does not, when not ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// `GET /metrics`: Prometheus' text format; every series exists from the start.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(st): State<AppState>) -> String {
    st.metrics.render()
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi())
}
