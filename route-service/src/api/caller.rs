//! The authenticated caller, as an axum extractor: `Authorization: ApiKey <id> <key>` checked
//! against the stored hash; unknown principals and wrong keys are 401 with one message.

use super::{AppState, Failure};
use crate::auth::{key_matches, parse_header, AuthError, Principal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use route_wire::Role;

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
        match st.db.principal(id).await? {
            Some((role, hash)) if key_matches(id, key, &hash) => Ok(Caller(Principal {
                id: id.to_string(),
                role,
            })),
            _ => {
                tracing::warn!(principal = id, "authentication failed");
                Err(AuthError::Unknown.into())
            }
        }
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
