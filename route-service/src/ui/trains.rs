//! Trains: the home page by role (a creator's trains, a station's queue, every train for an
//! admin, with filters) and a train's own page. Everything shown comes from the API's own
//! handlers, called as the signed-in principal.

use super::page::{self, ago, hop_state, text, train_state, when, Flash};
use super::session::Viewer;
use crate::api::trains::{self, ListQuery};
use crate::api::AppState;
use crate::clock::now_ms;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use maud::{html, Markup};
use route_wire::{HopState, Role, TrainState, TrainView};

/// Whether the hop `i` of `t` has been in its state longer than `stuck_ms` (only the open one
/// can be stuck; its time in state is the train's last change).
fn stuck_for(t: &TrainView, i: usize, now: i64, stuck_ms: i64) -> Option<String> {
    let open = t.current_hop == Some(i)
        && !matches!(
            t.state,
            TrainState::Finished | TrainState::Failed | TrainState::Cancelled
        );
    (open && now - t.updated_at > stuck_ms).then(|| ago(now, t.updated_at))
}

/// A train's route as a lane of stops: station, state in words, time in state, a badge when
/// stuck.
pub(super) fn lane(t: &TrainView, now: i64, stuck_ms: i64) -> Markup {
    html! {
        ol.lane aria-label={"Route of " (t.id)} {
            @for h in &t.hops {
                @let current = t.current_hop == Some(h.index);
                li class={"stop" @if current { " current" }} {
                    span.station { (h.station.as_deref().unwrap_or("creator (results)")) }
                    " " (hop_state(h.state))
                    @if current {
                        " " span.since { "for " (ago(now, t.updated_at)) }
                    }
                    @if let (Some(e), HopState::Failed | HopState::Expired) = (&h.last_error, h.state) {
                        " " span.error { (text(e)) }
                    }
                    @if let Some(d) = stuck_for(t, h.index, now, stuck_ms) {
                        " " span.badge.stuck { "stuck " (d) }
                    }
                }
            }
        }
    }
}

fn table(trains: &[TrainView], now: i64, stuck_ms: i64) -> Markup {
    html! {
        @if trains.is_empty() {
            p.empty { "No trains." }
        } @else {
            table.trains {
                thead { tr { th scope="col" { "Train" } th scope="col" { "Creator" } th scope="col" { "State" } th scope="col" { "Route" } th scope="col" { "Changed" } } }
                tbody {
                    @for t in trains {
                        tr {
                            td { a href={"/ui/trains/" (t.id)} { (t.id) } }
                            td { (t.creator) }
                            td { (train_state(t.state)) }
                            td { (lane(t, now, stuck_ms)) }
                            td { (ago(now, t.updated_at)) " ago" }
                        }
                    }
                }
            }
        }
    }
}

/// The admin's filters, as a form sends them (empty fields included).
#[derive(serde::Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    state: String,
    #[serde(default)]
    creator: String,
    #[serde(default)]
    station: String,
}

impl Filters {
    fn query(&self) -> Result<ListQuery, String> {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        Ok(ListQuery {
            state: opt(&self.state).map(|s| s.parse()).transpose()?,
            creator: opt(&self.creator)
                .map(|s| s.parse().map_err(|e| format!("creator: {e}")))
                .transpose()?,
            station: opt(&self.station)
                .map(|s| s.parse().map_err(|e| format!("station: {e}")))
                .transpose()?,
        })
    }

    fn form(&self) -> Markup {
        html! {
            form.filters method="get" action="/ui" aria-label="Filter trains" {
                label for="f-state" { "State" }
                select #f-state name="state" {
                    option value="" selected[self.state.is_empty()] { "any" }
                    @for s in TrainState::ALL {
                        option value=(s.as_str()) selected[self.state == s.as_str()] { (s.as_str().replace('_', " ")) }
                    }
                }
                label for="f-creator" { "Creator" }
                input #f-creator name="creator" type="text" value=(self.creator);
                label for="f-station" { "At station" }
                input #f-station name="station" type="text" value=(self.station);
                button type="submit" { "Filter" }
            }
        }
    }
}

