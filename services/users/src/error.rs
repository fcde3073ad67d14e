//! The users service's one error type and its one mapping to gRPC status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("{field} is already taken")]
    AlreadyExists { field: &'static str },
    #[error("user not found")]
    NotFound,
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A rotated refresh token came back: its session was revoked.
    #[error("invalid, expired or revoked refresh token")]
    SessionReused {
        user_id: uuid::Uuid,
        session_id: uuid::Uuid,
    },
    /// Too many passwords waiting to be hashed: refused at once instead of
    /// queueing without bound (each hash holds tens of MiB).
    #[error("too many sign-ins at once, retry shortly")]
    Busy,
    /// A dependency (Redis) is down; the request may be retried as is.
    #[error("{0}")]
    Unavailable(&'static str),
    /// The account's password guesses for this minute are used up.
    #[error("too many sign-in attempts for this account; retry later")]
    TooManyAttempts { retry_after: std::time::Duration },
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

    /// Turns unique violations of the users table into "already taken".
    pub fn from_insert(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.constraint() {
                Some("users_username_key") => return Error::AlreadyExists { field: "username" },
                Some("users_email_key") => return Error::AlreadyExists { field: "email" },
                _ => {}
            }
        }
        Error::Database(err)
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
            Error::AlreadyExists { field } => Status::with_error_details(
                Code::AlreadyExists,
                err.to_string(),
                ErrorDetails::with_bad_request_violation(*field, "already taken"),
            ),
            Error::NotFound => Status::not_found(err.to_string()),
            Error::PermissionDenied(_) => Status::permission_denied(err.to_string()),
            Error::Unauthenticated(_) => Status::unauthenticated(err.to_string()),
            Error::Unavailable(_) => Status::unavailable(err.to_string()),
            Error::SessionReused {
                user_id,
                session_id,
            } => Status::with_error_details(
                Code::Unauthenticated,
                err.to_string(),
                ErrorDetails::with_error_info(
                    "SESSION_REUSED",
                    "messenger.users",
                    [
                        ("session_id".to_owned(), session_id.to_string()),
                        ("user_id".to_owned(), user_id.to_string()),
                    ],
                ),
            ),
            Error::TooManyAttempts { retry_after } => Status::with_error_details(
                Code::ResourceExhausted,
                err.to_string(),
                ErrorDetails::with_retry_info(Some(*retry_after)),
            ),
            Error::Busy => Status::with_error_details(
                Code::Unavailable,
                err.to_string(),
                ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(1))),
            ),
            Error::Database(_) | Error::Internal(_) => {
                // Details stay in our logs, never in the response.
                tracing::error!(error = %err, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
