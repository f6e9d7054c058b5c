//! Registry notifications. Each configured registry has its own shared secret, sent by the
//! registry as its `Authorization` header; the secret identifies the registry, so a
//! notification cannot claim to come from another. Wrong or missing: 401 and nothing recorded.
//! Each event is recorded by the registry's own id (a redelivery changes nothing) and answered
//! at once; the push it announces is then checked against the registry in the background (a
//! notification is a hint: only what the outbox holds counts). Should the service stop before
//! that check, the reconciliation pass finds the push.

use super::{AppState, Failure};
use crate::auth::constant_eq;
use crate::config::RegistryConfig;
use crate::db::Pushed;
use crate::notify::{self, Push};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use route_wire::ErrorCode;
use secrecy::ExposeSecret;
use serde::Serialize;

/// What a notification held.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Received {
    /// Tagged manifest pushes taken for checking (each then moves a train on or is ignored
    /// with its reason in the train's events and the log).
    pub received: usize,
    /// Events seen before (redeliveries): nothing changes.
    pub duplicates: usize,
}

fn registry_for<'a>(st: &'a AppState, h: &HeaderMap) -> Result<&'a RegistryConfig, Failure> {
    let given = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .unwrap_or("");
    // Every configured secret is compared (no early exit), so timing does not say which
    // registry's secret a guess came close to.
    let mut found = None;
    for r in &st.cfg.registries {
        if let Some(s) = &r.secret {
            if constant_eq(s.expose_secret().as_bytes(), given.as_bytes()) && found.is_none() {
                found = Some(r);
            }
        }
    }
    found.ok_or_else(|| {
        tracing::warn!("registry notification with a wrong or missing secret refused");
        metrics::counter!(crate::metrics::NOTIFICATIONS_REFUSED).increment(1);
        Failure::new(
            ErrorCode::Unauthenticated,
            "wrong or missing notification secret; set the registry's endpoint header \
             `Authorization` to the secret configured for it",
        )
    })
}

async fn take(st: &AppState, reg: &RegistryConfig, pushes: Vec<Push>) -> Result<Received, Failure> {
    let started = std::time::Instant::now();
    let mut r = Received {
        received: 0,
        duplicates: 0,
    };
    for p in pushes {
        if !st.db.first_notification(&reg.address, &p).await? {
            r.duplicates += 1;
            continue;
        }
        r.received += 1;
        let (mover, address) = (st.mover.clone(), reg.address.clone());
        let db = st.db.clone();
        tokio::spawn(async move {
            let outcome = match mover.notified_push(&address, &p).await {
                Ok(Ok(Pushed::New)) => format!(
                    "accepted: {} pushed train {}; it moves on",
                    p.repository, p.tag
                ),
                Ok(Ok(Pushed::Duplicate)) => "duplicate: this push was already counted".to_string(),
                Ok(Err(why)) => format!("ignored: {why}"),
                Err(e) => {
                    tracing::warn!(error = %e, repository = %p.repository, tag = %p.tag, "checking a notified push failed; reconciliation will look again");
                    format!("failed: {e}; reconciliation will look again")
                }
            };
            if let Err(e) = db.notification_outcome(&address, &p.key, &outcome).await {
                tracing::warn!(error = %e, "recording a notification's outcome");
            }
        });
    }
    metrics::histogram!(crate::metrics::NOTIFICATION_SECONDS)
        .record(started.elapsed().as_secs_f64());
    Ok(r)
}

/// `POST /v1/registry-events/distribution`: CNCF distribution's envelope (v1 or v2 media
/// type, or plain JSON).
#[utoipa::path(post, path = "/v1/registry-events/distribution", security(("registry_secret" = [])),
    request_body(content = crate::notify::DistributionEnvelope, description = "distribution's notification envelope (the media type distribution sends; any is read)", content_type = "application/vnd.docker.distribution.events.v1+json"),
    responses((status = 200, description = "taken", body = Received),
              (status = 401, description = "a wrong or missing notification secret", body = route_wire::ApiError)))]
pub async fn distribution(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, Failure> {
    let reg = registry_for(&st, &headers)?;
    let pushes = notify::distribution(&body)
        .map_err(|e| Failure::new(ErrorCode::BadRequest, e.to_string()))?;
    Ok(Json(take(&st, reg, pushes).await?))
}

/// `POST /v1/registry-events/harbor`: Harbor's webhook (`PUSH_ARTIFACT`; other types are
/// answered and ignored).
#[utoipa::path(post, path = "/v1/registry-events/harbor", security(("registry_secret" = [])),
    request_body(content = crate::notify::HarborHook, description = "Harbor's webhook payload", content_type = "application/json"),
    responses((status = 200, description = "taken", body = Received),
              (status = 401, description = "a wrong or missing notification secret", body = route_wire::ApiError)))]
pub async fn harbor(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, Failure> {
    let reg = registry_for(&st, &headers)?;
    let pushes =
        notify::harbor(&body).map_err(|e| Failure::new(ErrorCode::BadRequest, e.to_string()))?;
    Ok(Json(take(&st, reg, pushes).await?))
}

/// Filters of `GET /v1/notifications`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only this registry's (`host:port`, as configured).
    #[param(max_length = 255)]
    pub(crate) registry: Option<String>,
    /// How many, newest first (1–1000; 100 when not given).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<i64>,
}

/// `GET /v1/notifications`: the registry notification log, newest first (admins).
#[utoipa::path(get, path = "/v1/notifications", params(NotificationQuery), security(("api_key" = [])),
    responses((status = 200, description = "the latest notifications and what the service made of each", body = [route_wire::NotificationView]),
              (status = 400, description = "a limit outside 1–1000, a registry name over 255 characters", body = route_wire::ApiError),
              (status = 403, description = "admins only", body = route_wire::ApiError)))]
pub async fn list_notifications(
    State(st): State<AppState>,
    caller: super::Caller,
    axum::extract::Query(q): axum::extract::Query<NotificationQuery>,
) -> Result<Json<Vec<route_wire::NotificationView>>, Failure> {
    caller.require(
        route_wire::Role::Admin,
        "read the registry notification log (admins do)",
    )?;
    if q.registry.as_ref().is_some_and(|r| r.len() > 255) {
        return Err(Failure::new(
            ErrorCode::BadRequest,
            "registry: name one as configured (host:port, at most 255 characters)",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Failure::new(
            ErrorCode::BadRequest,
            format!("limit {limit}: ask for 1 to 1000 notifications"),
        ));
    }
    Ok(Json(
        st.db.notifications(q.registry.as_deref(), limit).await?,
    ))
}
