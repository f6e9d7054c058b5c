//! The page around every dashboard view, and the small pieces views share: messages, states
//! in words (never colour alone), times, error pages.

use crate::api::Failure;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use pht_web::page::document;
pub use pht_web::page::Flash;
pub use pht_web::time::{ago, when};
use route_wire::{HopState, Role, TrainState};

/// Who a page is for: what its navigation and sign-out form need of the viewer.
pub struct Who<'a> {
    /// The principal.
    pub id: &'a str,
    /// Its role.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

/// A page for a signed-in viewer: navigation by role, sign-out.
pub fn page(v: Who<'_>, title: &str, flash: Option<&Flash>, body: Markup) -> Response {
    let role = v.role;
    let nav = html! {
        nav aria-label="Main" {
            a href="/ui" { @match role { Role::Station => "Queue and history", Role::Creator => "My trains", Role::Admin => "All trains" } }
            @if role == Role::Admin {
                a href="/ui/stations" { "Stations" }
                a href="/ui/creators" { "Creators" }
                a href="/ui/notifications" { "Registry notifications" }
            }
            span.who { "Signed in as " strong { (v.id) } " (" (role.as_str()) ")" }
            form.inline method="post" action="/ui/logout" {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" { "Sign out" }
            }
        }
    };
    document(title, "/ui/static/ui.css", nav, flash, body).into_response()
}

/// A page for no one in particular (sign-in, errors before sign-in).
pub fn bare(title: &str, flash: Option<&Flash>, body: Markup) -> Response {
    let nav = html! { nav aria-label="Main" { span.brand { "Personal Health Train" } } };
    document(title, "/ui/static/ui.css", nav, flash, body).into_response()
}

/// A page that says what failed, with `status`.
pub fn status_page(status: StatusCode, title: &str, text: &str) -> Response {
    let mut r = bare(
        title,
        Some(&Flash::error(text)),
        html! { p { a href="/ui" { "Back to the dashboard" } } },
    );
    *r.status_mut() = status;
    r
}

/// An API failure as a page, with the API's status and message.
pub fn failure(f: &Failure) -> Response {
    let title = match f.status() {
        StatusCode::FORBIDDEN => "Not yours to see",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Not now",
        _ => "Failed",
    };
    status_page(f.status(), title, f.message())
}

/// Untrusted text (a reason, an event's detail, an error) as the terminal shows it: control
/// and bidirectional characters escaped, so nothing reaches the page that it could act on or
/// that reorders it; maud then escapes the markup.
pub fn text(s: &str) -> String {
    train_lib::text::escape(s)
}

/// A train's state in words, with a class for its colour.
pub fn train_state(s: TrainState) -> Markup {
    let (word, class) = match s {
        TrainState::Submitted => ("submitted", "pending"),
        TrainState::InTransit => ("in transit", "moving"),
        TrainState::AtStation => ("at a station", "pending"),
        TrainState::Running => ("running", "moving"),
        TrainState::Finished => ("finished", "ok"),
        TrainState::Failed => ("failed", "bad"),
        TrainState::Cancelled => ("cancelled", "bad"),
    };
    html! { span class={"state " (class)} { (word) } }
}

/// A hop's state in words.
pub fn hop_state(s: HopState) -> Markup {
    let (word, class) = match s {
        HopState::WaitingPush => ("waiting", "idle"),
        HopState::Detected => ("pushed, to move", "moving"),
        HopState::Copying => ("being moved", "moving"),
        HopState::Delivered => ("delivered", "pending"),
        HopState::AwaitingApproval => ("awaiting approval", "pending"),
        HopState::Approved => ("approved", "pending"),
        HopState::Running => ("running", "moving"),
        HopState::Done => ("done", "ok"),
        HopState::Failed => ("failed", "bad"),
        HopState::Cancelled => ("cancelled", "bad"),
        HopState::Expired => ("expired", "bad"),
    };
    html! { span class={"state " (class)} { (word) } }
}