/// `GET /ui`: what the viewer's role looks after.
pub async fn home(State(st): State<AppState>, v: Viewer, Query(f): Query<Filters>) -> Response {
    let role = v.caller.0.role;
    let (q, flash) = match (role, f.query()) {
        (Role::Admin, Ok(q)) => (q, None),
        (Role::Admin, Err(e)) => (ListQuery::default(), Some(Flash::error(e))),
        _ => (ListQuery::default(), None),
    };
    let list = match trains::list(State(st.clone()), v_caller(&v), Query(q)).await {
        Ok(Json(l)) => l.trains,
        Err(e) => return page::failure(&e),
    };
    let now = now_ms();
    let stuck = st.cfg.ui_stuck_after_secs as i64 * 1000;
    let (title, body) = match role {
        Role::Creator => (
            "My trains",
            html! {
                h1 { "My trains" }
                p.hint { "Submit with " code { "train submit" } "; each train's page has the command that fetches and decrypts its results." }
                (table(&list, now, stuck))
            },
        ),
        Role::Station => {
            let own = station_self(&st, &v, now).await;
            let waiting: Vec<&TrainView> = list
                .iter()
                .filter(|t| {
                    t.current_hop
                        .and_then(|i| t.hops.get(i))
                        .is_some_and(|h| h.state == HopState::AwaitingApproval)
                })
                .collect();
            (
                "Queue",
                html! {
                    h1 { "Queue of " (v.id()) }
                    h2 { "Awaiting your approval (" (waiting.len()) ")" }
                    @if waiting.is_empty() { p.empty { "Nothing to review." } }
                    @for t in &waiting {
                        (review(&v, t))
                    }
                    h2 { "At this station" }
                    (table(&list, now, stuck))
                    (own)
                },
            )
        }
        Role::Admin => (
            "All trains",
            html! {
                h1 { "All trains" }
                (f.form())
                (table(&list, now, stuck))
            },
        ),
    };
    page::page(v.who(), title, flash.as_ref(), body)
}

/// A station's own key (and a rotation waiting for an admin) and its recent history: what
/// its API key reads (`GET /v1/stations/{id}/key`, its event feed).
async fn station_self(st: &AppState, v: &Viewer, now: i64) -> Markup {
    let Ok(id) = v.id().parse::<route_wire::StationId>() else {
        return html! {};
    };
    let key = crate::api::stations::station_key(State(st.clone()), v_caller(v), Path(id.clone()))
        .await
        .ok()
        .map(|Json(k)| k);
    let history = st
        .db
        .recent_station_events(&id, 50)
        .await
        .unwrap_or_default();
    html! {
        h2 { "Your key" }
        @if let Some(k) = key {
            p { "Fingerprint " code.copy { (k.fingerprint) } }
            @if let Some(p) = k.pending_fingerprint {
                p { span.badge { "rotation pending" } " Proposed " code.copy { (p) } ": an admin accepts it once you have told them this fingerprint." }
            }
        }
        h2 { "History" }
        @if history.is_empty() { p.empty { "Nothing yet." } }
        ol.timeline {
            @for e in &history {
                li {
                    time { (when(e.at)) } " (" (ago(now, e.at)) " ago) "
                    span.kind { (e.kind.as_str().replace('_', " ")) }
                    @if let Some(t) = &e.train { " " (t) }
                    ": " span.detail { (text(&e.detail)) }
                }
            }
        }
    }
}

/// The review pane of a train awaiting the station's approval, with approve and reject.
fn review(v: &Viewer, t: &TrainView) -> Markup {
    html! {
        section.review aria-label={"Review of " (t.id)} {
            h3 { a href={"/ui/trains/" (t.id)} { (t.id) } }
            dl {
                dt { "Creator" } dd { (t.creator) }
                dt { "Format" } dd { (t.format.as_str()) }
                dt { "Route" } dd { (t.route.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" → ")) }
                dt { "Submitted" } dd { (when(t.created_at)) }
                @if let Some(d) = t.states.last() { dt { "Image state" } dd { code { (d) } } }
            }
            p.hint { "The signature and master checks run at your station when it pulls the train (`station watch` refuses what fails them); `station queue` there shows the train's files and entrypoint." }
            (decide_forms(v, t))
        }
    }
}

fn decide_forms(v: &Viewer, t: &TrainView) -> Markup {
    html! {
        div.decide {
            form.inline method="post" action={"/ui/trains/" (t.id) "/approve"} {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" { "Approve " (t.id) }
            }
            form method="post" action={"/ui/trains/" (t.id) "/reject"} {
                input type="hidden" name="csrf" value=(v.csrf);
                label for={"reason-" (t.id)} { "Reason for rejecting (the creator sees it)" }
                textarea id={"reason-" (t.id)} name="reason" required maxlength="2048" {}
                button.danger type="submit" { "Reject " (t.id) }
            }
        }
    }
}

fn v_caller(v: &Viewer) -> crate::api::Caller {
    crate::api::Caller(v.caller.0.clone())
}

/// `GET /ui/trains/{id}`: the train with its lane, timeline, digests and what may be done.
pub async fn train_page(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<route_wire::TrainId>,
) -> Response {
    match trains::get_one(State(st.clone()), v_caller(&v), Path(id)).await {
        Ok(Json(t)) => render_train(&st, &v, &headers, &t, None),
        Err(e) => page::failure(&e),
    }
}

