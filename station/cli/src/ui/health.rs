//! Health: what `station doctor` checks, run from the dashboard. The checks attach a loop
//! device and ask the service and the registry for real, so their result is kept for a
//! minute; "Check again" runs them at once.

use super::page::{self, text};
use super::session::{self, Operator};
use super::St;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use pht_web::guard::CsrfForm;
use pht_web::time::ago;
use station::doctor::{diagnose, Check, Inputs, Outcome};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a result is shown before the checks run again.
const FRESH: Duration = Duration::from_secs(60);

/// The last result and when (ms since the epoch) it was made.
#[derive(Default)]
pub struct Cache(tokio::sync::Mutex<Option<(Instant, i64, Vec<Check>)>>);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `GET /health`.
pub async fn page(State(ui): State<St>, op: Operator) -> Response {
    // One run at a time: a second page waits for the first's result instead of running again.
    let mut cache = ui.health.0.lock().await;
    if cache.as_ref().is_none_or(|(at, _, _)| at.elapsed() > FRESH) {
        let checks = diagnose(&Inputs {
            cfg: &ui.cfg,
            tmp: ui.tmp.clone(),
        })
        .await;
        *cache = Some((Instant::now(), now_ms(), checks));
    }
    let Some((_, at, checks)) = cache.as_ref() else {
        unreachable!("filled above")
    };
    let failed = checks.iter().filter(|c| c.is_failed()).count();
    let body = html! {
        h1 { "Health" }
        p {
            @if failed == 0 { span.state.ok { "All " (checks.len()) " checks passed" } }
            @else { span.state.bad { (failed) " of " (checks.len()) " checks failed" } }
            " · checked " (ago(now_ms(), *at)) " ago (as " code { "station doctor" } " does)"
        }
        form method="post" action="/health" {
            input type="hidden" name="csrf" value=(op.csrf);
            button type="submit" { "Check again" }
        }
        table {
            thead { tr { th scope="col" { "Check" } th scope="col" { "Result" } th scope="col" { "Found, or what to do" } } }
            tbody {
                @for c in checks {
                    tr {
                        td { (c.name) }
                        @match &c.outcome {
                            Outcome::Ok(found) => { td { span.state.ok { "ok" } } td { (text(found)) } }
                            Outcome::Skipped(why) => { td { span.state.idle { "skipped" } } td { (text(why)) } }
                            Outcome::Failed { problem, fix } => {
                                td { span.state.bad { "FAILED" } }
                                td { span.reason { (text(problem)) } br; "→ " (text(fix)) }
                            }
                        }
                    }
                }
            }
        }
    };
    page::page(&ui.station, &op.csrf, "Health", None, body)
}

/// `POST /health`: forget the last result and show a new one.
pub async fn again(
    State(ui): State<St>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session::refused(&op, &headers, &f.csrf) {
        return r;
    }
    *ui.health.0.lock().await = None;
    Redirect::to("/health").into_response()
}
