//! Error responses: every failure is a JSON [`ApiError`] with a stable code, and the status
//! code the API documents (401 unknown principal, 403 denied, 404, 409, 422 refused, 502
//! registry trouble, 503 not ready, 500).

use crate::auth::AuthError;
use crate::db::DbError;
use crate::mover::MoveError;
use crate::submit::SubmitError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use route_wire::ApiError;

/// A failed request.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    body: ApiError,
}

impl Failure {
    /// A failure with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error: code.into(),
                message: message.into(),
                check: None,
            },
        }
    }

    /// 403, logged with the principal and what it tried.
    pub fn forbidden(who: &str, what: impl Into<String>) -> Self {
        let what = what.into();
        tracing::warn!(principal = who, "denied: {what}");
        metrics::counter!("route_api_denied_total").increment(1);
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{who} may not {what}"),
        )
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 422 `invalid`.
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", what)
    }

    /// 409.
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", what)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        metrics::counter!("route_api_unauthenticated_total").increment(1);
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => Self::conflict(m),
            DbError::NotFound(m) => Self::not_found(m),
            DbError::State(m) => Self::conflict(m),
            e => {
                tracing::error!(error = %e, "database failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the service's database failed; try again, and tell its admins if it persists",
                )
            }
        }
    }
}

impl From<MoveError> for Failure {
    fn from(e: MoveError) -> Self {
        match e {
            MoveError::Db(d) => d.into(),
            e => Self::new(StatusCode::BAD_GATEWAY, "registry", e.to_string()),
        }
    }
}

impl From<SubmitError> for Failure {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected { check, detail } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: ApiError {
                    error: "rejected".into(),
                    message: format!("{check}: {detail}"),
                    check: Some(check),
                },
            },
            SubmitError::Registry(e) => Self::new(
                StatusCode::BAD_GATEWAY,
                "registry",
                format!("{e}; check that the image was pushed and the registry is up, then submit again"),
            ),
            SubmitError::Db(d) => d.into(),
            #[allow(unreachable_patterns)]
            e => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}
