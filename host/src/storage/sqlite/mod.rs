//! The embedded SQLite backend: one file holds the control plane and the
//! tenants' data (a tenant may have a file of its own). SQLite has one
//! writer at a time, so this host writes through one connection, taken in
//! turn by every write transaction (`BEGIN IMMEDIATE`, so a transaction
//! never fails half-way for want of the write lock), while reads run on a
//! pool of their own beside it (WAL: readers never wait for the writer).
//! Guarded purchases commit in batches, many in one transaction and one
//! sync, as the PostgreSQL backend's group commit does.
//!
//! Times are stored as microseconds since the Unix epoch and computed here,
//! not in SQL: a write transaction has the file to itself, so reading a
//! row, deciding in Rust and writing it back is as safe as one statement.

#[macro_use]
mod sql;
mod batch;
mod catalog;
mod control;
mod error;
mod players;
mod reads;
mod rows;
mod tenant;
mod tx;

use super::seen::SeenBalances;
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

/// One SQLite file: its writer, its readers, the committer of its guarded
/// purchases, and the balances this host last saw in it.
pub(crate) struct SqliteDatabase {
    writer: Arc<Mutex<SqliteConnection>>,
    readers: SqlitePool,
    committer: Committer,
    seen: Arc<SeenBalances>,
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
        let writer = Arc::new(Mutex::new(writer));
        let seen = Arc::<SeenBalances>::default();
        let write_wait = settings.acquire_timeout.max(settings.statement_timeout);
        let committer = Committer::start(writer.clone(), seen.clone(), write_wait);
        Ok(Self { writer, readers, committer, seen, write_wait })
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
        // Folds the write-ahead log into the file, so a copy of the file
        // alone is whole.
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *writer).await;
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

/// A write transaction: the writer, taken and in `BEGIN IMMEDIATE`.
/// Dropped without `commit`, it rolls back before the writer is free
/// again.
pub(super) struct Writing {
    connection: Option<OwnedMutexGuard<SqliteConnection>>,
}

impl Writing {
    async fn begin(writer: &Arc<Mutex<SqliteConnection>>, wait: Duration) -> StorageResult<Self> {
        let mut connection = tokio::time::timeout(wait, writer.clone().lock_owned())
            .await
            .map_err(|_| StorageError::Busy("the store's writer stayed busy".into()))?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *connection).await?;
        Ok(Self { connection: Some(connection) })
    }

    fn connection(&mut self) -> &mut SqliteConnection {
        self.connection.as_mut().expect("an open write transaction")
    }

    async fn commit(mut self) -> StorageResult<()> {
        let mut connection = self.connection.take().expect("an open write transaction");
        if let Err(error) = sqlx::query("COMMIT").execute(&mut *connection).await {
            let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            return Err(error.into());
        }
        Ok(())
    }

    async fn rollback(mut self) -> StorageResult<()> {
        let mut connection = self.connection.take().expect("an open write transaction");
        sqlx::query("ROLLBACK").execute(&mut *connection).await?;
        Ok(())
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            tokio::spawn(async move {
                let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            });
        }
    }
}
