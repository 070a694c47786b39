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
mod control;
mod error;
mod players;
mod reads;
mod rows;
mod seen;
mod tenant;
mod tx;

use super::*;
use batch::Committers;
use control::PgControl;
use error::is_unique_violation;
use seen::SeenBalances;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use tenant::PgTenant;
use tokio::sync::OnceCell;

/// Migrations shipped with the host, run on start on the default database
/// and on first use on a tenant's own (where the control-plane tables stay
/// empty).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The pool of one database.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection (or for a database that
    /// does not answer) before it is told the database is unavailable.
    pub acquire_timeout: Duration,
    /// `lock_timeout` and `statement_timeout` for every statement: a request
    /// never waits on a lock or a query longer than this.
    pub statement_timeout: Duration,
}

/// Where the default database is, and how each database is pooled.
#[derive(Clone, Debug)]
pub struct PgSettings {
    pub url: DatabaseUrl,
    pub default_pool: PoolSettings,
    /// The pool of each tenant's own database.
    pub tenant_pool: PoolSettings,
}

/// One database: its pool, the committers of its guarded purchases, and
/// the balances this host last saw in it.
pub(super) struct Database {
    pool: PgPool,
    committers: Committers,
    seen: Arc<SeenBalances>,
    /// Whether this is a Citus coordinator (its per-player tables are
    /// distributed by player).
    citus: bool,
}

impl Database {
    /// Connects (opening one connection, so a database that is down fails
    /// here) and runs the migrations.
    async fn connect(url: &DatabaseUrl, settings: PoolSettings) -> StorageResult<Self> {
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
            // (perhaps through a restart of the database) is tested first.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > TEST_IDLE_AFTER {
                        connection.ping().await?;
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
        let seen = Arc::default();
        let committers = Committers::start(&pool, &seen, committers(settings.max_connections));
        Ok(Self { pool, committers, seen, citus })
    }

    async fn ping(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Commits what is queued, then closes the pool once every connection
    /// is back.
    async fn close(&self) {
        self.committers.close().await;
        self.pool.close().await;
    }
}

/// How long a pooled connection may sit idle before it is tested when
/// taken: long enough that a busy pool never pays the round trip.
const TEST_IDLE_AFTER: Duration = Duration::from_secs(1);

/// How many committers write guarded purchases in batches, each on a
/// connection of its own beside the pool: an eighth of the pool's size, at
/// least two, so one slow batch never holds up all of them. Fewer
/// committers make bigger batches: two commit over 10,000 purchases a
/// second on a two-core machine.
fn committers(pool_size: u32) -> usize {
    (pool_size as usize / 8).max(2)
}

/// Turns a unique violation into [`StorageError::Conflict`].
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |error| if is_unique_violation(&error) { StorageError::Conflict(what) } else { error.into() }
}

/// How long after a failed attempt to connect a tenant's database the next
/// attempt is made (requests meanwhile are answered `Unavailable` at once).
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// A tenant's own database: connected, or when it last failed to connect.
#[derive(Default)]
struct TenantDatabase {
    connected: OnceCell<Arc<Database>>,
    failed_at: Mutex<Option<Instant>>,
}

impl TenantDatabase {
    fn failed_recently(&self) -> bool {
        self.failed_at.lock().expect("failure lock").is_some_and(|at| at.elapsed() < RECONNECT_AFTER)
    }
}

/// The control store and every tenant's store, over PostgreSQL databases.
pub struct PgStores {
    control: Arc<PgControl>,
    default: Arc<Database>,
    tenant_pool: PoolSettings,
    /// Tenants' own databases, by URL, connected on first use.
    databases: Mutex<HashMap<DatabaseUrl, Arc<TenantDatabase>>>,
    /// Where each tenant's data lives (`None`: the default database); a
    /// tenant's database never changes.
    placement: RwLock<HashMap<Uuid, Option<DatabaseUrl>>>,
    /// The stores handed out, kept so a request does not build its own.
    handed_out: RwLock<HashMap<Uuid, Arc<PgTenant>>>,
}

impl PgStores {
    /// Connects to the default database and runs the migrations.
    pub async fn connect(settings: &PgSettings) -> StorageResult<Self> {
        let default = Arc::new(Database::connect(&settings.url, settings.default_pool).await?);
        let control = Arc::new(PgControl { pool: default.pool.clone() });
        Ok(Self {
            control,
            default,
            tenant_pool: settings.tenant_pool,
            databases: Mutex::default(),
            placement: RwLock::default(),
            handed_out: RwLock::default(),
        })
    }

