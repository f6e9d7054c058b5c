//! Stations: their inbox (long-poll), reports, approvals; the key lookup creators use; the
//! admin's lists.

use super::{AppState, Caller, Failure};
use crate::db::{Applied, NotApplied};
use crate::machine::Step;
use crate::mover::PushSource;
use axum::extract::{Path, Query, State};
use axum::Json;
use route_wire::{
    CreatorView, Decision, Inbox, InboxItem, Repo, ReportStatus, Role, StationKey, StationReport,
    StationView, MAX_WAIT_SECS,
};
use serde::Deserialize;
use std::time::Duration;
use train_image::ImageRef;

/// `GET /v1/stations` (admin).
#[utoipa::path(get, path = "/v1/stations", security(("api_key" = [])),
    responses((status = 200, description = "every station with its liveness", body = [StationView]),
              (status = 403, description = "admins only", body = route_wire::ApiError)))]
pub async fn list_stations(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<StationView>>, Failure> {
    caller.require(Role::Admin, "list stations (admins do)")?;
    let off = st.cfg.offline_after_secs as i64 * 1000;
    Ok(Json(
        st.db
            .stations()
            .await?
            .iter()
            .map(|s| s.view(off))
            .collect(),
    ))
}

/// `GET /v1/creators` (admin).
#[utoipa::path(get, path = "/v1/creators", security(("api_key" = [])),
    responses((status = 200, description = "every creator", body = [CreatorView]),
              (status = 403, description = "admins only", body = route_wire::ApiError)))]
pub async fn list_creators(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<CreatorView>>, Failure> {
    caller.require(Role::Admin, "list creators (admins do)")?;
    Ok(Json(
        st.db.creators().await?.iter().map(|c| c.view()).collect(),
    ))
}

/// `GET /v1/stations/{id}/key`: any principal (creators build routes with it).
#[utoipa::path(get, path = "/v1/stations/{id}/key", params(("id" = String, Path, description = "the station's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), security(("api_key" = [])),
    responses((status = 200, description = "the station's public key and fingerprints", body = StationKey),
              (status = 404, description = "no such station", body = route_wire::ApiError)))]
pub async fn station_key(
    State(st): State<AppState>,
    _caller: Caller,
    Path(id): Path<route_wire::StationId>,
) -> Result<Json<StationKey>, Failure> {
    let s = st
        .db
        .station(&id)
        .await?
        .ok_or_else(|| Failure::not_found(format!("no station `{id}`")))?;
    Ok(Json(StationKey {
        id: s.id,
        public_key: s.public_key,
        fingerprint: s.fingerprint,
        pending_fingerprint: s.pending_fingerprint,
    }))
}

/// `?wait=` of the inbox.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// How long to hold the request while the inbox is empty: `30s`, `30` or `0`; capped at 55 s.
    #[param(pattern = "^[0-9]{1,9}s?$")]
    wait: Option<String>,
}

fn parse_wait(w: Option<&str>) -> Result<Duration, Failure> {
    let Some(w) = w else {
        return Ok(Duration::ZERO);
    };
    let n = w.strip_suffix('s').unwrap_or(w);
    let secs: u64 = n
        .parse()
        .map_err(|_| Failure::invalid(format!("wait=`{w}`: give seconds, e.g. wait=30s")))?;
    Ok(Duration::from_secs(secs.min(MAX_WAIT_SECS)))
}

/// `GET /v1/stations/{id}/inbox?wait=30s`: the trains at the station (that station only).
/// Answers at once when something waits, else when something arrives or at the timeout (an
/// empty 200). Each call records the station as seen.
#[utoipa::path(get, path = "/v1/stations/{id}/inbox", params(("id" = String, Path, description = "the station's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128), WaitQuery), security(("api_key" = [])),
    responses((status = 200, description = "the trains at the station (empty when none came within `wait`)", body = Inbox),
              (status = 403, description = "not that station (or an admin)", body = route_wire::ApiError),
              (status = 404, description = "no such station", body = route_wire::ApiError),
              (status = 422, description = "`wait` is not a number of seconds", body = route_wire::ApiError),
              (status = 429, description = "a long-poll (`wait` > 0) while the caller holds `max_streams_per_principal` feeds and long-polls open already", body = route_wire::ApiError)))]
