//! The inbox: what waits for this station's decision, with what the watcher read of each train
//! (creator, route, entrypoint, files, signature and master checks), approve and reject; and
//! the trains delivered or running here.

use super::page::{self, text, Flash};
use super::session::{self, Operator};
use super::St;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use route_wire::{HopState, InboxItem, TrainId};
use station::watch::plan::Item;
use station::watch::{Inspection, State as WatchState};
use std::time::Duration;

#[derive(serde::Deserialize)]
pub struct Msg {
    /// What was just done, as a code (a link cannot put words on the page).
    m: Option<String>,
    /// Which train.
    t: Option<TrainId>,
}

/// `GET /`.
pub async fn page(State(ui): State<St>, op: Operator, Query(q): Query<Msg>) -> Response {
    let flash = match (q.m.as_deref(), &q.t) {
        (Some("approved"), Some(t)) => Some(Flash::info(format!("Train {t} approved."))),
        (Some("rejected"), Some(t)) => Some(Flash::info(format!(
            "Train {t} rejected; its creator sees the reason."
        ))),
        _ => None,
    };
    render(&ui, &op, flash).await
}

async fn render(ui: &St, op: &Operator, flash: Option<Flash>) -> Response {
    let inbox = match ui.client.inbox(&ui.station, Duration::ZERO).await {
        Ok(i) => i.items,
        Err(e) => {
            let f = Flash::error(format!("The route service did not answer: {e}"));
            return page::page(&ui.station, &op.csrf, "Inbox", Some(&f), html! {});
        }
    };
    // Read beside the running watcher (no lock taken); nothing yet if it has not looked.
    let inspected = WatchState::peek(&ui.cfg.watch.state_dir).unwrap_or_default();
    let (waiting, others): (Vec<InboxItem>, Vec<InboxItem>) = inbox
        .into_iter()
        .partition(|i| i.state == HopState::AwaitingApproval);
    let body = html! {
        h1 { "Inbox" }
        h2 { "Waiting for your decision (" (waiting.len()) ")" }
        @if waiting.is_empty() {
            p.empty { "No train waits for approval." }
        }
        @for i in &waiting {
            (review(ui, op, i, &inspected))
        }
        h2 { "Here now" }
        @if others.is_empty() {
            p.empty { "No other train is at this station." }
        } @else {
            table {
                thead { tr { th scope="col" { "Train" } th scope="col" { "Creator" } th scope="col" { "State" } th scope="col" { "Stop" } } }
                tbody {
                    @for i in &others {
                        tr {
                            td { code { (i.train) } }
                            td { (i.creator) }
                            td { span.state { (i.state.as_str()) } }
                            td { (i.index + 1) " of " (i.route.len()) }
                        }
                    }
                }
            }
        }
    };
    page::page(&ui.station, &op.csrf, "Inbox", flash.as_ref(), body)
}

/// One waiting train's review pane.
fn review(ui: &St, op: &Operator, raw: &InboxItem, inspected: &[(String, Inspection)]) -> Markup {
    let item = Item::parse(raw.clone(), &ui.cfg.watch.registries);
    let x = item.as_ref().ok().and_then(|i| {
        inspected
            .iter()
            .find(|(t, x)| i.train() == t && x.digest == i.digest)
            .map(|(_, x)| x)
    });
    let route: Vec<&str> = raw.route.iter().map(|s| s.as_str()).collect();
    let id = raw.train.as_str();
    html! {
        section.review aria-labelledby={"t-" (id)} {
            h3 #{"t-" (id)} { "Train " code { (id) } }
            dl {
                dt { "Creator" } dd { (raw.creator) }
                dt { "Format" } dd { (raw.format.as_str()) }
                dt { "Route" } dd { (route.join(" → ")) " (this is stop " (raw.index + 1) ")" }
                dt { "Image" } dd { code { (text(&raw.image)) } }
                @match (&item, x) {
                    (Err(e), _) => {
                        dt { "Refused" } dd.reason { (text(e)) }
                    }
                    (Ok(_), None) => {
                        dt { "Review" } dd.hint { "Not read yet: the watcher reads waiting trains for review; reload in a moment." }
                    }
                    (Ok(_), Some(x)) => {
                        dt { "Entrypoint" } dd { code { (text(x.entrypoint.as_deref().unwrap_or("(none recorded)"))) } }
                        dt { "Files (" (x.files.len()) ")" }
                        dd {
                            ul {
                                @for (f, size) in &x.files {
                                    li { code { (text(f)) } " (" (size) " bytes, encrypted in the image)" }
                                }
                            }
                        }
                        dt { "Signatures and master image" }
                        dd {
                            @if x.problems.is_empty() {
                                span.state.ok { "verified" }
                            } @else {
                                span.state.bad { "FAILED" }
                                ul { @for p in &x.problems { li.reason { (text(p)) } } }
                            }
                        }
                    }
                }
            }
            div.decide {
                form method="post" action={"/trains/" (id) "/approve"} {
                    input type="hidden" name="csrf" value=(op.csrf);
                    button type="submit" { "Approve train " (id) }
                }
                form method="post" action={"/trains/" (id) "/reject"} {
                    input type="hidden" name="csrf" value=(op.csrf);
                    label for={"reason-" (id)} { "Reason for rejecting (the creator sees it)" }
                    textarea #{"reason-" (id)} name="reason" required {}
                    button.danger type="submit" { "Reject train " (id) }
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct Decision {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /trains/{id}/approve`.
pub async fn approve(
    st: State<St>,
    op: Operator,
    id: Path<String>,
    headers: HeaderMap,
    f: Form<Decision>,
) -> Response {
    decide(st, op, id, headers, f, true).await
}

/// `POST /trains/{id}/reject`.
pub async fn reject(
    st: State<St>,
    op: Operator,
    id: Path<String>,
    headers: HeaderMap,
    f: Form<Decision>,
) -> Response {
    decide(st, op, id, headers, f, false).await
}

async fn decide(
    State(ui): State<St>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<Decision>,
    approve: bool,
) -> Response {
    if let Some(r) = session::refused(&op, &headers, &f.csrf) {
        return r;
    }
    let Ok(train) = id.parse::<TrainId>() else {
        return page::status_page(StatusCode::NOT_FOUND, "Not found", "No train has that id.");
    };
    let reason = f.reason.trim();
    if !approve && reason.is_empty() {
        let f = Flash::error("A rejection needs a reason: the train's creator sees it.");
        let mut r = render(&ui, &op, Some(f)).await;
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    }
    let reason = (!approve).then(|| reason.to_string());
    match ui.client.decide(&train, approve, reason).await {
        Ok(_) => {
            let m = if approve { "approved" } else { "rejected" };
            tracing::info!(%train, "station dashboard: {m}");
            Redirect::to(&format!("/?m={m}&t={train}")).into_response()
        }
        Err(e) => {
            let status = e
                .status()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let f = Flash::error(format!("The route service refused: {e}"));
            let mut r = render(&ui, &op, Some(f)).await;
            *r.status_mut() = status;
            r
        }
    }
}
