//! PostgreSQL's errors, sorted into [`StorageError`] in one place.

use super::super::StorageError;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after a connection failed every connection is tested before it
/// is handed out: a failure usually means the server went away, and every
/// other connection opened before it is as dead (a restarted database),
/// but each would fail only when next used.
const SUSPECT_FOR: Duration = Duration::from_secs(10);

/// When a connection last failed, in milliseconds since the first failure
/// this process saw (0: none yet).
static LAST_FAILURE_MS: AtomicU64 = AtomicU64::new(0);
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Notes that a connection failed: for a while, every connection is tested
/// before it is handed out.
pub(super) fn connection_failed() {
    let origin = ORIGIN.get_or_init(Instant::now);
    let ms = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
    LAST_FAILURE_MS.store(ms, Ordering::Relaxed);
}

/// Whether a connection failed lately (see [`SUSPECT_FOR`]).
pub(super) fn connections_suspect() -> bool {
    let last = LAST_FAILURE_MS.load(Ordering::Relaxed);
    let Some(origin) = ORIGIN.get().filter(|_| last > 0) else { return false };
    origin.elapsed().saturating_sub(Duration::from_millis(last)) < SUSPECT_FOR
}

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
                if code != "53300" {
                    connection_failed();
                }
                StorageError::Unavailable(db.message().to_owned())
            } else if code == CHECK_VIOLATION && db.message().contains(STACK_LIMIT_CONSTRAINT) {
                StorageError::StackLimit
            } else {
                StorageError::Backend(error.to_string())
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            connection_failed();
            StorageError::Unavailable(error.to_string())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StorageError::Unavailable(error.to_string()),
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
