//! The dashboard at `/ui`: server-rendered pages (maud) for creators, station operators and
//! admins, over the same handlers as the API, so a page shows a principal exactly what the
//! API would and every action is the API call the permission matrix covers. Works without
//! JavaScript: every action is a form POST answered with a redirect.
//!
//! Sign-in exchanges an API key for a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! behind TLS), stored server-side as a hash, expiring, ended by sign-out or a changed key.
//! Every form carries a CSRF token derived from the session; every page a strict
//! Content-Security-Policy (no inline script or style, nothing from elsewhere).

mod actions;
mod admin;
mod live;
mod page;
mod session;
mod trains;

use crate::api::AppState;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub use pht_web::guard::csrf_token;
pub use session::SESSION_COOKIE;

pub use pht_web::guard::CSP;

/// The dashboard's routes (merged into the API's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(trains::home))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/trains/{id}", get(trains::train_page))
        .route("/ui/trains/{id}/events", get(live::events))
        .route("/ui/trains/{id}/live", get(live::fragment))
        .route("/ui/trains/{id}/cancel", post(actions::cancel))
        .route("/ui/trains/{id}/retry", post(actions::retry))
        .route("/ui/trains/{id}/approve", post(actions::approve))
        .route("/ui/trains/{id}/reject", post(actions::reject))
        .route("/ui/stations", get(admin::stations))
        .route("/ui/stations/{id}/accept-key", post(actions::accept_key))
        .route("/ui/creators", get(admin::creators))
        .route("/ui/notifications", get(admin::notifications))
        .route("/ui/static/ui.css", get(pht_web::assets::css))
        .route("/ui/static/ui.js", get(js))
        .layer(axum::middleware::map_response(
            pht_web::guard::security_headers,
        ))
}

async fn js() -> impl IntoResponse {
    pht_web::assets::script(include_str!("static/ui.js"))
}
