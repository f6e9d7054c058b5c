//! The API's error body and its codes: one enum, shared by the service (which answers with it)
//! and its clients (which branch on it), so that no one matches on message text.

use serde::{Deserialize, Serialize};

/// The machine code of an error; each has one HTTP status ([`ErrorCode::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request is malformed (a body that is not JSON, a query or path that does not
    /// decode).
    BadRequest,
    /// 401: no credentials, an unknown principal or a wrong key.
    Unauthenticated,
    /// 403: the principal may not do this.
    Forbidden,
    /// 404: no such resource or route.
    NotFound,
    /// 405: the path exists, the method does not (`Allow` lists those that do).
    MethodNotAllowed,
    /// 409: the resource is not in a state that allows this.
    Conflict,
    /// 413: the body is larger than the service accepts.
    TooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed, but a value is wrong.
    Invalid,
    /// 422: a submission check failed; `check` names it.
    Rejected,
    /// 429: too many requests of this kind at once; try again later.
    TooManyRequests,
    /// 500: the service failed.
    Internal,
    /// 502: a registry failed while the service read or wrote it.
    Registry,
    /// 503: the service is not ready or is shutting down.
    Unavailable,
    /// A code this client does not know (a newer service); the status and message still tell.
    /// Never sent (so not in the OpenAPI document).
    #[serde(other, skip_serializing)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status the service answers this code with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Invalid | ErrorCode::Rejected => 422,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
            ErrorCode::Registry => 502,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The code of an error answer with `status` that carried no code of its own (a proxy's
    /// page): the code of that status, else the class's general one (`bad_request`,
    /// `internal`); `Unknown` only for a status that is no error.
    pub fn for_status(status: u16) -> Self {
        match status {
            401 => ErrorCode::Unauthenticated,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::TooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            422 => ErrorCode::Invalid,
            429 => ErrorCode::TooManyRequests,
            502 => ErrorCode::Registry,
            503 | 504 => ErrorCode::Unavailable,
            // 400 and every other client error.
            400..=499 => ErrorCode::BadRequest,
            500..=599 => ErrorCode::Internal,
            _ => ErrorCode::Unknown,
        }
    }
}

/// Every error body: a stable machine code and a message that says what to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// The machine code.
    pub error: ErrorCode,
    /// For people: what failed and what to do.
    pub message: String,
    /// For `rejected`: the check that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_spelling_and_unknown_ones_still_read() {
        let e: ApiError =
            serde_json::from_str(r#"{"error":"not_found","message":"no train"}"#).unwrap();
        assert_eq!(e.error, ErrorCode::NotFound);
        assert_eq!(e.error.status(), 404);
        let e: ApiError =
            serde_json::from_str(r#"{"error":"from_the_future","message":"x"}"#).unwrap();
        assert_eq!(e.error, ErrorCode::Unknown);
        assert_eq!(
            serde_json::to_string(&ErrorCode::UnsupportedMediaType).unwrap(),
            "\"unsupported_media_type\""
        );
        for s in [
            400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503,
        ] {
            assert_eq!(ErrorCode::for_status(s).status(), s, "{s}");
        }
        assert_eq!(ErrorCode::for_status(418), ErrorCode::BadRequest);
        assert_eq!(ErrorCode::for_status(504), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::for_status(200), ErrorCode::Unknown);
    }
}
