//! The notifier's one error type and its one mapping to gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// Unknown, or not the caller's: the same answer.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    LimitReached(String),
    /// Web Push is not configured on this deployment.
    #[error("Web Push is not enabled on this server")]
    Disabled,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match &err {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(*field, reason.clone()),
            ),
            Error::NotFound(_) => Status::not_found(message),
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::LimitReached(_) => Status::failed_precondition(message),
            Error::Disabled => Status::failed_precondition(message),
            Error::Database(sqlx::Error::PoolTimedOut) => {
                Status::unavailable("the database is busy; try again")
            }
            Error::Database(_) => {
                tracing::error!(error = %err, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
