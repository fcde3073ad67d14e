//! The groups service's one error type and its one mapping to gRPC status.

use crate::permissions::Denied;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// Unknown, or private and not visible to the caller: the same answer,
    /// so private groups' existence does not leak.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the current state forbids it.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    AlreadyExists(&'static str),
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

    /// Unique violations that mean "name taken" rather than a bug.
    pub fn from_write(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.constraint() == Some("channels_group_name_key")
        {
            return Error::AlreadyExists("a channel with this name already exists in the group");
        }
        Error::Database(err)
    }
}

impl From<Denied> for Error {
    fn from(denied: Denied) -> Self {
        Error::PermissionDenied(denied.to_string())
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
            Error::AlreadyExists(_) => Status::already_exists(err.to_string()),
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %err, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
