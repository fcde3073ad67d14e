//! The messages service's one error type and its one mapping to gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// Unknown, or in a conversation the caller cannot read: the same
    /// answer, so private conversations do not leak.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the current state forbids it.
    #[error("{0}")]
    Conflict(String),
    /// A service this one depends on failed or is unreachable.
    #[error("{0}")]
    Dependency(Status),
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

    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict(message.into())
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Error::PermissionDenied(message.into())
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match &err {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                err.to_string(),
                ErrorDetails::with_bad_request_violation(*field, reason.clone()),
            ),
            Error::NotFound(_) => Status::not_found(err.to_string()),
            Error::PermissionDenied(_) => Status::permission_denied(err.to_string()),
            Error::Conflict(_) => Status::failed_precondition(err.to_string()),
            // Unavailable and timeouts pass through so callers can retry;
            // anything else from a dependency is our internal failure.
            Error::Dependency(status) => match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                    Status::new(status.code(), status.message())
                }
                _ => {
                    tracing::error!(error = %status, "dependency failed");
                    Status::internal("internal error")
                }
            },
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %err, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
