//! The embedded SQLite backend: one file holds the control plane and the
//! tenants' data (a tenant may have a file of its own). SQLite has one
//! writer at a time, so this host writes through one connection, taken in
//! turn by every write transaction (`BEGIN IMMEDIATE`, so a transaction
//! never fails half-way for want of the write lock), while reads run on a
//! pool of their own beside it (WAL: readers never wait for the writer).
//! Commits go through one task that writes what is waiting in batches,
//! many in one transaction and one sync, as the PostgreSQL backend's group
//! commit does.
//!
//! Times are stored as microseconds since the Unix epoch and computed here,
//! not in SQL: a write transaction has the file to itself, so reading a
//! row, deciding in Rust and writing it back is as safe as one statement.

#[macro_use]
mod sql;
mod batch;
mod catalog;
mod commit;
mod control;
mod error;
mod players;
mod reads;
mod rows;
mod tenant;
mod writes;

use super::stores::{Database, PoolSettings};
use super::*;
use batch::Committer;
use control::SqliteControl;
pub(super) use error::classify;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use tenant::SqliteTenant;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Pages written to the write-ahead log between checkpoints (40 MiB at
/// 4 KiB a page).
const WAL_CHECKPOINT_PAGES: u32 = 10_000;

/// Migrations of the embedded store, run when a file is opened.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sqlite");

/// One SQLite file: its writer, its readers, and the committer that writes
/// every commit.
pub(crate) struct SqliteDatabase {
    writer: Arc<Mutex<Writer>>,
    readers: SqlitePool,
    committer: Committer,
    /// How long a write waits for its turn before it is answered busy.
    write_wait: Duration,
}

impl SqliteDatabase {
    /// Opens the file (creating it if missing), runs the migrations, and
    /// starts the committer.
    pub(crate) async fn open(url: &DatabaseUrl, settings: PoolSettings) -> StorageResult<Self> {
        let options = SqliteConnectOptions::from_str(url.expose())
            .map_err(|_| StorageError::Backend("the database URL is not a SQLite URL (sqlite:path)".into()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every commit is synced: an acknowledged write survives a
            // power loss, as with PostgreSQL's default.
            .synchronous(SqliteSynchronous::Full)
            // The write-ahead log is folded into the file (a checkpoint, with
            // a sync of the file) every WAL_CHECKPOINT_PAGES pages written
            // rather than SQLite's 1,000: at a batch's few hundred pages, the
            // default checkpointed every few commits.
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            .foreign_keys(true)
            .busy_timeout(settings.statement_timeout);
        // Migrated through a pool of its own: the migrator takes a pool.
        let migrating = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await;
        let migrating = migrating.map_err(error::opening)?;
        MIGRATOR.run(&migrating).await.map_err(error::migrating)?;
        migrating.close().await;
        let writer = SqliteConnection::connect_with(&options).await.map_err(error::opening)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(readers(settings.max_connections))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await
            .map_err(error::opening)?;
        let writer = Arc::new(Mutex::new(Writer { connection: writer, open: false }));
        let write_wait = settings.acquire_timeout.max(settings.statement_timeout);
        let committer = Committer::start(writer.clone(), write_wait);
        Ok(Self { writer, readers, committer, write_wait })
    }

    /// The control plane, when this is the host's default database.
    pub(crate) fn control(self: &Arc<Self>) -> Arc<dyn ControlStore> {
        Arc::new(SqliteControl { db: self.clone() })
    }

    /// Starts a write transaction, once the writer is free.
    async fn write(&self) -> StorageResult<Writing> {
        Writing::begin(&self.writer, self.write_wait).await
    }
}

#[async_trait]
impl Database for SqliteDatabase {
    fn tenant(self: Arc<Self>, tenant_id: Uuid) -> Arc<dyn TenantStore> {
        Arc::new(SqliteTenant { db: self, tenant_id })
    }

    async fn catalog_versions(&self, tenant_ids: &[Uuid]) -> StorageResult<HashMap<Uuid, i64>> {
        let mut versions = HashMap::with_capacity(tenant_ids.len());
        for tenant_id in tenant_ids {
            let version: Option<i64> = sqlx::query_scalar("SELECT version FROM catalog_versions WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&self.readers)
                .await?;
            versions.insert(*tenant_id, version.unwrap_or(0));
        }
        Ok(versions)
    }

    async fn close(&self) {
        self.committer.close().await;
        self.readers.close().await;
        let mut writer = self.writer.lock().await;
        writer.settle().await;
        // Folds the write-ahead log into the file, so a copy of the file
        // alone is whole.
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut writer.connection).await;
    }
}

/// Readers beside the writer: a quarter of the configured pool, two to
/// eight (each is a thread of its own).
fn readers(pool_size: u32) -> u32 {
    (pool_size / 4).clamp(2, 8)
}

/// The current time, as stored.
fn now() -> i64 {
    Utc::now().timestamp_micros()
}

/// A stored time.
fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The file's one write connection, and whether a transaction may be open
/// on it. A write whose future is dropped part-way (hyper drops a handler's
/// future when its client hangs up) may have sent `BEGIN` and never its
/// `COMMIT` or `ROLLBACK`: SQLite's worker thread runs what was sent
/// whatever happens to the future, and every later `BEGIN` of every tenant
/// in the file would fail. So `open` is set before `BEGIN` is sent and
/// cleared only once `COMMIT` or `ROLLBACK` has answered; whoever takes the
/// writer next and finds it set rolls back first (the worker runs commands
/// in order, so that `ROLLBACK` comes after anything still in flight).
pub(super) struct Writer {
    connection: SqliteConnection,
    open: bool,
}

impl Writer {
    /// Ends whatever transaction a dropped write may have left open.
    async fn settle(&mut self) {
        if self.open {
            // "no transaction is active" is the answer when none was.
            let _ = sqlx::query("ROLLBACK").execute(&mut self.connection).await;
            self.open = false;
        }
    }
}

/// A write transaction: the writer, taken and in `BEGIN IMMEDIATE`.
/// Dropped without `commit`, it rolls back before the writer is free
/// again; dropped part-way through `begin`, `commit` or `rollback`, the
/// next write rolls back first (see [`Writer`]).
pub(super) struct Writing {
    writer: Option<OwnedMutexGuard<Writer>>,
}

impl Writing {
    async fn begin(writer: &Arc<Mutex<Writer>>, wait: Duration) -> StorageResult<Self> {
        let mut writer = tokio::time::timeout(wait, writer.clone().lock_owned())
            .await
            .map_err(|_| StorageError::Busy("the store's writer stayed busy".into()))?;
        writer.settle().await;
        writer.open = true;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut writer.connection).await?;
        Ok(Self { writer: Some(writer) })
    }

    fn connection(&mut self) -> &mut SqliteConnection {
        &mut self.writer.as_mut().expect("an open write transaction").connection
    }

    async fn commit(mut self) -> StorageResult<()> {
        let mut writer = self.writer.take().expect("an open write transaction");
        if let Err(error) = sqlx::query("COMMIT").execute(&mut writer.connection).await {
            writer.settle().await;
            return Err(error.into());
        }
        writer.open = false;
        Ok(())
    }

    async fn rollback(mut self) -> StorageResult<()> {
        let mut writer = self.writer.take().expect("an open write transaction");
        sqlx::query("ROLLBACK").execute(&mut writer.connection).await?;
        writer.open = false;
        Ok(())
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            tokio::spawn(async move { writer.settle().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    /// Polls `future` at most `polls` times, letting the runtime (and
    /// SQLite's worker thread) run between polls, then drops it wherever it
    /// stopped: a client hanging up at that await.
    async fn drop_after<F: Future>(polls: usize, future: F) {
        let mut future = pin!(future);
        for _ in 0..polls {
            let ready =
                std::future::poll_fn(|cx: &mut Context<'_>| Poll::Ready(future.as_mut().poll(cx).is_ready())).await;
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
    }

    /// One write: moves the catalog version of `tenant`.
    async fn bump(db: &SqliteDatabase, tenant: Uuid) -> StorageResult<()> {
        let mut write = db.write().await?;
        sqlx::query(bump_catalog!()).bind(tenant).execute(write.connection()).await?;
        write.commit().await
    }

    #[tokio::test]
    async fn a_write_dropped_at_any_await_leaves_the_writer_usable() {
        let path = std::env::temp_dir().join(format!("economy-dropped-{}.db", Uuid::new_v4()));
        let url = DatabaseUrl::new(format!("sqlite://{}", path.display()));
        let settings = PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        };
        let db = SqliteDatabase::open(&url, settings).await.expect("the store opens");
        let (dropped, kept) = (Uuid::new_v4(), Uuid::new_v4());
        for polls in 0..64 {
            drop_after(polls, bump(&db, dropped)).await;
            // Every write after a dropped one goes through, whatever the
            // dropped one had sent.
            bump(&db, kept).await.unwrap_or_else(|error| panic!("after {polls} polls: {error}"));
        }
        let versions = db.catalog_versions(&[kept]).await.expect("a read");
        assert_eq!(versions[&kept], 64, "every write after a dropped one committed");
        db.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
