//! The authenticated caller, as an axum extractor: `Authorization: ApiKey <id> <key>` checked
//! against the stored hash; unknown principals and wrong keys are 401 with one message.

use super::{AppState, Failure};
use crate::auth::{key_matches, parse_header, AuthError, Principal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use route_wire::{PrincipalId, Role};

/// Who is calling.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Failure> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().map_err(|_| AuthError::Malformed))
            .transpose()?;
        let (id, key) = parse_header(header)?;
        // What names no principal is never logged: it may be a key sent in the wrong place
        // (`ApiKey <key> <id>`: a key is a valid id). A known principal's id is no secret.
        let Ok(id) = id.parse::<PrincipalId>() else {
            return Err(login_failed("api_key", None).await);
        };
        match st.db.principal(&id).await? {
            Some((role, hash)) if key_matches(&id, key, &hash) => {
                Ok(Caller(Principal { id, role }))
            }
            Some(_) => Err(login_failed("api_key", Some(&id)).await),
            None => Err(login_failed("api_key", None).await),
        }
    }
}

/// How long a failed login waits before its answer. Keys have 256 random bits, so this is not
/// what stops guessing; it makes a guessing client slow and its burst visible on
/// `route_login_failures_total` (alert on its rate) without delaying a good login, and
/// without a lockout a stranger could use to lock a station out.
pub const FAILED_LOGIN_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

/// A failed login by `via` (`api_key` or `registry_login`): logged with the principal only
/// when the id names one, counted either way, answered after [`FAILED_LOGIN_DELAY`].
pub(crate) async fn login_failed(via: &'static str, known: Option<&PrincipalId>) -> Failure {
    let principal = if known.is_some() { "known" } else { "unknown" };
    metrics::counter!(crate::metrics::LOGIN_FAILURES, "via" => via, "principal" => principal)
        .increment(1);
    match known {
        Some(id) => tracing::warn!(principal = %id, via, "login failed: wrong key"),
        None => tracing::warn!(via, "login failed: no such principal"),
    }
    tokio::time::sleep(FAILED_LOGIN_DELAY).await;
    match via {
        "api_key" => AuthError::Unknown.into(),
        _ => Failure::new(
            route_wire::ErrorCode::Unauthenticated,
            "wrong registry credentials: log in with your principal id and API key",
        ),
    }
}

impl Caller {
    /// The caller's id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }

    /// 403 unless the caller has `role` (admins pass every check).
    pub fn require(&self, role: Role, what: &str) -> Result<(), Failure> {
        if self.is_admin() || self.0.role == role {
            Ok(())
        } else {
            Err(Failure::forbidden(&self.0.id, what))
        }
    }

    /// 403 unless the caller is the station `id` (or an admin).
    pub fn require_station(&self, id: &str, what: &str) -> Result<(), Failure> {
        if self.is_admin() || (self.0.role == Role::Station && self.0.id == id) {
            Ok(())
        } else {
            Err(Failure::forbidden(&self.0.id, what))
        }
    }
}
