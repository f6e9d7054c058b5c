//! `/healthz` (the process answers), `/readyz` (the database and every registry answer),
//! `/metrics` (Prometheus text), `/openapi.json`.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use std::time::Duration;

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process answers")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the database and every configured registry answer, else 503 with
/// what does not.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready"), (status = 503, description = "what is not reachable")))]
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if let Err(e) = st.db.ping().await {
        problems.push(format!("database: {e}"));
    }
    for r in &st.cfg.registries {
        if let Err(e) = reachable(&r.address, r.insecure).await {
            problems.push(format!("registry {} ({}): {e}", r.name, r.address));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "problems": problems})),
        )
    }
}

/// Any HTTP answer from `/v2/` counts (401 means the registry is up and wants a token).
async fn reachable(address: &str, insecure: bool) -> Result<(), String> {
    let host = address.split(':').next().unwrap_or("");
    let plain = insecure
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|i| i.is_loopback());
    let url = format!("{}://{address}/v2/", if plain { "http" } else { "https" });
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    c.get(url)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<AppState>) -> String {
    st.metrics.render()
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi())
}
