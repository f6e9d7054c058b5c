//! Live parts of the train page: its event feed for the signed-in viewer (the API's feed,
//! re-authorised on every batch as there), and the fragment the page's script fetches again
//! when an event arrives. Without JavaScript the page is complete; it only stops updating.

use super::page;
use super::session::Viewer;
use super::trains::live_section;
use crate::api::{feeds, trains, AppState, Caller};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

fn caller(v: &Viewer) -> Caller {
    Caller(v.caller.0.clone())
}

/// `GET /ui/trains/{id}/events`: `text/event-stream` of the train's events.
pub async fn events(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<route_wire::TrainId>,
    headers: HeaderMap,
) -> Response {
    match feeds::train_feed(State(st), caller(&v), Path(id), headers).await {
        Ok(sse) => sse.into_response(),
        Err(e) => page::failure(&e),
    }
}

/// `GET /ui/trains/{id}/live`: the state, route and timeline, as on the page.
pub async fn fragment(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<route_wire::TrainId>,
) -> Response {
    match trains::get_one(State(st.clone()), caller(&v), Path(id)).await {
        Ok(Json(t)) => {
            let stuck = st.cfg.ui_stuck_after_secs as i64 * 1000;
            let html = live_section(&v, &headers, &t, crate::clock::now_ms(), stuck);
            (
                [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html.into_string(),
            )
                .into_response()
        }
        Err(e) => page::failure(&e),
    }
}
