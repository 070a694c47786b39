//! The PostgreSQL backend. The control plane lives in the host's default
//! database; each tenant's data lives there too, or in the tenant's own
//! database, connected (with a bounded pool of its own) and migrated on
//! first use. Statements are static (so sqlx prepares and caches them per
//! connection) and coarse: a balance change is one statement that locks,
//! checks, updates and appends the ledger entry.

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

use super::stores::{Database, PoolSettings};
use super::*;
use batch::Committers;
use control::PgControl;
pub(super) use error::classify;
use error::is_unique_violation;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use tenant::PgTenant;

/// Migrations shipped with the host, run on start on the default database
/// and on first use on a tenant's own (where the control-plane tables stay
/// empty).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// One PostgreSQL database: its pool and the committers of its guarded
/// purchases.
pub(crate) struct PgDatabase {
    pool: PgPool,
    committers: Committers,
    /// Whether this is a Citus coordinator (its per-player tables are
    /// distributed by player).
    citus: bool,
}

impl PgDatabase {
    /// Connects (opening one connection, so a database that is down fails
    /// here) and runs the migrations.
    pub(crate) async fn connect(url: &DatabaseUrl, settings: PoolSettings) -> StorageResult<Self> {
        let timeout_ms = settings.statement_timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|_| StorageError::Backend("the database URL is not a PostgreSQL URL".into()))?
            .application_name("economy-host")
            .options([
                ("lock_timeout", timeout_ms.as_str()),
                ("statement_timeout", timeout_ms.as_str()),
                // A connection left inside a transaction by a lost client is reclaimed.
                ("idle_in_transaction_session_timeout", "60000"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // Testing every checkout would cost a round trip. A connection
            // that failed is closed when it comes back; one that sat idle
            // (perhaps through a restart of the database) is tested first,
            // and so is every one for a while after any failed: the others
            // opened before a restart are as dead, and are replaced before a
            // request gets them.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > TEST_IDLE_AFTER || error::connections_suspect() {
                        connection.ping().await.inspect_err(|_| error::connection_failed())?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let citus = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&pool)
            .await?;
        let committers = Committers::start(&pool, committers(settings.max_connections));
        Ok(Self { pool, committers, citus })
    }

    async fn ping(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The control plane, when this is the host's default database.
    pub(crate) fn control(&self) -> Arc<dyn ControlStore> {
        Arc::new(PgControl { pool: self.pool.clone() })
    }
}

/// How long a connection may sit idle before it is tested when taken (a
/// pooled one, or a committer's): long enough that a busy pool never pays
/// the round trip, short enough that a database restarted meanwhile (which
/// takes longer) is found out before a request is given a dead connection.
const TEST_IDLE_AFTER: Duration = Duration::from_millis(100);

/// How many committers write guarded purchases in batches, each on a
/// connection of its own beside the pool: an eighth of the pool's size, at
/// least two, so one slow batch never holds up all of them. Fewer
/// committers make bigger batches: two commit over 10,000 purchases a
/// second on a two-core machine.
fn committers(pool_size: u32) -> usize {
    (pool_size as usize / 8).max(2)
}

/// Begins a transaction on a connection of `pool`. `begin` runs in a task
/// of its own: a future dropped part-way through sqlx's `begin` (hyper
/// drops a request's future when its client hangs up) hands its connection
/// back to the pool inside a transaction that nothing ends, and the next
/// statements on it, of any request, would run in that transaction. Once
/// begun, a dropped transaction is rolled back by sqlx.
async fn begin(pool: &PgPool) -> StorageResult<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    let begun = tokio::spawn(async move { pool.begin().await }).await;
    Ok(begun.map_err(|error| StorageError::Backend(format!("beginning a transaction failed: {error}")))??)
}

/// Turns a unique violation into [`StorageError::Conflict`].
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |error| if is_unique_violation(&error) { StorageError::Conflict(what) } else { error.into() }
}

#[async_trait]
impl Database for PgDatabase {
    fn tenant(self: Arc<Self>, tenant_id: Uuid) -> Arc<dyn TenantStore> {
        Arc::new(PgTenant { db: self, tenant_id })
    }

    async fn catalog_versions(&self, tenant_ids: &[Uuid]) -> StorageResult<HashMap<Uuid, i64>> {
        let rows: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT tenant_id, version FROM catalog_versions WHERE tenant_id = ANY($1)")
                .bind(tenant_ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    async fn close(&self) {
        self.committers.close().await;
        self.pool.close().await;
    }
}
