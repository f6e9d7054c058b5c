//! Runs in progress with their steps and the train's output as it comes, and the last runs
//! that ended (the watcher keeps them in memory, bounded; the audit log is the record). The
//! output arrives escaped as on the terminal (`\e[31m` shows as text); maud escapes the markup.

use super::page::{self, text};
use super::session::Operator;
use super::St;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use pht_web::time::{ago, when};
use station::watch::live::{LineKind, RunView};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `GET /runs`.
pub async fn page(State(ui): State<St>, op: Operator) -> Response {
    let body = html! {
        h1 { "Runs" }
        p.hint { "The output of the runs in hand follows here while the page is open (every 2 s). Without JavaScript, reload the page." }
        div #live data-fragment="/runs/live" data-every="2000" aria-live="polite" {
            (runs(&ui))
        }
        script src="/static/station.js" {}
    };
    page::page(&ui.station, &op.csrf, "Runs", None, body)
}

/// `GET /runs/live`: the runs, for the page's script to put in place.
pub async fn fragment(State(ui): State<St>, _op: Operator) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        runs(&ui).into_string(),
    )
        .into_response()
}

fn runs(ui: &St) -> Markup {
    let all = ui.live.snapshot();
    let (now_running, ended): (Vec<&RunView>, Vec<&RunView>) =
        all.iter().partition(|r| r.ended.is_none());
    let now = now_ms();
    html! {
        h2 { "In progress (" (now_running.len()) ")" }
        @if now_running.is_empty() {
            p.empty { "No train runs here now." }
        }
        @for r in &now_running {
            section.review {
                h3 { "Train " code { (r.stop.train) } }
                p { "Stage: " span.state.moving { (r.stage) } " · started " (ago(now, r.started_ms as i64)) " ago · image " code { (text(&r.image)) } }
                (output(r))
            }
        }
        h2 { "Ended since the watcher started (" (ended.len()) ")" }
        @if ended.is_empty() {
            p.empty { "None yet. Earlier runs are under Past runs." }
        }
        @for (i, r) in ended.iter().enumerate() {
            @if let Some(e) = &r.ended {
                // The newest is open: its output is what the operator came for.
                details.review open[i == 0] {
                    summary {
                        "Train " code { (r.stop.train) } " — "
                        @if e.pushed { span.state.ok { "pushed" } } @else { span.state.bad { "not pushed" } }
                        " · " (when(e.at_ms as i64))
                    }
                    p { (text(&e.outcome)) }
                    (output(r))
                }
            }
        }
    }
}

fn output(r: &RunView) -> Markup {
    html! {
        @if r.dropped > 0 {
            p.hint { "(" (r.dropped) " earlier lines not kept)" }
        }
        pre.command.output {
            @for (kind, line) in &r.lines {
                @match kind {
                    LineKind::Train => { span.train { "[train] " (line) } "\n" }
                    LineKind::Warn => { span.warn { "warning: " (line) } "\n" }
                    LineKind::Step => { (line) "\n" }
                }
            }
        }
    }
}