pub async fn inbox(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::StationId>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<Inbox>, Failure> {
    caller.require_station(&id, &format!("read the inbox of {id}"))?;
    let wait = parse_wait(q.wait.as_deref())?;
    let station = st
        .db
        .station(&id)
        .await?
        .ok_or_else(|| Failure::not_found(format!("no station `{id}`")))?;
    st.db.touch_station(&id).await?;
    // A long-poll holds its connection: it counts among the caller's streams.
    let _slot = if wait.is_zero() {
        None
    } else {
        Some(
            st.streams
                .open(&caller.0.id, &format!("a long-poll of {id}'s inbox"))?,
        )
    };
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read, so a delivery in between is not missed.
    let mut touches = st.db.touches();
    loop {
        let items = st.db.inbox(&id).await?;
        if !items.is_empty() || tokio::time::Instant::now() >= deadline {
            let outbox = route_wire::repository(&station.namespace, Repo::Outbox);
            let items = items
                .into_iter()
                .map(|(t, h, image)| {
                    let push_to = ImageRef::tagged(&station.registry, &outbox, &t.id)
                        .map_err(|e| Failure::internal(format!("station {id}'s outbox: {e}")))?;
                    Ok(InboxItem {
                        image: image.to_string(),
                        push_to: push_to.to_string(),
                        train: t.id,
                        creator: t.creator,
                        format: t.format,
                        route: t.route,
                        index: h.index,
                        state: h.state,
                    })
                })
                .collect::<Result<_, Failure>>()?;
            let repositories = Some(route_wire::StationRepositories {
                inbox: format!(
                    "{}/{}",
                    station.registry,
                    route_wire::repository(&station.namespace, Repo::Inbox)
                ),
                outbox: format!("{}/{outbox}", station.registry),
            });
            return Ok(Json(Inbox {
                items,
                repositories,
            }));
        }
        // Woken by this replica's changes at this station at once; other replicas' are seen
        // within a second.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mine = |t: &crate::db::Touched| t.station.as_deref() == Some(id.as_str());
        tokio::select! {
            _ = crate::db::until_touched(&mut touches, mine, left.min(Duration::from_secs(1))) => {}
            _ = st.stop.cancelled() => {}
        }
        if st.stop.is_cancelled() {
            return Ok(Json(Inbox::default()));
        }
    }
}

/// `POST /v1/trains/{id}/reports`: the station whose hop is open reports `pulled`, `running`,
/// `failed` (with a reason: the train fails and its creator sees why) or `done` (with the
/// pushed digest, which is then looked up in its outbox).
#[utoipa::path(post, path = "/v1/trains/{id}/reports", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), request_body = StationReport, security(("api_key" = [])),
    responses((status = 200, description = "recorded", body = route_wire::TrainView),
              (status = 403, description = "only the stations of the train's route report", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError),
              (status = 409, description = "the train is not at the calling station, or not in a state this report applies to", body = route_wire::ApiError)))]
pub async fn report(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
    Json(r): Json<StationReport>,
) -> Result<Json<route_wire::TrainView>, Failure> {
    if caller.0.role != Role::Station {
        return Err(Failure::forbidden(
            caller.id(),
            "report on trains (stations do)",
        ));
    }
    on_route(&st, &caller, &id, "report on").await?;
    let me = caller.id().to_string();
    let (step, detail) = match r.status {
        ReportStatus::Pulled => (Step::Pulled, format!("{me} pulled the train")),
        ReportStatus::Running => (Step::Run, format!("{me} runs the train")),
        ReportStatus::Failed => {
            let reason = required_reason(r.reason, "a `failed` report needs a reason")?;
            (Step::StationFail, format!("{me}: {reason}"))
        }
        ReportStatus::Done => {
            let digest = r
                .digest
                .ok_or_else(|| Failure::invalid("a `done` report needs the pushed digest"))?;
            let station = st
                .db
                .station(&me)
                .await?
                .ok_or_else(|| Failure::not_found("station removed"))?;
            let outcome = st
                .mover
                .check_outbox(&id, &station, Some(&digest), PushSource::Report)
                .await?
                .unwrap_or_else(|| {
                    Err(NotApplied {
                        step: Step::Push,
                        reason: format!(
                            "the outbox of {me} holds nothing for train {id}; push before reporting done"
                        ),
                    })
                });
            // A duplicate counts as recorded: the notification of the same push came first.
            return answer(&st, &id, outcome.map(|_| ())).await;
        }
        ReportStatus::Interrupted => {
            // Back to where it can be taken again: the station runs it when it is back.
            let station = st
                .db
                .station(&me)
                .await?
                .ok_or_else(|| Failure::not_found("station removed"))?;
            let step = match station.approval {
                route_wire::Approval::Manual => Step::InterruptApproved,
                route_wire::Approval::Auto => Step::Interrupt,
            };
            (
                step,
                format!("{me} stopped the run before it finished; nothing was pushed, it runs again when {me} is back"),
            )
        }
    };
    let outcome = st.db.station_step(&id, &me, step, detail).await?;
    answer(&st, &id, outcome).await
}

