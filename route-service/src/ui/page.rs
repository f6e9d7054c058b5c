//! The page around every dashboard view, and the small pieces views share: messages, states
//! in words (never colour alone), times, error pages.

use crate::api::Failure;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use route_wire::{HopState, Role, TrainState};

/// A message at the top of a page.
pub struct Flash {
    error: bool,
    text: String,
}

impl Flash {
    /// Something went wrong (announced to screen readers at once).
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            error: true,
            text: text.into(),
        }
    }

    /// Something happened.
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            error: false,
            text: text.into(),
        }
    }

    fn render(&self) -> Markup {
        html! {
            @if self.error {
                p.flash.error role="alert" { strong { "Error: " } (text(&self.text)) }
            } @else {
                p.flash role="status" { (text(&self.text)) }
            }
        }
    }
}

fn document(title: &str, nav: Markup, flash: Option<&Flash>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Personal Health Train" }
                link rel="stylesheet" href="/ui/static/ui.css";
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header { (nav) }
                main #main {
                    @if let Some(f) = flash { (f.render()) }
                    (body)
                }
            }
        }
    }
}

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
            }
            span.who { "Signed in as " strong { (v.id) } " (" (role.as_str()) ")" }
            form.inline method="post" action="/ui/logout" {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" { "Sign out" }
            }
        }
    };
    document(title, nav, flash, body).into_response()
}

/// A page for no one in particular (sign-in, errors before sign-in).
pub fn bare(title: &str, flash: Option<&Flash>, body: Markup) -> Response {
    let nav = html! { nav aria-label="Main" { span.brand { "Personal Health Train" } } };
    document(title, nav, flash, body).into_response()
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

/// `ms` ago in words: "45 s", "12 min", "3 h", "2 d".
pub fn ago(now_ms: i64, at_ms: i64) -> String {
    let s = (now_ms - at_ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// An instant (ms since the epoch) as UTC, `2026-12-03 05:12:09 UTC`.
pub fn when(at_ms: i64) -> String {
    httpdate_like(at_ms)
}

fn httpdate_like(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_words_and_dates() {
        assert_eq!(ago(100_000, 55_000), "45 s");
        assert_eq!(ago(10_000_000, 0), "2 h");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_796_273_863_000), "2026-12-03 04:57:43 UTC");
    }
}
