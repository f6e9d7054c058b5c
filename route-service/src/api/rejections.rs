//! Every error the service answers is the documented JSON [`ApiError`](route_wire::ApiError),
//! whatever produced it. Handlers answer with [`Failure`]; what answers before a handler runs
//! (axum's JSON, path and query extractors, the request body limit, the router's 405, a caught
//! panic) answers in plain text, so this layer, outermost, turns any error answer that is not
//! JSON into one: the code from the status, the original text (a few KiB at most) as the
//! message, the headers (`Allow` of a 405) kept. An unknown route is the fallback's 404.

use super::{AppState, Failure};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use route_wire::{ApiError, ErrorCode};

/// The most of a plain-text error kept as its message: axum's rejections are under 1 KiB.
const MESSAGE_CAP: usize = 4096;

/// The router's fallback: 404 for a path the API does not have.
pub(super) async fn unknown_route(method: Method, uri: Uri) -> Failure {
    Failure::not_found(format!(
        "{method} {}: no such endpoint; GET /openapi.json lists the API",
        uri.path()
    ))
}

fn is_json(r: &Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The layer: error answers that are not JSON become `ApiError` bodies.
fn is_html(r: &Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

pub(super) async fn json_errors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    let status = resp.status();
    // The dashboard's own error pages (HTML) stay pages.
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) || is_html(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MESSAGE_CAP)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = ErrorCode::for_status(status.as_u16());
    let message = match code {
        ErrorCode::MethodNotAllowed => format!(
            "{method} is not allowed on {path}; the `Allow` header lists the methods that are"
        ),
        ErrorCode::TooLarge => format!(
            "the body is larger than the {} bytes this service accepts (`max_body_bytes`)",
            st.cfg.max_body_bytes
        ),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    let body = ApiError {
        error: code,
        message,
        check: None,
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json)).into_response()
}
