//! SQLite's errors, sorted into [`StorageError`] in one place.

use super::super::StorageError;

/// Primary result codes (the low byte of an extended code): `SQLITE_BUSY`,
/// `SQLITE_LOCKED`: another connection holds the lock past the busy timeout.
const BUSY: [i64; 2] = [5, 6];
/// `SQLITE_IOERR`, `SQLITE_CORRUPT`, `SQLITE_FULL`, `SQLITE_CANTOPEN`,
/// `SQLITE_NOTADB`, `SQLITE_READONLY`: the file cannot be used as it is.
const UNUSABLE: [i64; 6] = [10, 11, 13, 14, 26, 8];
/// The CHECK constraint that bounds a stack, as its violation names it.
const STACK_LIMIT_CONSTRAINT: &str = "inventory_quantity_max";

/// The primary result code of a database error.
fn primary_code(error: &dyn sqlx::error::DatabaseError) -> Option<i64> {
    error.code()?.parse::<i64>().ok().map(|code| code & 0xff)
}

/// What `error` means for the caller.
pub(in crate::storage) fn classify(error: &sqlx::Error) -> StorageError {
    match error {
        sqlx::Error::Database(db) => match primary_code(db.as_ref()) {
            Some(code) if BUSY.contains(&code) => StorageError::Busy(db.message().to_owned()),
            Some(code) if UNUSABLE.contains(&code) => StorageError::Unavailable(db.message().to_owned()),
            _ if db.message().contains(STACK_LIMIT_CONSTRAINT) => StorageError::StackLimit,
            _ => StorageError::Backend(error.to_string()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            StorageError::Unavailable(error.to_string())
        }
        other => StorageError::Backend(other.to_string()),
    }
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A file that could not be opened: named plainly, for the one-line error
/// the host prints when its own store will not open.
pub(super) fn opening(error: sqlx::Error) -> StorageError {
    let reason = match &error {
        sqlx::Error::Database(db) => match primary_code(db.as_ref()) {
            Some(26) | Some(11) => "the file is not an economy store (or is damaged)".to_owned(),
            Some(14) => "the file cannot be opened (check the path and its permissions)".to_owned(),
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
    };
    StorageError::Unavailable(format!("opening the SQLite store: {reason}"))
}

/// A migration that failed; a store written by a newer version of the host
/// is named as such.
pub(super) fn migrating(error: sqlx::migrate::MigrateError) -> StorageError {
    match error {
        sqlx::migrate::MigrateError::VersionMissing(version) => StorageError::Backend(format!(
            "the store was written by a newer version of economy-host (it has migration {version}, unknown to this one)"
        )),
        sqlx::migrate::MigrateError::Execute(error) => match classify(&error) {
            StorageError::Backend(cause) => StorageError::Backend(format!("migrating the SQLite store: {cause}")),
            other => other,
        },
        other => StorageError::Backend(format!("migrating the SQLite store: {other}")),
    }
}
