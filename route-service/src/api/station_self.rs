//! What a station sets about itself: its proposed next key and how it takes trains.

use super::{AppState, Caller, Failure};
use axum::extract::{Path, State};
use axum::Json;
use route_wire::{ApprovalSetting, KeyAcceptance, KeyProposal, Role, StationKey};

/// `POST /v1/stations/{id}/key` (that station): proposes its next public key. It takes
/// effect when an admin accepts it with the fingerprint the station's operator gave them.
#[utoipa::path(post, path = "/v1/stations/{id}/key", params(("id" = String, Path, description = "the station's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), request_body = KeyProposal, security(("api_key" = [])),
    responses((status = 200, description = "proposed; an admin accepts it by fingerprint", body = StationKey),
              (status = 403, description = "only that station proposes its key", body = route_wire::ApiError),
              (status = 404, description = "no such station", body = route_wire::ApiError),
              (status = 422, description = "not a public key", body = route_wire::ApiError)))]
pub async fn propose_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::StationId>,
    Json(p): Json<KeyProposal>,
) -> Result<Json<StationKey>, Failure> {
    own_station(&caller, &id, "propose a key for")?;
    let key = train_lib::keys::public_key_from_text(p.public_key.as_bytes(), "public_key")
        .map_err(|e| {
            Failure::invalid(format!(
                "public_key: {e}; send the PEM `station keys show` prints"
            ))
        })?;
    let fingerprint = key.fingerprint();
    st.db.propose_key(&id, &key.to_pem(), &fingerprint).await?;
    tracing::info!(station = %id, %fingerprint, "station proposed a new key");
    super::stations::station_key(State(st), caller, Path(id)).await
}

/// `POST /v1/stations/{id}/key/accept` (admin): the station's proposed key becomes its key if
/// the fingerprint matches; trains already signed by the old key are not affected until their
/// next push (`docs/security.md`).
#[utoipa::path(post, path = "/v1/stations/{id}/key/accept", params(("id" = String, Path, description = "the station's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), request_body = KeyAcceptance, security(("api_key" = [])),
    responses((status = 200, description = "accepted: the station's key", body = StationKey),
              (status = 403, description = "admins only", body = route_wire::ApiError),
              (status = 404, description = "no such station", body = route_wire::ApiError),
              (status = 409, description = "no key proposed, or a different fingerprint proposed", body = route_wire::ApiError)))]
pub async fn accept_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::StationId>,
    Json(a): Json<KeyAcceptance>,
) -> Result<Json<StationKey>, Failure> {
    caller.require(Role::Admin, "accept station keys (admins do)")?;
    let old = st.db.accept_key(&id, a.fingerprint.trim()).await?;
    tracing::info!(station = %id, admin = caller.id(), old = %old, new = %a.fingerprint.trim(), "station key accepted");
    super::stations::station_key(State(st), caller, Path(id)).await
}

/// `PUT /v1/stations/{id}/approval` (that station): `auto` or `manual`.
#[utoipa::path(put, path = "/v1/stations/{id}/approval", params(("id" = String, Path, description = "the station's id (the id grammar: 1–128 of `A-Z a-z 0-9 . _ -`, first a letter or digit)", pattern = "^[A-Za-z0-9](?:\\.?[A-Za-z0-9_-])*\\.?$", max_length = 128)), request_body = ApprovalSetting, security(("api_key" = [])),
    responses((status = 200, description = "set", body = ApprovalSetting),
              (status = 403, description = "only that station sets its approval mode", body = route_wire::ApiError),
              (status = 404, description = "no such station", body = route_wire::ApiError)))]
pub async fn set_approval(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<route_wire::StationId>,
    Json(a): Json<ApprovalSetting>,
) -> Result<Json<ApprovalSetting>, Failure> {
    own_station(&caller, &id, "set the approval mode of")?;
    st.db.set_approval(&id, a.approval).await?;
    Ok(Json(a))
}

/// Only the station itself: an admin registers keys with the CLI, not through a station's
/// endpoint.
fn own_station(caller: &Caller, id: &str, what: &str) -> Result<(), Failure> {
    if caller.0.role == Role::Station && caller.0.id == id {
        Ok(())
    } else {
        Err(Failure::forbidden(
            caller.id(),
            format!("{what} station {id} (only that station may)"),
        ))
    }
}