    /// The control plane.
    pub fn control(&self) -> Arc<dyn ControlStore> {
        self.control.clone()
    }

    /// The default database's pool.
    pub fn pool(&self) -> &PgPool {
        &self.default.pool
    }

    /// Where `tenant_ids` keep their data, asking the control plane for the
    /// ones not known yet; a tenant the control plane does not know is left
    /// out.
    async fn placements(&self, tenant_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, Option<DatabaseUrl>)>> {
        let known = |id: &Uuid| self.placement.read().expect("placement lock").get(id).cloned();
        let missing: Vec<Uuid> = tenant_ids.iter().filter(|id| known(id).is_none()).copied().collect();
        if !missing.is_empty() {
            let configs = self.control.tenant_configs(&missing).await?;
            let mut placement = self.placement.write().expect("placement lock");
            for (id, config) in configs {
                placement.insert(id, config.database);
            }
        }
        Ok(tenant_ids.iter().filter_map(|id| known(id).map(|database| (*id, database))).collect())
    }

    /// The database at `url`, connected and migrated on first use. After a
    /// failed attempt, requests are answered `Unavailable` at once until
    /// [`RECONNECT_AFTER`] has passed, instead of queueing to try again.
    async fn database(&self, url: &Option<DatabaseUrl>) -> StorageResult<Arc<Database>> {
        let Some(url) = url else { return Ok(self.default.clone()) };
        let entry = self.databases.lock().expect("databases lock").entry(url.clone()).or_default().clone();
        let down = || StorageError::Unavailable("the tenant's database could not be reached; retrying shortly".into());
        let database = entry
            .connected
            .get_or_try_init(|| async {
                if entry.failed_recently() {
                    return Err(down());
                }
                match Database::connect(url, self.tenant_pool).await {
                    Ok(database) => Ok(Arc::new(database)),
                    Err(error) => {
                        *entry.failed_at.lock().expect("failure lock") = Some(Instant::now());
                        Err(match error {
                            StorageError::Backend(cause) => StorageError::Unavailable(cause),
                            other => other,
                        })
                    }
                }
            })
            .await?;
        Ok(database.clone())
    }
}

#[async_trait]
impl TenantStores for PgStores {
    async fn tenant(&self, tenant_id: Uuid) -> StorageResult<Arc<dyn TenantStore>> {
        if let Some(store) = self.handed_out.read().expect("stores lock").get(&tenant_id) {
            return Ok(store.clone());
        }
        let placement = self.placements(&[tenant_id]).await?;
        let Some((_, url)) = placement.first() else {
            return Err(StorageError::Backend(format!("no tenant {tenant_id}")));
        };
        let store = Arc::new(PgTenant { db: self.database(url).await?, tenant_id });
        self.handed_out.write().expect("stores lock").insert(tenant_id, store.clone());
        Ok(store)
    }

    async fn catalog_versions(&self, tenant_ids: &[Uuid]) -> Vec<(Uuid, StorageResult<i64>)> {
        let placements = match self.placements(tenant_ids).await {
            Ok(placements) => placements,
            Err(error) => return tenant_ids.iter().map(|id| (*id, Err(error.clone()))).collect(),
        };
        let mut by_database: HashMap<Option<DatabaseUrl>, Vec<Uuid>> = HashMap::new();
        for (id, url) in placements {
            by_database.entry(url).or_default().push(id);
        }
        // One query per database, all at once: a database that does not
        // answer holds up only its own tenants.
        let asked = by_database.into_iter().map(|(url, ids)| async move {
            let versions = async {
                let database = self.database(&url).await?;
                let rows: Vec<(Uuid, i64)> =
                    sqlx::query_as("SELECT tenant_id, version FROM catalog_versions WHERE tenant_id = ANY($1)")
                        .bind(&ids)
                        .fetch_all(&database.pool)
                        .await?;
                StorageResult::Ok(rows.into_iter().collect::<HashMap<_, _>>())
            }
            .await;
            ids.iter()
                .map(|id| {
                    (*id, versions.as_ref().map(|found| found.get(id).copied().unwrap_or(0)).map_err(Clone::clone))
                })
                .collect::<Vec<_>>()
        });
        futures::future::join_all(asked).await.into_iter().flatten().collect()
    }

    async fn close(&self) {
        let databases: Vec<_> = self.databases.lock().expect("databases lock").values().cloned().collect();
        for database in databases.iter().filter_map(|entry| entry.connected.get()) {
            database.close().await;
        }
        self.default.close().await;
    }
}