/// The train page, with `flash` (an action's outcome).
pub(super) fn render_train(
    st: &AppState,
    v: &Viewer,
    headers: &HeaderMap,
    t: &TrainView,
    flash: Option<&Flash>,
) -> Response {
    let stuck = st.cfg.ui_stuck_after_secs as i64 * 1000;
    let kinds: Vec<&str> = route_wire::EventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let live = v.caller.0.role != Role::Station;
    let body = html! {
        h1 { "Train " (t.id) }
        // Live for creators and admins. A station's page is not: its feeds count among the
        // station's streams (`max_streams_per_principal`), which its watcher needs.
        div #live aria-live="polite" data-feed=[live.then(|| format!("/ui/trains/{}/events", t.id))] data-fragment={"/ui/trains/" (t.id) "/live"} data-kinds=(kinds.join(" ")) {
            (live_section(v, headers, t, now_ms(), stuck))
        }
        @if live { script src="/ui/static/ui.js" defer {} }
    };
    page::page(v.who(), &format!("Train {}", t.id), flash, body)
}

/// What `v` may do with `t` now: decide (its station), cancel (creator, admin), retry
/// (admin); the results command once it has finished.
fn actions(v: &Viewer, headers: &HeaderMap, t: &TrainView) -> Markup {
    let role = v.caller.0.role;
    let ended = matches!(
        t.state,
        TrainState::Finished | TrainState::Failed | TrainState::Cancelled
    );
    let awaiting_me = role == Role::Station
        && t.current_hop.and_then(|i| t.hops.get(i)).is_some_and(|h| {
            h.state == HopState::AwaitingApproval && h.station.as_deref() == Some(v.id())
        });
    let failed_hop = t
        .hops
        .iter()
        .any(|h| matches!(h.state, HopState::Failed | HopState::Expired));
    html! {
        @if awaiting_me { h2 { "Your decision" } (decide_forms(v, t)) }
        @if !ended && matches!(role, Role::Creator | Role::Admin) {
            form method="post" action={"/ui/trains/" (t.id) "/cancel"} {
                input type="hidden" name="csrf" value=(v.csrf);
                button.danger type="submit" { "Cancel " (t.id) }
            }
        }
        @if role == Role::Admin && failed_hop && !matches!(t.state, TrainState::Cancelled) {
            form method="post" action={"/ui/trains/" (t.id) "/retry"} {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" { "Retry the failed move" }
            }
        }
        @if t.state == TrainState::Finished && matches!(role, Role::Creator | Role::Admin) {
            h2 { "Results" }
            @if let Some(r) = &t.results { p { "Image: " code.copy { (r) } } }
            p { "Fetch and decrypt them where your private key is:" }
            pre.command { code { "train results " (t.id) " --route-service " (public_base(headers)) " --key YOUR.key.pem --out ./" (t.id) } }
            p.hint { "The encrypted archive is also a plain registry image (" code { "train image copy" } ", " code { "skopeo copy" } ") for a raw download." }
        }
    }
}

/// What changes while the page is open: state, route, digests, timeline (the page's script
/// fetches it again on every event of the train's feed).
pub(super) fn live_section(
    v: &Viewer,
    headers: &HeaderMap,
    t: &TrainView,
    now: i64,
    stuck: i64,
) -> Markup {
    html! {
        p.summary { (train_state(t.state)) " · " (t.format.as_str()) " · by " (t.creator) " · submitted " (when(t.created_at)) }
        @if let Some(r) = &t.reason { p.reason { strong { "Reason: " } (text(r)) } }
        h2 { "Route" }
        (lane(t, now, stuck))
        (actions(v, headers, t))
        h2 { "States" }
        p.hint { "Each stop's signed train state, by digest." }
        ol.digests { @for d in &t.states { li { code.copy { (d) } } } }
        h2 { "Timeline" }
        ol.timeline {
            @for e in &t.events {
                li {
                    time { (when(e.at)) }
                    " " span.kind { (e.kind.as_str().replace('_', " ")) }
                    @if let Some(s) = &e.station { " at " span.station { (s) } }
                    ": " span.detail { (text(&e.detail)) }
                }
            }
        }
    }
}

/// The service's URL as the viewer reached it (for commands to copy).
fn public_base(h: &HeaderMap) -> String {
    let host = h
        .get("x-forwarded-host")
        .or_else(|| h.get(axum::http::header::HOST))
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("ROUTE-SERVICE");
    let scheme = if h.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https") {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}
