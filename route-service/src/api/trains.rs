//! Trains: submit (verified), list, one with its history, cancel, retry.

use super::{AppState, Caller, Failure};
use crate::db::TrainFilter;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use route_wire::{Role, SubmitTrain, TrainList, TrainState, TrainView};
use serde::Deserialize;

/// `POST /v1/trains`.
#[utoipa::path(post, path = "/v1/trains", request_body = SubmitTrain, security(("api_key" = [])),
    responses((status = 201, description = "accepted: the train as stored", body = TrainView),
              (status = 403, description = "only creators submit", body = route_wire::ApiError),
              (status = 404, description = "the calling creator is no longer registered", body = route_wire::ApiError),
              (status = 409, description = "a train with this id exists", body = route_wire::ApiError),
              (status = 422, description = "a value is wrong, or a check failed (`rejected`; `check` names it)", body = route_wire::ApiError),
              (status = 502, description = "the registry failed while the image was read; submit again", body = route_wire::ApiError)))]
pub async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitTrain>,
) -> Result<(StatusCode, Json<TrainView>), Failure> {
    if caller.0.role != Role::Creator {
        return Err(Failure::forbidden(
            caller.id(),
            "submit trains (only creators do)",
        ));
    }
    let creator =
        st.db.creator(caller.id()).await?.ok_or_else(|| {
            Failure::not_found(format!("creator {} is not registered", caller.id()))
        })?;
    let work = tempfile::Builder::new()
        .prefix("submission-")
        .tempdir_in(&st.work)
        .map_err(|e| Failure::internal(format!("scratch space for a submission: {e}")))?;
    let started = std::time::Instant::now();
    let t = crate::submit::verify(&st.db, &st.reg, &creator, &req, work.path()).await;
    metrics::histogram!(crate::metrics::SUBMIT_VERIFY_SECONDS)
        .record(started.elapsed().as_secs_f64());
    let t = t.inspect_err(
        |e| tracing::info!(creator = caller.id(), image = %req.image, "submission refused: {e}"),
    )?;
    st.db
        .create_train(&t, st.cfg.mover.hop_deadline_secs as i64 * 1000)
        .await?;
    tracing::info!(train = %t.id, creator = caller.id(), "submitted: {}", t.detail);
    let v = st.db.train_view(&t.id, true).await?.expect("just stored");
    Ok((StatusCode::CREATED, Json(v)))
}

/// Filters of `GET /v1/trains`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only trains in this state.
    pub(crate) state: Option<TrainState>,
    /// Only this creator's (admins; creators always see only their own).
    #[param(pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)]
    pub(crate) creator: Option<route_wire::CreatorId>,
    /// Only trains whose open hop is at this station.
    #[param(pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)]
    pub(crate) station: Option<route_wire::StationId>,
}

/// `GET /v1/trains`.
#[utoipa::path(get, path = "/v1/trains", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, description = "the trains the caller may see", body = TrainList),
              (status = 403, description = "a creator asked for another creator's, a station for another station's", body = route_wire::ApiError)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<TrainList>, Failure> {
    let mut f = TrainFilter {
        state: q.state,
        creator: q.creator,
        station: q.station,
    };
    match caller.0.role {
        Role::Creator => {
            if f.creator.as_deref().is_some_and(|c| c != caller.id()) {
                return Err(Failure::forbidden(
                    caller.id(),
                    "list another creator's trains",
                ));
            }
            f.creator = Some(caller.0.id.clone());
        }
        Role::Station => {
            if f.station.as_deref().is_some_and(|s| s != caller.id()) {
                return Err(Failure::forbidden(
                    caller.id(),
                    "list another station's trains",
                ));
            }
            f.station = Some(caller.0.id.clone());
        }
        _ => {}
    }
    Ok(Json(TrainList {
        trains: st.db.trains(&f).await?,
    }))
}

/// The train `id` if `caller` may see it: admins all, creators their own, stations those whose
/// open hop is theirs. 404 when it does not exist, 403 when it is not the caller's.
pub(super) async fn visible(
    st: &AppState,
    caller: &Caller,
    id: &str,
    events: bool,
) -> Result<TrainView, Failure> {
    let t = st
        .db
        .train_view(id, events)
        .await?
        .ok_or_else(|| Failure::not_found(format!("no train `{id}`")))?;
    let ok = match caller.0.role {
        Role::Admin => true,
        Role::Creator => t.creator == caller.id(),
        Role::Station => t
            .current_hop
            .and_then(|i| t.hops.get(i))
            .is_some_and(|h| h.station.as_deref() == Some(caller.id())),
    };
    if ok {
        Ok(t)
    } else {
        Err(Failure::forbidden(caller.id(), format!("see train {id}")))
    }
}

/// `GET /v1/trains/{id}`: the train with its hops, states and events.
#[utoipa::path(get, path = "/v1/trains/{id}", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), security(("api_key" = [])),
    responses((status = 200, description = "the train with its hops, states and events", body = TrainView),
              (status = 403, description = "not the caller's train", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError)))]
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
) -> Result<Json<TrainView>, Failure> {
    Ok(Json(visible(&st, &caller, &id, true).await?))
}

/// `POST /v1/trains/{id}/cancel` (admin, or the train's creator).
#[utoipa::path(post, path = "/v1/trains/{id}/cancel", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), security(("api_key" = [])),
    responses((status = 200, description = "cancelled", body = TrainView),
              (status = 403, description = "not an admin or the train's creator", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError),
              (status = 409, description = "the train has already ended", body = route_wire::ApiError)))]
pub async fn cancel(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
) -> Result<Json<TrainView>, Failure> {
    caller.require(Role::Creator, "cancel trains")?;
    visible(&st, &caller, &id, false).await?;
    if let Err(why) = st.db.cancel_train(&id, caller.id()).await? {
        return Err(Failure::conflict(why.reason));
    }
    Ok(Json(visible(&st, &caller, &id, true).await?))
}

/// `POST /v1/trains/{id}/retry` (admin): moves a failed or expired hop again.
#[utoipa::path(post, path = "/v1/trains/{id}/retry", params(("id" = String, Path, description = "the train's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), security(("api_key" = [])),
    responses((status = 200, description = "the failed hop moves again", body = TrainView),
              (status = 403, description = "admins only", body = route_wire::ApiError),
              (status = 404, description = "no such train", body = route_wire::ApiError),
              (status = 409, description = "the train has no failed hop", body = route_wire::ApiError)))]
pub async fn retry(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::TrainId>,
) -> Result<Json<TrainView>, Failure> {
    caller.require(Role::Admin, "retry trains (admins do)")?;
    if let Err(why) = st.db.retry_train(&id, caller.id()).await? {
        if st.db.train(&id).await?.is_none() {
            return Err(Failure::not_found(format!("no train `{id}`")));
        }
        return Err(Failure::conflict(why.reason));
    }
    Ok(Json(visible(&st, &caller, &id, true).await?))
}
