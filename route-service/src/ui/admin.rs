//! The admin's pages: stations with liveness and pending key proposals, creators, the
//! registry notification log.

use super::page::{self, ago, text, when, Flash};
use super::session::Viewer;
use crate::api::registry_events::{self, NotificationQuery};
use crate::api::{stations, AppState, Caller};
use crate::clock::now_ms;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use maud::html;
use route_wire::Liveness;

fn caller(v: &Viewer) -> Caller {
    Caller(v.caller.0.clone())
}

/// `GET /ui/stations` (admin): every station, its liveness in words, pending key proposals.
pub async fn stations(State(st): State<AppState>, v: Viewer) -> Response {
    render_stations(&st, &v, None, StatusCode::OK).await
}

/// The stations page with `flash` and `status`.
pub(super) async fn render_stations(
    st: &AppState,
    v: &Viewer,
    flash: Option<&Flash>,
    status: StatusCode,
) -> Response {
    let list = match stations::list_stations(State(st.clone()), caller(v)).await {
        Ok(Json(l)) => l,
        Err(e) => return page::failure(&e),
    };
    let now = now_ms();
    let mut pending = Vec::new();
    for s in &list {
        if let Ok(Json(k)) =
            stations::station_key(State(st.clone()), caller(v), Path(s.id.clone())).await
        {
            if let Some(p) = k.pending_fingerprint {
                pending.push((s.id.clone(), p, k.fingerprint));
            }
        }
    }
    let body = html! {
        h1 { "Stations" }
        table.stations {
            thead { tr { th scope="col" { "Station" } th scope="col" { "Liveness" } th scope="col" { "Last seen" } th scope="col" { "Approval" } th scope="col" { "Registry" } th scope="col" { "Key" } } }
            tbody {
                @for s in &list {
                    tr {
                        td { (s.id) }
                        td {
                            @match s.liveness {
                                Liveness::Online => span.state.ok { "online" },
                                Liveness::Offline => span.state.bad { "offline" },
                                Liveness::NeverSeen => span.state.idle { "never seen" },
                            }
                        }
                        td { @if let Some(t) = s.last_seen { (ago(now, t)) " ago (" (when(t)) ")" } @else { "never" } }
                        td { (s.approval.as_str()) }
                        td { code { (s.registry) "/" (s.namespace) } }
                        td { code.copy { (s.fingerprint) } }
                    }
                }
            }
        }
        h2 { "Key proposals" }
        @if pending.is_empty() { p.empty { "None pending." } }
        @for (id, proposed, current) in &pending {
            section.proposal aria-label={"Key proposal of " (id)} {
                h3 { (id) }
                p { "Current key " code { (current) } "; proposed " code.copy { (proposed) } "." }
                p.hint { "Accept only after the station's operator has told you this fingerprint out of band (" code { "station keys show" } " prints it)." }
                form method="post" action={"/ui/stations/" (id) "/accept-key"} {
                    input type="hidden" name="csrf" value=(v.csrf);
                    label for={"fp-" (id)} { "Fingerprint the operator gave you" }
                    input id={"fp-" (id)} name="fingerprint" type="text" required autocomplete="off" size="80";
                    button type="submit" { "Accept the key of " (id) }
                }
            }
        }
    };
    let mut r = page::page(v.who(), "Stations", flash, body);
    *r.status_mut() = status;
    r
}

/// `GET /ui/creators` (admin).
pub async fn creators(State(st): State<AppState>, v: Viewer) -> Response {
    let list = match stations::list_creators(State(st), caller(&v)).await {
        Ok(Json(l)) => l,
        Err(e) => return page::failure(&e),
    };
    let body = html! {
        h1 { "Creators" }
        table.creators {
            thead { tr { th scope="col" { "Creator" } th scope="col" { "Registry" } th scope="col" { "Key" } } }
            tbody {
                @for c in &list {
                    tr { td { (c.id) } td { code { (c.registry) "/" (c.namespace) } } td { code.copy { (c.fingerprint) } } }
                }
            }
        }
    };
    page::page(v.who(), "Creators", None, body)
}

/// `GET /ui/notifications` (admin): the registry notification log, newest first, with what
/// the service made of each (the API's `GET /v1/notifications`, same filters).
pub async fn notifications(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<NotificationQuery>,
) -> Response {
    let registry = q.registry.clone();
    let list =
        match registry_events::list_notifications(State(st.clone()), caller(&v), Query(q)).await {
            Ok(Json(l)) => l,
            Err(e) => return page::failure(&e),
        };
    let registries: Vec<&str> = st
        .cfg
        .registries
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    let now = now_ms();
    let body = html! {
        h1 { "Registry notifications" }
        form.filters method="get" action="/ui/notifications" {
            label for="registry" { "Registry" }
            select #registry name="registry" {
                option value="" { "all" }
                @for r in &registries {
                    option value=(r) selected[registry.as_deref() == Some(*r)] { (r) }
                }
            }
            button type="submit" { "Show" }
        }
        @if list.is_empty() {
            p.empty { "No notification received yet." }
        } @else {
            table.notifications {
                thead { tr {
                    th scope="col" { "Received" } th scope="col" { "Registry" } th scope="col" { "Pushed" }
                    th scope="col" { "By" } th scope="col" { "What the service did" }
                } }
                tbody {
                    @for n in &list {
                        tr {
                            td { (ago(now, n.received_at)) " ago" br; span.since { (when(n.received_at)) } }
                            td { code { (n.registry) } }
                            td {
                                code { (text(n.repository.as_deref().unwrap_or("?"))) ":" (text(n.tag.as_deref().unwrap_or("?"))) }
                                @if let Some(d) = &n.digest { br; code.copy { (text(d)) } }
                            }
                            td { (text(n.actor.as_deref().unwrap_or("—"))) }
                            td {
                                @match n.outcome.as_deref() {
                                    None => span.state.pending { "being checked" },
                                    Some(o) if o.starts_with("accepted") => span.state.ok { (text(o)) },
                                    Some(o) if o.starts_with("duplicate") => span.state.idle { (text(o)) },
                                    Some(o) => span.state.bad { (text(o)) },
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page::page(v.who(), "Registry notifications", None, body)
}
