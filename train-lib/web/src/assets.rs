//! The dashboards' one stylesheet, served from their own origin (the CSP allows nothing
//! inline): the route service's and the station's pages look alike.

use axum::http::header;
use axum::response::IntoResponse;

/// The stylesheet.
pub const CSS: &str = include_str!("static/ui.css");

/// Serves [`CSS`], cached for an hour.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
}

/// Serves a script, cached for an hour.
pub fn script(js: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        js,
    )
}
