//! Where each tenant's data lives, whatever the backend: the default
//! database (which also holds the control plane) or the tenant's own,
//! opened on first use by the backend its URL names.

use super::postgres::PgDatabase;
use super::shared::Shared;
use super::sqlite::SqliteDatabase;
use super::*;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// One database holding tenants' data, of whichever backend.
#[async_trait]
pub(crate) trait Database: Send + Sync {
    /// The store of one tenant whose data lives here.
    fn tenant(self: Arc<Self>, tenant_id: Uuid) -> Arc<dyn TenantStore>;
    /// The catalog version of each of `tenant_ids` (0 for a tenant with no
    /// catalog yet), in one query.
    async fn catalog_versions(&self, tenant_ids: &[Uuid]) -> StorageResult<HashMap<Uuid, i64>>;
    /// Commits what is queued, then closes.
    async fn close(&self);
}

/// The pool of one database.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection (or for a database that
    /// does not answer) before it is told the database is unavailable.
    pub acquire_timeout: Duration,
    /// How long a statement may run, or wait on a lock, before it gives
    /// up: a request never waits longer than this.
    pub statement_timeout: Duration,
}

/// Where the default database is, and how each database is pooled.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub url: DatabaseUrl,
    pub default_pool: PoolSettings,
    /// The pool of each tenant's own database.
    pub tenant_pool: PoolSettings,
}

/// The backend a database URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The backend of `url`, or why this host cannot keep an economy there.
    pub fn of(url: &DatabaseUrl) -> Result<Self, String> {
        let url = url.expose();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            // Each connection to an in-memory database has a database of
            // its own, and all of them are gone on restart.
            match url.contains(":memory:") || url.contains("mode=memory") {
                true => Err("an in-memory SQLite database cannot hold an economy: name a file (sqlite:path)".into()),
                false => Ok(Self::Sqlite),
            }
        } else {
            Err("the database URL must start with postgres:// or sqlite:".into())
        }
    }
}

/// How long after a failed attempt to open a tenant's database the next
/// attempt is made (requests meanwhile are answered `Unavailable` at once).
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// A tenant's own database: opened, or when it last failed to open.
#[derive(Default)]
struct TenantDatabase {
    opened: OnceCell<Arc<dyn Database>>,
    failed_at: Mutex<Option<Instant>>,
}

impl TenantDatabase {
    fn failed_recently(&self) -> bool {
        self.failed_at.lock().expect("failure lock").is_some_and(|at| at.elapsed() < REOPEN_AFTER)
    }
}

/// The control store and every tenant's store.
pub struct Stores {
    control: Arc<dyn ControlStore>,
    default: Arc<dyn Database>,
    backend: Backend,
    /// The default database's pool: tenants without a database of their
    /// own share it, each holding at most half of it at once.
    default_pool: PoolSettings,
    tenant_pool: PoolSettings,
    /// Tenants' own databases, by URL, opened on first use.
    databases: Mutex<HashMap<DatabaseUrl, Arc<TenantDatabase>>>,
    /// Where each tenant's data lives (`None`: the default database); a
    /// tenant's database never changes.
    placement: RwLock<HashMap<Uuid, Option<DatabaseUrl>>>,
    /// The stores handed out, kept so a request does not build its own.
    handed_out: RwLock<HashMap<Uuid, Arc<dyn TenantStore>>>,
}

impl Stores {
    /// Opens the default database (migrating it), whose control plane this
    /// host serves.
    pub async fn open(settings: &StoreSettings) -> StorageResult<Self> {
        let backend = Backend::of(&settings.url).map_err(StorageError::Backend)?;
        let (control, default): (Arc<dyn ControlStore>, Arc<dyn Database>) = match backend {
            Backend::Postgres => {
                let database = Arc::new(PgDatabase::connect(&settings.url, settings.default_pool).await?);
                (database.control(), database)
            }
            Backend::Sqlite => {
                let database = Arc::new(SqliteDatabase::open(&settings.url, settings.default_pool).await?);
                (database.control(), database)
            }
        };
        Ok(Self {
            control,
            default,
            backend,
            default_pool: settings.default_pool,
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

    /// The backend of the default database.
    pub fn backend(&self) -> Backend {
        self.backend
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

    /// The database at `url`, opened and migrated on first use. After a
    /// failed attempt, requests are answered `Unavailable` at once until
    /// [`REOPEN_AFTER`] has passed, instead of queueing to try again.
    async fn database(&self, url: &Option<DatabaseUrl>) -> StorageResult<Arc<dyn Database>> {
        let Some(url) = url else { return Ok(self.default.clone()) };
        let entry = self.databases.lock().expect("databases lock").entry(url.clone()).or_default().clone();
        let database = entry
            .opened
            .get_or_try_init(|| async {
                if entry.failed_recently() {
                    return Err(StorageError::Unavailable(
                        "the tenant's database could not be reached; retrying shortly".into(),
                    ));
                }
                match open(url, self.tenant_pool).await {
                    Ok(database) => Ok(database),
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

/// Opens a tenant's own database by the backend its URL names.
async fn open(url: &DatabaseUrl, pool: PoolSettings) -> StorageResult<Arc<dyn Database>> {
    Ok(match Backend::of(url).map_err(StorageError::Backend)? {
        Backend::Postgres => Arc::new(PgDatabase::connect(url, pool).await?),
        Backend::Sqlite => Arc::new(SqliteDatabase::open(url, pool).await?),
    })
}

#[async_trait]
impl TenantStores for Stores {
    async fn tenant(&self, tenant_id: Uuid) -> StorageResult<Arc<dyn TenantStore>> {
        if let Some(store) = self.handed_out.read().expect("stores lock").get(&tenant_id) {
            return Ok(store.clone());
        }
        let placement = self.placements(&[tenant_id]).await?;
        let Some((_, url)) = placement.first() else {
            return Err(StorageError::UnknownTenant);
        };
        let store = self.database(url).await?.tenant(tenant_id);
        let store: Arc<dyn TenantStore> = match url {
            Some(_) => store,
            None => {
                let places = self.default_pool.max_connections as usize / 2;
                Arc::new(Shared::new(store, places, self.default_pool.acquire_timeout))
            }
        };
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
            let versions = async { self.database(&url).await?.catalog_versions(&ids).await }.await;
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
        for database in databases.iter().filter_map(|entry| entry.opened.get()) {
            database.close().await;
        }
        self.default.close().await;
    }
}