/// 404 for an unknown train; 403 unless the calling station is on its route (a station that
/// is, but whose turn it is not, gets the step's own 409).
async fn on_route(st: &AppState, caller: &Caller, id: &str, what: &str) -> Result<(), Failure> {
    let t = st
        .db
        .train(id)
        .await?
        .ok_or_else(|| Failure::not_found(format!("no train `{id}`")))?;
    if t.route.iter().any(|s| s.as_str() == caller.id()) {
        Ok(())
    } else {
        Err(Failure::forbidden(
            caller.id(),
            format!("{what} train {id} (its route does not name this station)"),
        ))
    }
}

/// The answer to a station's report or decision: the train as it is now (the reporting
/// station may no longer see it: after `done` its hop is closed, so it is read directly), or
/// why it did not apply (404 for an unknown train, else 409).
async fn answer(
    st: &AppState,
    id: &str,
    outcome: Applied,
) -> Result<Json<route_wire::TrainView>, Failure> {
    match outcome {
        Ok(()) => {
            Ok(Json(st.db.train_view(id, false).await?.ok_or_else(
                || Failure::not_found(format!("no train `{id}`")),
            )?))
        }
        Err(why) => {
            if st.db.train(id).await?.is_none() {
                return Err(Failure::not_found(format!("no train `{id}`")));
            }
            Err(Failure::conflict(why.reason))
        }
    }
}

/// A reason that must be given, kept to 2 KiB: enough for any error message, not a channel for
/// results.
fn required_reason(r: Option<String>, missing: &str) -> Result<String, Failure> {
    let r = r
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Failure::invalid(missing))?;
    Ok(cap(&r))
}

fn cap(s: &str) -> String {
    let mut end = s.len().min(2048);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// `POST /v1/trains/{id}/approve`: the station's operator lets the train run.
#[utoipa::path(post, path = "/v1/trains/{id}/approve", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), request_body(content = Option<Decision>, description = "optional: a note for the record"), security(("api_key" = [])),
    responses((status = 200, description = "approved: the station runs it", body = route_wire::TrainView),
              (status = 403, description = "only the stations of the train's route approve", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError),
              (status = 409, description = "the train does not await the calling station's approval", body = route_wire::ApiError)))]
pub async fn approve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<route_wire::TrainView>, Failure> {
    let d = optional_decision(&headers, &body)?;
    decide(st, caller, id, true, d).await
}

/// `POST /v1/trains/{id}/reject` with a reason: the train fails at this station and its
/// creator sees why.
#[utoipa::path(post, path = "/v1/trains/{id}/reject", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), request_body = Decision, security(("api_key" = [])),
    responses((status = 200, description = "rejected: the train fails with the reason", body = route_wire::TrainView),
              (status = 403, description = "only the stations of the train's route reject", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError),
              (status = 409, description = "the train is not at the calling station", body = route_wire::ApiError)))]
pub async fn reject(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
    Json(d): Json<Decision>,
) -> Result<Json<route_wire::TrainView>, Failure> {
    decide(st, caller, id, false, d).await
}

/// The body of an approval is optional: empty (whatever the `Content-Type`) or `null` is no
/// note. Otherwise it is JSON as everywhere: 415 without `Content-Type: application/json`, 400
/// when it does not parse, 422 when it is not a `Decision`.
fn optional_decision(h: &axum::http::HeaderMap, body: &[u8]) -> Result<Decision, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Decision::default());
    }
    let json = h
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Failure::new(
            route_wire::ErrorCode::UnsupportedMediaType,
            "the body is not `Content-Type: application/json`",
        ));
    }
    match serde_json::from_slice::<Option<Decision>>(body) {
        Ok(d) => Ok(d.unwrap_or_default()),
        Err(e) if e.is_data() => Err(Failure::invalid(format!("body: {e}"))),
        Err(e) => Err(Failure::new(
            route_wire::ErrorCode::BadRequest,
            format!("body: not JSON: {e}"),
        )),
    }
}

async fn decide(
    st: AppState,
    caller: Caller,
    id: route_wire::TrainId,
    approve: bool,
    d: Decision,
) -> Result<Json<route_wire::TrainView>, Failure> {
    if caller.0.role != Role::Station {
        return Err(Failure::forbidden(
            caller.id(),
            "approve or reject trains (stations do)",
        ));
    }
    on_route(&st, &caller, &id, "approve or reject").await?;
    let me = caller.id().to_string();
    let (step, detail) = if approve {
        (Step::Approve, format!("approved by {me}"))
    } else {
        let reason = required_reason(d.reason, "a rejection needs a reason; the creator sees it")?;
        (Step::Reject, format!("rejected by {me}: {reason}"))
    };
    let outcome = st.db.station_step(&id, &me, step, detail).await?;
    answer(&st, &id, outcome).await
}
