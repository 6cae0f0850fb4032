//! The one error type every port returns.

use thiserror::Error;

/// What can go wrong behind a port. The HTTP layer maps each variant to one status, once.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Error {
    /// No such record in this scope (also for another workspace's id).
    #[error("not found")]
    NotFound,
    /// A unique key would be violated; `key` is the declared key's name.
    #[error("conflict on unique key `{key}`")]
    Conflict { key: String },
    /// Input the store or the domain rejects; `field` is the path that was wrong.
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A guarded write found the record changed since it was read (see
    /// [`crate::store::WriteOp`]); nothing was written and a retry may succeed.
    #[error("the record changed concurrently")]
    Stale,
    /// The store cannot be reached or timed out; retrying may help.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected store answer.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn conflict(key: impl Into<String>) -> Self {
        Self::Conflict { key: key.into() }
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::Internal(msg.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
