//! The dashboard's actions: each a form POST that calls the API's own handler as the
//! signed-in principal (so the permission matrix that covers the API covers these), then
//! redirects to the train's page (post/redirect/get), or shows the page again with the API's
//! refusal.

use super::page::{self, Flash};
use super::session::{csrf_refused, Viewer};
use super::trains::render_train;
use crate::api::{station_self, stations, trains, AppState, Caller, Failure};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use route_wire::{Decision, KeyAcceptance, TrainId};

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

#[derive(serde::Deserialize)]
pub struct RejectForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

#[derive(serde::Deserialize)]
pub struct AcceptForm {
    csrf: String,
    fingerprint: String,
}

fn caller(v: &Viewer) -> Caller {
    Caller(v.caller.0.clone())
}

/// The outcome of an action on train `id`: to its page, or its page with the refusal.
async fn after<T>(
    st: AppState,
    v: &Viewer,
    headers: &HeaderMap,
    id: TrainId,
    done: Result<T, Failure>,
) -> Response {
    match done {
        // A station sees a train only while its stop is open: back to its queue.
        Ok(_) if v.caller.0.role == route_wire::Role::Station => {
            Redirect::to("/ui").into_response()
        }
        Ok(_) => Redirect::to(&format!("/ui/trains/{id}")).into_response(),
        Err(e) => match trains::get_one(State(st.clone()), caller(v), Path(id)).await {
            Ok(Json(t)) => {
                let mut r = render_train(&st, v, headers, &t, Some(&Flash::error(e.message())));
                *r.status_mut() = e.status();
                r
            }
            Err(_) => page::failure(&e),
        },
    }
}

/// An action on train `id` once the form's CSRF token checks: `call` as the viewer.
async fn act<T, F>(
    st: AppState,
    v: Viewer,
    headers: HeaderMap,
    id: TrainId,
    csrf: &str,
    call: impl FnOnce(State<AppState>, Caller, Path<TrainId>) -> F,
) -> Response
where
    F: std::future::Future<Output = Result<T, Failure>>,
{
    if let Some(r) = csrf_refused(&v, &headers, csrf) {
        return r;
    }
    let done = call(State(st.clone()), caller(&v), Path(id.clone())).await;
    after(st, &v, &headers, id, done).await
}

/// `POST /ui/trains/{id}/cancel`.
pub async fn cancel(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<TrainId>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    act(st, v, headers, id, &f.csrf, trains::cancel).await
}

/// `POST /ui/trains/{id}/retry`.
pub async fn retry(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<TrainId>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    act(st, v, headers, id, &f.csrf, trains::retry).await
}

/// `POST /ui/trains/{id}/approve`.
pub async fn approve(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<TrainId>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    act(st, v, headers, id, &f.csrf, |s, c, p| {
        stations::approve(s, c, p, HeaderMap::new(), Bytes::new())
    })
    .await
}

/// `POST /ui/trains/{id}/reject` with a reason.
pub async fn reject(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<TrainId>,
    Form(f): Form<RejectForm>,
) -> Response {
    let d = Decision {
        reason: Some(f.reason),
    };
    act(st, v, headers, id, &f.csrf, |s, c, p| {
        stations::reject(s, c, p, Json(d))
    })
    .await
}

/// `POST /ui/stations/{id}/accept-key` (admin) with the fingerprint the admin checked.
pub async fn accept_key(
    State(st): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<route_wire::StationId>,
    Form(f): Form<AcceptForm>,
) -> Response {
    if let Some(r) = csrf_refused(&v, &headers, &f.csrf) {
        return r;
    }
    let a = KeyAcceptance {
        fingerprint: f.fingerprint,
    };
    match station_self::accept_key(State(st.clone()), caller(&v), Path(id), Json(a)).await {
        Ok(_) => Redirect::to("/ui/stations").into_response(),
        Err(e) => {
            super::admin::render_stations(&st, &v, Some(&Flash::error(e.message())), e.status())
                .await
        }
    }
}
