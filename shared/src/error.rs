//! The one error type every route answers with, rendered once as the SPEC's error shape:
//! `{"error": "...", "code": "...", "details"?: [{"field", "message"}]}`.

use http::StatusCode;
use serde::Serialize;

/// One problem with one field of a request, as listed in `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    ValidationError,
    InvalidJson,
    InvalidPageToken,
    Conflict,
    IdempotencyKeyReused,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Internal,
    UpstreamUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::ValidationError => "VALIDATION_ERROR",
            Self::InvalidJson => "INVALID_JSON",
            Self::InvalidPageToken => "INVALID_PAGE_TOKEN",
            Self::Conflict => "CONFLICT",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ValidationError | Self::InvalidJson | Self::InvalidPageToken => {
                StatusCode::BAD_REQUEST
            }
            Self::Conflict | Self::IdempotencyKeyReused => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// `{"error", "code", "details"?}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub code: &'static str,
    #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
    pub details: &'a [FieldProblem],
    /// A create refused by `dedupe: one_active_per_number`: the callback that holds the number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_callback_id: Option<&'a str>,
}

/// An error as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<FieldProblem>,
    /// Whole seconds after which a retry may succeed (`Retry-After` of a 429 or 503).
    pub retry_after: Option<u64>,
    /// See [`ErrorBody::existing_callback_id`].
    pub existing_callback_id: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let retry_after = match code {
            // A backing service that failed past the request's deadline (a throttled table, a
            // contended resource): a second is what the SDK itself waits at most between tries.
            ErrorCode::UpstreamUnavailable | ErrorCode::RateLimited => Some(1),
            _ => None,
        };
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after,
            existing_callback_id: None,
        }
    }

    /// A 429: over `what`'s request budget, which has room again in `retry_after` seconds.
    pub fn rate_limited(what: &str, retry_after: u64) -> Self {
        let mut err = Self::new(
            ErrorCode::RateLimited,
            format!("Too many requests for {what}; retry after {retry_after} s"),
        );
        err.retry_after = Some(retry_after.max(1));
        err
    }

    /// The one 401: its body is fixed by the SPEC, so it carries no detail.
    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "Unauthorized")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidJson, message)
    }
    pub fn invalid_page_token(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidPageToken, message)
    }
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "Internal error")
    }
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::UpstreamUnavailable,
            "A backing service is unavailable; the request is safe to retry",
        )
    }

    /// A validation error listing every problem found.
    pub fn validation(details: Vec<FieldProblem>) -> Self {
        let message = match details.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            _ => format!("{} fields are invalid", details.len()),
        };
        Self {
            code: ErrorCode::ValidationError,
            message,
            details,
            retry_after: None,
            existing_callback_id: None,
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldProblem::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The SPEC's error body, fields in the SPEC's order.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: &self.message,
            code: self.code.as_str(),
            details: &self.details,
            existing_callback_id: self.existing_callback_id.as_deref(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                Self::unavailable()
            }
            // Conflicts are resolved by the use case that wrote; one reaching here is a race the
            // caller may simply retry.
            StoreError::ConditionFailed => {
                Self::conflict("The resource changed while the request ran; retry it")
            }
            StoreError::Corrupt(reason) => {
                tracing::error!(%reason, "unreadable item in the store");
                Self::internal()
            }
            // Input is validated before it makes a key; one that is still too long is the
            // caller's, not a fault of the service.
            StoreError::InvalidKey(reason) => {
                tracing::warn!(%reason, "a key over the store's limits reached the store");
                Self::new(
                    ErrorCode::ValidationError,
                    "A value of the request is too long to be stored or looked up",
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
