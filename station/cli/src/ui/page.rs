//! The station dashboard's page frame: navigation, sign-out, error pages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use pht_web::page::document;
pub use pht_web::page::{escape as text, Flash};
use route_wire::StationId;

const CSS: &str = "/static/ui.css";

/// A page for the signed-in operator (`csrf`: the session's token, for sign-out).
pub fn page(
    station: &StationId,
    csrf: &str,
    title: &str,
    flash: Option<&Flash>,
    body: Markup,
) -> Response {
    let nav = html! {
        nav aria-label="Main" {
            span.brand { "Station " strong { (station) } }
            a href="/" { "Inbox" }
            a href="/runs" { "Runs" }
            a href="/history" { "Past runs" }
            a href="/audit" { "Audit log" }
            a href="/health" { "Health" }
            form.inline method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        }
    };
    document(title, CSS, nav, flash, body).into_response()
}

/// A page before sign-in.
pub fn bare(station: &StationId, title: &str, flash: Option<&Flash>, body: Markup) -> Response {
    let nav = html! { nav aria-label="Main" { span.brand { "Station " strong { (station) } } } };
    document(title, CSS, nav, flash, body).into_response()
}

/// A page that says what failed, with `status`.
pub fn status_page(status: StatusCode, title: &str, message: &str) -> Response {
    let nav = html! { nav aria-label="Main" { a href="/" { "Back to the inbox" } } };
    let mut r = document(title, CSS, nav, Some(&Flash::error(message)), html! {}).into_response();
    *r.status_mut() = status;
    r
}
