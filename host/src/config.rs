//! Settings, read from the environment (or flags). Every limit is named
//! here with its default.

use crate::economy::EconomySettings;
use crate::http::serve::ReadTimeouts;
use crate::runtime::RuntimeLimits;
use crate::storage::{DatabaseUrl, PoolSettings, StoreSettings};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// The embedded store's file name in the data directory.
pub const EMBEDDED_STORE_FILE: &str = "economy.db";
/// The generated operator key's file name in the data directory.
pub const OPERATOR_KEY_FILE: &str = "operator.key";

#[derive(Clone, Debug, Parser)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "ECONOMY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// The database: `postgres://user@host:port/database` for PostgreSQL, or
    /// `sqlite:path` for an embedded SQLite file. Without it, the embedded
    /// store `economy.db` in the data directory, with a demo tenant on first
    /// start.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the embedded store and the generated operator key live when no
    /// `DATABASE_URL` is given.
    #[arg(long, env = "ECONOMY_DATA_DIR", default_value = ".")]
    pub data_dir: PathBuf,

    /// The operator key (`Authorization: Bearer …` on `/operator/*`). Without
    /// it the operator routes answer 401, except on the embedded store with
    /// no `DATABASE_URL`, where a key is generated and kept in the data
    /// directory.
    #[arg(long, env = "ECONOMY_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,

    /// How long a client may take to send a request's head.
    #[arg(long, env = "ECONOMY_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// How long a client may take to send a request's body, after its head.
    #[arg(long, env = "ECONOMY_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,

    /// Default session lifetime: at most 30 days.
    #[arg(long, env = "ECONOMY_SESSION_TTL_SECONDS", default_value_t = 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..=30 * 24 * 3600))]
    pub session_ttl_seconds: u64,

    /// Database connections in the pool.
    #[arg(long, env = "ECONOMY_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// How long a request waits for a connection, a lock or a statement.
    #[arg(long, env = "ECONOMY_DB_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_timeout_ms: u64,

    /// Connections in the pool of each tenant's own database.
    #[arg(long, env = "ECONOMY_TENANT_DB_POOL_SIZE", default_value_t = 8)]
    pub tenant_db_pool_size: u32,

    /// How long a request waits for a connection to a tenant's own database
    /// before the tenant is answered as unavailable.
    #[arg(long, env = "ECONOMY_TENANT_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 1_000)]
    pub tenant_db_acquire_timeout_ms: u64,

    /// Fuel (about one per wasm instruction) per rules call.
    #[arg(long, env = "ECONOMY_MODULE_FUEL", default_value_t = RuntimeLimits::default().fuel)]
    pub module_fuel: u64,

    /// Wall-clock limit per rules call, storage waits included.
    #[arg(long, env = "ECONOMY_MODULE_DEADLINE_MS", default_value_t = RuntimeLimits::default().deadline.as_millis() as u64)]
    pub module_deadline_ms: u64,

    /// Linear memory per rules instance.
    #[arg(long, env = "ECONOMY_MODULE_MEMORY_BYTES", default_value_t = RuntimeLimits::default().memory_bytes)]
    pub module_memory_bytes: usize,

    /// Rules instances alive at once.
    #[arg(long, env = "ECONOMY_MODULE_INSTANCES", default_value_t = RuntimeLimits::default().max_instances)]
    pub module_instances: u32,

    /// Rules instances one tenant may hold at once (default: a quarter of
    /// the instances).
    #[arg(long, env = "ECONOMY_MODULE_TENANT_INSTANCES")]
    pub module_tenant_instances: Option<u32>,

    /// Milliseconds a second one tenant's rules calls may run on the host's
    /// cores (default: a tenth of the cores, 100 per core); past it, its
    /// calls wait for their time to come back.
    #[arg(long, env = "ECONOMY_MODULE_TENANT_CPU_MS")]
    pub module_tenant_cpu_ms: Option<u64>,

    /// How long a rules call waits for an instance, or for its tenant's time
    /// on the cores, before its tenant is answered busy.
    #[arg(long, env = "ECONOMY_MODULE_WAIT_MS", default_value_t = RuntimeLimits::default().instance_wait.as_millis() as u64)]
    pub module_wait_ms: u64,

    /// Module uploads one tenant may make per minute (each costs a
    /// compilation), in bursts of half of them.
    #[arg(long, env = "ECONOMY_MODULE_UPLOADS_PER_MINUTE", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub module_uploads_per_minute: u32,

    /// Bytes of compiled rules modules kept in memory; past it, the least
    /// recently used are dropped and loaded again when next used.
    #[arg(long, env = "ECONOMY_MODULE_CACHE_BYTES", default_value_t = RuntimeLimits::default().module_cache_bytes)]
    pub module_cache_bytes: usize,
}

impl Settings {
    /// Settings with every default, for `database_url`.
    pub fn for_database(database_url: &str) -> Self {
        Self::parse_from(["economy-host", "--database-url", database_url])
    }

    pub fn economy(&self) -> EconomySettings {
        EconomySettings {
            session_ttl: Duration::from_secs(self.session_ttl_seconds),
            uploads_per_minute: self.module_uploads_per_minute,
        }
    }

    pub fn read_timeouts(&self) -> ReadTimeouts {
        ReadTimeouts {
            header: Duration::from_millis(self.header_read_timeout_ms),
            body: Duration::from_millis(self.body_read_timeout_ms),
        }
    }

    pub fn runtime_limits(&self) -> RuntimeLimits {
        RuntimeLimits {
            fuel: self.module_fuel,
            deadline: Duration::from_millis(self.module_deadline_ms),
            memory_bytes: self.module_memory_bytes,
            max_instances: self.module_instances,
            tenant_instances: self.module_tenant_instances,
            tenant_cpu_per_second: self.module_tenant_cpu_ms.map(Duration::from_millis),
            instance_wait: Duration::from_millis(self.module_wait_ms),
            module_cache_bytes: self.module_cache_bytes,
            ..RuntimeLimits::default()
        }
    }

    /// Whether this host runs on the embedded store it set up itself (no
    /// `DATABASE_URL`).
    pub fn zero_setup(&self) -> bool {
        self.database_url.is_none()
    }

    /// The database's URL: `DATABASE_URL`, or the embedded store in the
    /// data directory.
    pub fn database_url(&self) -> DatabaseUrl {
        match &self.database_url {
            Some(url) => DatabaseUrl::new(url.clone()),
            None => DatabaseUrl::new(format!("sqlite://{}", self.data_dir.join(EMBEDDED_STORE_FILE).display())),
        }
    }

    pub fn stores(&self) -> StoreSettings {
        let timeout = Duration::from_millis(self.db_timeout_ms);
        StoreSettings {
            url: self.database_url(),
            default_pool: PoolSettings {
                max_connections: self.db_pool_size,
                acquire_timeout: timeout,
                statement_timeout: timeout,
            },
            tenant_pool: PoolSettings {
                max_connections: self.tenant_db_pool_size,
                acquire_timeout: Duration::from_millis(self.tenant_db_acquire_timeout_ms),
                statement_timeout: timeout,
            },
        }
    }
}
