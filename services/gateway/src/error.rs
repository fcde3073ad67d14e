//! The gateway's one error shape, `{"error":{"code","message","details"}}`,
//! and the one place gRPC statuses and extractor rejections become HTTP.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

/// The stable, machine-readable `error.code` values clients branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    InvalidJson,
    InvalidQuery,
    InvalidPath,
    Unauthenticated,
    TokenExpired,
    SessionRevoked,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    AlreadyExists,
    Conflict,
    PayloadTooLarge,
    StorageQuotaExceeded,
    UnsupportedMediaType,
    RangeNotSatisfiable,
    RequestTimeout,
    RateLimited,
    UploadsDisabled,
    Internal,
    Unavailable,
    Timeout,
}

impl ErrorCode {
    pub const ALL: &[ErrorCode] = &[
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidPath,
        ErrorCode::Unauthenticated,
        ErrorCode::TokenExpired,
        ErrorCode::SessionRevoked,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::StorageQuotaExceeded,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RangeNotSatisfiable,
        ErrorCode::RequestTimeout,
        ErrorCode::RateLimited,
        ErrorCode::UploadsDisabled,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::SessionRevoked => "session_revoked",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::StorageQuotaExceeded => "storage_quota_exceeded",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::UploadsDisabled => "uploads_disabled",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
    /// Headers the answer carries besides the body (a refused request's
    /// `RateLimit-*`).
    /// (Boxed: errors travel in every `Result` of every handler.)
    pub headers: Option<Box<HeaderMap>>,
    /// A busy backend's advice (gRPC RetryInfo): the 503's `Retry-After`.
    pub retry_after: Option<u64>,
}

/// Error response body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable machine-readable code, e.g. `invalid_argument`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra context, e.g. `{"field": "username"}`.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            headers: None,
            retry_after: None,
        }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Renames the `field` detail from the name a backend contract uses to
    /// the one the client sent.
    pub fn rename_field(self, contract: &str, public: &str) -> Self {
        if self.details.get("field").and_then(Value::as_str) == Some(contract) {
            self.with_detail("field", public)
        } else {
            self
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidArgument, message)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::bad_request(message).with_detail("field", field)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            message,
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
}

/// The ErrorInfo reason the media service gives an upload past its owner's
/// storage quota.
const STORAGE_QUOTA_EXCEEDED: &str = "STORAGE_QUOTA_EXCEEDED";

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        if let Some(info) = status.get_details_error_info()
            && info.reason == STORAGE_QUOTA_EXCEEDED
        {
            let mut error = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::StorageQuotaExceeded,
                status.message(),
            );
            for key in ["used_bytes", "quota_bytes"] {
                if let Some(bytes) = info.metadata.get(key).and_then(|v| v.parse::<u64>().ok()) {
                    error = error.with_detail(key, bytes);
                }
            }
            return error;
        }
        let (http, code) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidArgument)
            }
            Code::AlreadyExists => (StatusCode::CONFLICT, ErrorCode::AlreadyExists),
            Code::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, ErrorCode::PermissionDenied),
            Code::FailedPrecondition | Code::Aborted => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            Code::DeadlineExceeded | Code::Cancelled => {
                (StatusCode::GATEWAY_TIMEOUT, ErrorCode::Timeout)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        };
        if http.is_server_error() {
            tracing::error!(code = ?status.code(), message = status.message(), "upstream call failed");
            let message = match http {
                StatusCode::SERVICE_UNAVAILABLE => "a backend service is unavailable, retry later",
                StatusCode::GATEWAY_TIMEOUT => "a backend service did not answer in time",
                _ => "internal error",
            };
            let retry_after = status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay)
                .map(|delay| delay.as_secs().max(1));
            return ApiError {
                retry_after,
                ..ApiError::new(http, code, message)
            };
        }
        let mut error = ApiError::new(http, code, status.message());
        if http == StatusCode::TOO_MANY_REQUESTS
            && let Some(delay) = status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay)
        {
            let seconds = delay.as_secs().max(1);
            error.retry_after = Some(seconds);
            error = error.with_detail("retry_after", seconds);
        }
        if let Some(violation) = status
            .get_details_bad_request()
            .and_then(|bad_request| bad_request.field_violations.into_iter().next())
        {
            error = error.with_detail("field", violation.field);
        }
        error
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let (status, code) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => (status, ErrorCode::PayloadTooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, ErrorCode::UnsupportedMediaType),
            _ => (StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQuery,
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPath,
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let headers = self.headers;
        let retry_after = self.retry_after;
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code.as_str().to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"messenger\""),
            );
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(headers) = headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn the_api_reference_lists_every_error_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let reference = std::fs::read_to_string(path).expect("docs/api.md");
        let errors = reference
            .split("## Errors")
            .nth(1)
            .and_then(|section| section.split("\n## ").next())
            .expect("an Errors section");
        for code in ErrorCode::ALL {
            let name = format!("`{}`", code.as_str());
            assert!(errors.contains(&name), "docs/api.md does not list {name}");
        }
    }
}
