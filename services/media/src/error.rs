//! The media service's one error type and its one mapping to gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// Over the size limit of its type.
    #[error("{0}")]
    TooLarge(String),
    /// The upload would take its owner past their storage quota.
    #[error("storage quota exceeded: {used} of {quota} bytes in use, the upload needs {needed}")]
    QuotaExceeded { used: u64, quota: u64, needed: u64 },
    /// The content's type is not allowed, or not what the client said.
    #[error("{0}")]
    UnsupportedType(String),
    /// Unknown, or not the caller's to see: the same answer.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    /// Valid, but the current state forbids it (e.g. still processing).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Dependency(Status),
    #[error("storage error: {0}")]
    Storage(#[from] object_store::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

/// The ErrorInfo reason the gateway turns into 413 `storage_quota_exceeded`.
pub const QUOTA_EXCEEDED: &str = "STORAGE_QUOTA_EXCEEDED";

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match &err {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(*field, reason.clone()),
            ),
            Error::TooLarge(reason) => Status::with_error_details(
                Code::OutOfRange,
                message.clone(),
                ErrorDetails::with_bad_request_violation("size", reason.clone()),
            ),
            Error::QuotaExceeded { used, quota, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                message.clone(),
                ErrorDetails::with_error_info(
                    QUOTA_EXCEEDED,
                    "media",
                    [
                        ("used_bytes".to_owned(), used.to_string()),
                        ("quota_bytes".to_owned(), quota.to_string()),
                    ],
                ),
            ),
            Error::UnsupportedType(reason) => Status::with_error_details(
                Code::FailedPrecondition,
                message.clone(),
                ErrorDetails::with_bad_request_violation("content_type", reason.clone()),
            ),
            Error::NotFound(_) => Status::not_found(message),
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::Conflict(_) => Status::aborted(message),
            Error::Dependency(status) => match status.code() {
                Code::Unavailable | Code::DeadlineExceeded => {
                    Status::new(status.code(), status.message())
                }
                _ => {
                    tracing::error!(error = %status, "dependency failed");
                    Status::internal("internal error")
                }
            },
            Error::Storage(_) | Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %err, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
