//! Server-Sent Events per train and per station, from the event log: resumable with
//! `Last-Event-ID` (every event's id is its log id), with keep-alives every 15 s so proxies
//! keep the stream open.

use super::{AppState, Caller, Failure};
use crate::db::{until_touched, EventFilter, Touched};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// One server-sent event of a feed, as an SSE client reads it (keep-alive comments aside).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FeedEvent {
    /// The event's id in the log; send it back as `Last-Event-ID` to resume after it.
    pub id: String,
    /// The event's kind (`EventView.kind`).
    pub event: String,
    /// The event, an `EventView`, as JSON.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// Where to resume: after the `Last-Event-ID` the client sends back (0: from the start). Our
/// ids are integers and `EventSource` sends back the last one it got, so anything else is a
/// client's mistake, said as such rather than silently replaying from the start (which
/// schemathesis rightly flagged as a schema-violating request accepted).
fn last_event_id(h: &HeaderMap) -> Result<i64, Failure> {
    let Some(v) = h.get("last-event-id") else {
        return Ok(0);
    };
    v.to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Failure::new(
                route_wire::ErrorCode::BadRequest,
                "Last-Event-ID: send back the `id` of the last event received (an integer), or no header to start from the beginning",
            )
        })
}

enum Key {
    Train(route_wire::TrainId),
    Station(route_wire::StationId),
}

/// Who follows a feed, re-checked while it runs: a feed outlived its authorisation (a
/// station's feed on a train kept delivering after the train left it, later stations'
/// rejection reasons included, and feeds of a rotated or removed key went on).
struct Follower {
    st: AppState,
    caller: Caller,
    /// The key hash the feed was opened with: a rotated or removed key ends it.
    hash: String,
    checked: std::time::Instant,
    /// Its place among the principal's open streams, freed when the feed ends.
    _slot: super::streams::Slot,
}

/// How often an idle feed re-checks its follower's key (a batch always re-checks).
const RECHECK: Duration = Duration::from_secs(5);

impl Follower {
    async fn new(st: &AppState, caller: Caller, what: &str) -> Result<Self, Failure> {
        let slot = st.streams.open(&caller.0.id, what)?;
        let hash = match st.db.principal(&caller.0.id).await? {
            Some((_, h)) => h,
            None => String::new(),
        };
        Ok(Self {
            st: st.clone(),
            caller,
            hash,
            checked: std::time::Instant::now(),
            _slot: slot,
        })
    }

    /// Whether the follower may still see `key`'s events.
    async fn allowed(&mut self, key: &Key, batch: bool) -> bool {
        if !batch && self.checked.elapsed() < RECHECK {
            return true;
        }
        self.checked = std::time::Instant::now();
        let key_ok = matches!(
            self.st.db.principal(&self.caller.0.id).await,
            Ok(Some((_, h))) if h == self.hash
        );
        key_ok
            && match key {
                Key::Train(t) => super::trains::visible(&self.st, &self.caller, t, false)
                    .await
                    .is_ok(),
                Key::Station(_) => true,
            }
    }
}

fn feed(who: Follower, key: Key, after: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribed before the first read, so nothing committed in between is missed.
    let db = who.st.db.clone();
    let rx = db.touches();
    let state = (db, key, after, VecDeque::new(), rx);
    futures_util::stream::unfold(
        (state, who),
        |((db, key, mut after, mut queue, mut rx), mut who)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    let e: route_wire::EventView = e;
                    let ev = Event::default()
                        .id(e.id.to_string())
                        .event(e.kind.as_str())
                        .json_data(&e)
                        .unwrap_or_else(|_| Event::default().comment("unserialisable event"));
                    return Some((Ok(ev), ((db, key, after, queue, rx), who)));
                }
                if !who.allowed(&key, false).await {
                    return None;
                }
                let filter = match &key {
                    Key::Train(t) => EventFilter::Train(t),
                    Key::Station(s) => EventFilter::Station(s),
                };
                match db.events(filter, after, 200).await {
                    Ok(v) if !v.is_empty() => {
                        // Every batch is re-authorised before it is sent.
                        if !who.allowed(&key, true).await {
                            return None;
                        }
                        after = v.last().map(|e| e.id).unwrap_or(after);
                        queue.extend(v);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "event feed read failed"),
                }
                // This replica's events about this key wake the feed at once; other replicas'
                // are seen within a second.
                let mine = |t: &Touched| match &key {
                    Key::Train(k) => t.train.as_deref() == Some(k.as_str()),
                    Key::Station(k) => t.station.as_deref() == Some(k.as_str()),
                };
                until_touched(&mut rx, mine, Duration::from_secs(1)).await;
            }
        },
    )
}

fn sse(
    s: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    stop: tokio_util::sync::CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    use futures_util::StreamExt;
    let s = s.take_until(stop.cancelled_owned());
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /v1/trains/{id}/events`: the train's events as SSE (who may see the train).
#[utoipa::path(get, path = "/v1/trains/{id}/events", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128), ("Last-Event-ID" = Option<i64>, Header, nullable = false, description = "resume after this event id (an integer)")), security(("api_key" = [])),
    responses((status = 200, description = "text/event-stream: each event's `data` an EventView, its `id` the event's id", content_type = "text/event-stream", body = FeedEvent),
              (status = 400, description = "a Last-Event-ID that is not an integer", body = route_wire::ApiError),
              (status = 403, description = "not the caller's train", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError),
              (status = 429, description = "the caller holds `max_streams_per_principal` feeds and long-polls open already", body = route_wire::ApiError)))]
pub async fn train_feed(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let from = last_event_id(&headers)?;
    super::trains::visible(&st, &caller, &id, false).await?;
    let who = Follower::new(&st, caller, &format!("the feed of train {id}")).await?;
    Ok(sse(feed(who, Key::Train(id), from), st.stop.clone()))
}

/// `GET /v1/stations/{id}/events`: the station's events as SSE (that station, or admins).
#[utoipa::path(get, path = "/v1/stations/{id}/events", params(("id" = String, Path, description = "the station's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128), ("Last-Event-ID" = Option<i64>, Header, nullable = false, description = "resume after this event id (an integer)")), security(("api_key" = [])),
    responses((status = 200, description = "text/event-stream: each event's `data` an EventView, its `id` the event's id", content_type = "text/event-stream", body = FeedEvent),
              (status = 400, description = "a Last-Event-ID that is not an integer", body = route_wire::ApiError),
              (status = 403, description = "not that station (or an admin)", body = route_wire::ApiError),
              (status = 404, description = "no such station", body = route_wire::ApiError),
              (status = 429, description = "the caller holds `max_streams_per_principal` feeds and long-polls open already", body = route_wire::ApiError)))]
pub async fn station_feed(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::StationId>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let from = last_event_id(&headers)?;
    caller.require_station(&id, &format!("follow the events of station {id}"))?;
    st.db.touch_station(&id).await?;
    let who = Follower::new(&st, caller, &format!("the feed of station {id}")).await?;
    Ok(sse(feed(who, Key::Station(id), from), st.stop.clone()))
}
