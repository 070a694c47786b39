//! PostgreSQL's errors, sorted into [`StorageError`] in one place.

use super::super::StorageError;

/// SQLSTATEs of a statement that gave up waiting, or was chosen as a
/// deadlock's victim: `lock_not_available`, `query_canceled` (statement
/// timeout), `deadlock_detected`, `serialization_failure`.
const BUSY: [&str; 4] = ["55P03", "57014", "40P01", "40001"];
/// SQLSTATEs of a server that is going away or full: `too_many_connections`,
/// `admin_shutdown`, `crash_shutdown`, `cannot_connect_now`.
const UNAVAILABLE: [&str; 4] = ["53300", "57P01", "57P02", "57P03"];
/// The CHECK constraint that bounds a stack (migration 0006), as its
/// violation names it (Citus relays a worker's error by its message).
const STACK_LIMIT_CONSTRAINT: &str = "\"inventory_quantity_max\"";
/// SQLSTATE `check_violation`.
const CHECK_VIOLATION: &str = "23514";

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(error) => classify(&error),
            other => Self::Backend(format!("migrating: {other}")),
        }
    }
}

/// What `error` means for the caller.
pub(in crate::storage) fn classify(error: &sqlx::Error) -> StorageError {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            if BUSY.contains(&code) {
                StorageError::Busy(db.message().to_owned())
            } else if UNAVAILABLE.contains(&code) || code.starts_with("08") {
                StorageError::Unavailable(db.message().to_owned())
            } else if code == CHECK_VIOLATION && db.message().contains(STACK_LIMIT_CONSTRAINT) {
                StorageError::StackLimit
            } else {
                StorageError::Backend(error.to_string())
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StorageError::Unavailable(error.to_string())
        }
        other => StorageError::Backend(other.to_string()),
    }
}

/// Whether the database refused the statement itself (it answered, so the
/// connection is in step, and nothing of the statement was written), as
/// opposed to a lost connection.
pub(super) fn refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
