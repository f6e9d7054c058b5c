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
use route_wire::{ApiError, ErrorCode};

/// A failed request.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    body: ApiError,
}

impl Failure {
    /// A failure with `code` (which decides the status) and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(code.status()).expect("every code has a valid status"),
            body: ApiError {
                error: code,
                message: message.into(),
                check: None,
            },
        }
    }

    /// 403, logged with the principal and what it tried.
    pub fn forbidden(who: &str, what: impl Into<String>) -> Self {
        let what = what.into();
        tracing::warn!(principal = who, "denied: {what}");
        metrics::counter!(crate::metrics::API_DENIED).increment(1);
        Self::new(ErrorCode::Forbidden, format!("{who} may not {what}"))
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// 422 `invalid`.
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, what)
    }

    /// 409.
    pub fn conflict(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, what)
    }

    /// 500 with a message for the caller; what failed is logged, not sent.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!("internal failure: {what}");
        Self::new(
            ErrorCode::Internal,
            "the service failed; try again, and tell its admins if it persists",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.body.error
    }

    /// The message the caller is given.
    pub fn message(&self) -> &str {
        &self.body.message
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        metrics::counter!(crate::metrics::API_UNAUTHENTICATED).increment(1);
        Self::new(ErrorCode::Unauthenticated, e.to_string())
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => Self::conflict(m),
            DbError::Invalid(m) => Self::invalid(m),
            DbError::NotFound(m) => Self::not_found(m),
            DbError::State(m) => Self::conflict(m),
            e => {
                tracing::error!(error = %e, "database failure");
                Self::new(
                    ErrorCode::Internal,
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
            e => Self::new(ErrorCode::Registry, e.to_string()),
        }
    }
}

impl From<SubmitError> for Failure {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected { check, detail } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: ApiError {
                    error: ErrorCode::Rejected,
                    message: format!("{check}: {detail}"),
                    check: Some(check),
                },
            },
            SubmitError::Registry(e) => Self::new(
                ErrorCode::Registry,
                format!("{e}; check that the image was pushed and the registry is up, then submit again"),
            ),
            SubmitError::Db(d) => d.into(),
        }
    }
}
