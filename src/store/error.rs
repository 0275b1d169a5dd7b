//! Store errors, split by what the caller does next: retry or not.

use mongodb::error::{Error as MongoError, ErrorKind};

/// Whether a store error can succeed on retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Network, timeout, server selection, retryable server error.
    #[error("{0}")]
    Transient(String),
    /// Anything else: bad credentials, invalid command, ...
    #[error("{0}")]
    Permanent(String),
}

impl StoreError {
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

impl From<MongoError> for StoreError {
    fn from(e: MongoError) -> Self {
        if is_transient(&e) {
            StoreError::Transient(describe(&e))
        } else {
            StoreError::Permanent(describe(&e))
        }
    }
}

/// One readable line for a driver error (the driver's own `Display` lists
/// the whole topology, labels and sources).
pub(super) fn describe(e: &MongoError) -> String {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { message, .. } => {
            let cause = message
                .split("Error: Kind: ")
                .nth(1)
                .and_then(|rest| rest.split(", labels").next())
                .unwrap_or("no server answered");
            format!("cannot reach MongoDB: {cause}")
        }
        ErrorKind::Io(io) => format!("network error talking to MongoDB: {io}"),
        ErrorKind::Command(c) => format!(
            "MongoDB refused the command: {} ({}): {}",
            c.code_name, c.code, c.message
        ),
        ErrorKind::Authentication { message, .. } => {
            format!("MongoDB authentication failed: {message}")
        }
        ErrorKind::InvalidArgument { message, .. } | ErrorKind::DnsResolve { message, .. } => {
            message.clone()
        }
        other => other.to_string(),
    }
}

/// Server error codes that can succeed on retry (the driver's retryable set
/// plus timeouts).
/// Write error codes that concern every document, not one: unauthorized,
/// authentication failed, illegal operation, Atlas errors (the free tier's
/// space quota), out of disk space. They hold all writes instead of setting
/// one document's increments aside.
pub(super) const HOLD_CODES: &[i32] = &[13, 18, 20, 8000, 14031];

/// Write error codes about one document's content (bad value, type
/// mismatch, a `$`-prefixed field, validation, too large): several legacy
/// documents can refuse their writes with the same one without it being
/// about the collection.
pub(super) const PER_DOCUMENT_CODES: &[i32] = &[2, 14, 52, 121, 10334];

pub(super) const RETRYABLE_CODES: &[i32] = &[
    6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 134,
];

pub(super) fn is_transient(e: &MongoError) -> bool {
    if e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
        || e.contains_label("RetryableError")
    {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Shutdown => true,
        ErrorKind::Command(c) => RETRYABLE_CODES.contains(&c.code),
        _ => false,
    }
}
