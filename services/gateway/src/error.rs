//! The gateway's one error shape, `{"error":{"code","message","details"}}`,
//! and the one place gRPC statuses and extractor rejections become HTTP.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Map<String, Value>,
    /// Rate limiting: what the 429's `Retry-After` and `RateLimit-*` say.
    pub rate_limit: Option<crate::ratelimit::Decision>,
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
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            rate_limit: None,
            retry_after: None,
        }
    }

    /// 429: the caller used up its allowance for this kind of request.
    pub fn too_many_requests(decision: crate::ratelimit::Decision) -> Self {
        ApiError {
            rate_limit: Some(decision),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests; retry in {} s",
                    decision.retry_after.max(1)
                ),
            )
            .with_detail("retry_after", decision.retry_after.max(1))
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
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::bad_request(message).with_detail("field", field)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let (http, code) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                (StatusCode::BAD_REQUEST, "invalid_argument")
            }
            Code::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
            Code::FailedPrecondition | Code::Aborted => (StatusCode::CONFLICT, "conflict"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Code::DeadlineExceeded | Code::Cancelled => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
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
            StatusCode::PAYLOAD_TOO_LARGE => (status, "payload_too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, "unsupported_media_type"),
            _ => (StatusCode::BAD_REQUEST, "invalid_json"),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let rate_limit = self.rate_limit;
        let retry_after = self.retry_after;
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code.to_owned(),
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
        if let Some(decision) = rate_limit {
            let headers = response.headers_mut();
            crate::http::rate_limit::set_headers(headers, decision);
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(decision.retry_after.max(1)),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
