//! What each tenant's requests run with: its rules module, the module's
//! limits, its settings, and its catalog in memory. Modules are stored in
//! the control plane by SHA-256 (at most [`MODULE_QUOTA`] of them per
//! tenant), compiled once per engine (the artifact is stored too, so a
//! restart deserializes instead of recompiling), and the compiled ones kept
//! in memory within a budget of bytes, the least recently used dropped
//! first: an idle tenant holds no compiled code, and its next request loads
//! its module again (a fraction of a millisecond). A request holds its
//! module behind an `Arc` and finishes on it, so swapping never drains or
//! fails anything in flight. The configuration is re-read when the control
//! plane's `config_version` moves, the catalog (from the tenant's own
//! store) when its `catalog_version` moves. Changes made through another
//! host are picked up by polling the tenants this host serves (every
//! [`REFRESH_INTERVAL`]); nothing depends on LISTEN/NOTIFY.

use crate::catalog::Catalog;
use crate::runtime::{Call, CallLimits, Placement, PlayerContext, RequestContext, RulesModule, Runtime};
use crate::storage::{
    ControlStore, Deleted, ModuleInfo, ModuleQuota, StorageError, TenantConfig, TenantSettings, TenantStores, Uploaded,
    User,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use uuid::Uuid;

/// The largest module a tenant may upload (Shopify Functions allow 256 kB).
pub const MAX_MODULE_BYTES: usize = 256 * 1024;
/// How many modules, and how many bytes of them, a tenant may keep
/// uploaded (`DELETE /admin/modules/{sha256}` makes room).
pub const MODULE_QUOTA: ModuleQuota = ModuleQuota { modules: 100, bytes: 16 << 20 };
/// How often a host re-reads the active modules of the tenants it serves.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// What this host keeps of a tenant between requests: its configuration
/// and its catalog. Not its compiled module: that lives in the module cache.
struct Installed {
    limits: CallLimits,
    catalog: Arc<Catalog>,
    /// The tenant's module settings, shared by its calls.
    module_settings: Arc<serde_json::Map<String, serde_json::Value>>,
    config: TenantConfig,
    catalog_version: i64,
}

impl Installed {
    fn new(limits: CallLimits, catalog: Arc<Catalog>, config: TenantConfig, catalog_version: i64) -> Self {
        let module_settings = Arc::new(config.settings.module_settings.clone());
        Self { limits, catalog, module_settings, config, catalog_version }
    }
}

/// What a tenant's request runs with.
pub struct TenantContext {
    pub module: Arc<RulesModule>,
    pub limits: CallLimits,
    pub catalog: Arc<Catalog>,
    installed: Arc<Installed>,
}

impl TenantContext {
    /// The uploaded module the tenant runs (none: the built-in rules).
    pub fn uploaded_module_sha256(&self) -> Option<&str> {
        self.installed.config.active_sha256.as_deref()
    }

    /// The tenant's own settings.
    pub fn settings(&self) -> &TenantSettings {
        &self.installed.config.settings
    }

    /// A call of this tenant's module, for the request `request_id` of
    /// `user`, at the current time.
    pub fn call(&self, user: &User, request_id: Uuid) -> Call<'_> {
        Call {
            module: &self.module,
            limits: &self.limits,
            catalog: &self.catalog,
            ctx: RequestContext::for_request(user, request_id),
            player: PlayerContext::new(user.identity.clone(), self.installed.module_settings.clone()),
            placement: Placement::default(),
            read_only: false,
        }
    }
}

/// Compiled modules by SHA-256, within a budget of bytes (each weighs its
/// compiled artifact): past it, the least recently used are dropped. One
/// being used by a request stays alive until the request ends.
struct ModuleCache {
    budget_bytes: usize,
    used_bytes: usize,
    /// Counts uses, for recency.
    clock: u64,
    entries: HashMap<String, Cached>,
}

struct Cached {
    module: Arc<RulesModule>,
    bytes: usize,
    used_at: u64,
}

impl ModuleCache {
    fn new(budget_bytes: usize) -> Self {
        Self { budget_bytes, used_bytes: 0, clock: 0, entries: HashMap::new() }
    }

    fn get(&mut self, sha256: &str) -> Option<Arc<RulesModule>> {
        self.clock += 1;
        let cached = self.entries.get_mut(sha256)?;
        cached.used_at = self.clock;
        Some(cached.module.clone())
    }

    /// Keeps `module`, dropping the least recently used ones past the budget
    /// (never the one just kept).
    fn insert(&mut self, sha256: String, module: Arc<RulesModule>, bytes: usize) {
        self.clock += 1;
        let cached = Cached { module, bytes, used_at: self.clock };
        if let Some(replaced) = self.entries.insert(sha256.clone(), cached) {
            self.used_bytes -= replaced.bytes;
        }
        self.used_bytes += bytes;
        while self.used_bytes > self.budget_bytes {
            let oldest =
                self.entries.iter().filter(|(key, _)| **key != sha256).min_by_key(|(_, cached)| cached.used_at);
            let Some(oldest) = oldest.map(|(key, _)| key.clone()) else { break };
            if let Some(dropped) = self.entries.remove(&oldest) {
                self.used_bytes -= dropped.bytes;
            }
        }
    }

    fn remove(&mut self, sha256: &str) {
        if let Some(dropped) = self.entries.remove(sha256) {
            self.used_bytes -= dropped.bytes;
        }
    }
}

/// Why an upload or activation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Not a component implementing the economy world; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("module {0} was never uploaded")]
    Unknown(String),
    /// The host could not compile a module (one already accepted, or a
    /// compilation that crashed): the host's failure, not the module's.
    #[error("{0}")]
    Host(String),
    /// The tenant keeps as many modules, or as many bytes of them, as it
    /// may.
    #[error("{0}")]
    Quota(String),
    /// The module is the tenant's active one.
    #[error("module {0} is the active one: activate another before deleting it")]
    Active(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct Rules {
    runtime: Runtime,
    control: Arc<dyn ControlStore>,
    stores: Arc<dyn TenantStores>,
    /// Compiled modules by SHA-256, within the host's budget.
    compiled: Mutex<ModuleCache>,
    /// The configuration and catalog of every tenant this host has served.
    tenants: RwLock<HashMap<Uuid, Arc<Installed>>>,
    /// Compilations take turns: at most one core compiles at a time.
    compiling: tokio::sync::Semaphore,
}

impl Rules {
    pub fn new(runtime: Runtime, control: Arc<dyn ControlStore>, stores: Arc<dyn TenantStores>) -> Arc<Self> {
        let compiled = Mutex::new(ModuleCache::new(runtime.limits().module_cache_bytes));
        let compiling = tokio::sync::Semaphore::new(1);
        let rules = Arc::new(Self { runtime, control, stores, compiled, tenants: RwLock::default(), compiling });
        spawn_refresher(Arc::downgrade(&rules));
        rules
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What `tenant_id` runs with now.
    pub async fn for_tenant(&self, tenant_id: Uuid) -> Result<Arc<TenantContext>, ModuleError> {
        let found = self.tenants.read().expect("tenant rules lock").get(&tenant_id).cloned();
        let installed = match found {
            Some(installed) => installed,
            None => {
                let config = self.control.tenant_configs(&[tenant_id]).await?.pop().map(|(_, config)| config);
                let config = config.ok_or(StorageError::UnknownTenant)?;
                let catalog_version = self.stores.tenant(tenant_id).await?.catalog_version().await?;
                self.install(tenant_id, config, catalog_version).await?
            }
        };
        let module = match &installed.config.active_sha256 {
            None => self.runtime.default_module(),
            // Only a module the tenant uploaded can have been activated.
            Some(sha256) => self.module(tenant_id, sha256).await?,
        };
        let (limits, catalog) = (installed.limits.clone(), installed.catalog.clone());
        Ok(Arc::new(TenantContext { module, limits, catalog, installed }))
    }

    /// Checks, compiles and stores a module; it is not active yet. The
    /// bytes are compiled even when another tenant uploaded the same ones:
    /// how long an upload takes must tell nothing about other tenants'
    /// modules. Only a tenant's re-upload of its own module answers at once.
    pub async fn upload(&self, tenant_id: Uuid, bytes: Vec<u8>) -> Result<ModuleInfo, ModuleError> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(uploaded) = self.control.module_info(tenant_id, &sha256).await? {
            return Ok(uploaded);
        }
        // Checked before compiling (a tenant past its quota costs no
        // compilation), and again, atomically, when stored.
        let modules = self.control.modules(tenant_id).await?;
        let kept_bytes: i64 = modules.iter().map(|module| i64::from(module.size)).sum();
        if i64::try_from(modules.len()).unwrap_or(i64::MAX) >= MODULE_QUOTA.modules
            || kept_bytes + i64::try_from(bytes.len()).unwrap_or(i64::MAX) > MODULE_QUOTA.bytes
        {
            return Err(over_quota());
        }
        let (module, weight) = self.compile(&sha256, bytes.clone()).await?;
        self.compiled.lock().expect("module cache lock").insert(sha256.clone(), module, weight);
        match self.control.put_module(tenant_id, &sha256, &bytes, &MODULE_QUOTA).await? {
            Uploaded::Stored(info) => Ok(info),
            Uploaded::OverQuota => Err(over_quota()),
        }
    }

    /// Deletes a module the tenant uploaded and does not run. A module
    /// active on another host a moment ago finishes its requests there.
    pub async fn delete(&self, tenant_id: Uuid, sha256: &str) -> Result<(), ModuleError> {
        match self.control.delete_module(tenant_id, sha256).await? {
            Deleted::Deleted { last } => {
                if last {
                    self.compiled.lock().expect("module cache lock").remove(sha256);
                }
                Ok(())
            }
            Deleted::Active => Err(ModuleError::Active(sha256.to_owned())),
            Deleted::Unknown => Err(ModuleError::Unknown(sha256.to_owned())),
        }
    }

    /// Makes an uploaded module (`None`: the built-in rules) the tenant's
    /// rules, and returns its record; [`Rules::refresh`] applies it on this
    /// host, and the other hosts pick it up within a refresh. A module the
    /// tenant never uploaded is [`ModuleError::Unknown`], and nothing is
    /// written.
    pub async fn activate(&self, tenant_id: Uuid, sha256: Option<&str>) -> Result<Option<ModuleInfo>, ModuleError> {
        let info = match sha256 {
            Some(sha256) => {
                self.uploaded_module(tenant_id, sha256).await?;
                self.control.module_info(tenant_id, sha256).await?
            }
            None => None,
        };
        if !self.control.set_active_module(tenant_id, sha256).await? {
            return Err(ModuleError::Unknown(sha256.unwrap_or_default().to_owned()));
        }
        Ok(info)
    }

    /// Re-reads what `tenant_ids` run with and swaps in what changed. A
    /// tenant whose store fails keeps what it has; the first failure is
    /// returned once the others are done.
    pub async fn refresh(&self, tenant_ids: &[Uuid]) -> Result<(), ModuleError> {
        let configs: HashMap<Uuid, TenantConfig> = self.control.tenant_configs(tenant_ids).await?.into_iter().collect();
        let mut failure = None;
        for (tenant_id, catalog_version) in self.stores.catalog_versions(tenant_ids).await {
            let Some(config) = configs.get(&tenant_id) else { continue };
            let catalog_version = match catalog_version {
                Ok(version) => version,
                Err(error) => {
                    failure.get_or_insert(ModuleError::Storage(error));
                    continue;
                }
            };
            let current = self.tenants.read().expect("tenant rules lock").get(&tenant_id).cloned();
            let unchanged =
                current.is_some_and(|current| current.config == *config && current.catalog_version == catalog_version);
            if !unchanged && let Err(error) = self.install(tenant_id, config.clone(), catalog_version).await {
                failure.get_or_insert(error);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Builds what the host keeps of the tenant from `config` and its
    /// catalog at `catalog_version`, and swaps it in. A slower refresh never
    /// puts back an older part: each part (the configuration, the catalog)
    /// is kept from whichever of the installed and the new is the later
    /// version.
    async fn install(
        &self,
        tenant_id: Uuid,
        config: TenantConfig,
        catalog_version: i64,
    ) -> Result<Arc<Installed>, ModuleError> {
        let current = self.tenants.read().expect("tenant rules lock").get(&tenant_id).cloned();
        let catalog = match &current {
            Some(current) if current.catalog_version == catalog_version => current.catalog.clone(),
            _ => {
                let store = self.stores.tenant(tenant_id).await?;
                let (items, stores, currencies) = tokio::try_join!(store.items(), store.stores(), store.currencies())?;
                Arc::new(Catalog::new(items, stores, currencies))
            }
        };
        let limits = self.runtime.limits().for_call(&config.limits);
        let fresh = Installed::new(limits, catalog, config, catalog_version);
        let mut tenants = self.tenants.write().expect("tenant rules lock");
        let installed = Arc::new(match tenants.get(&tenant_id) {
            Some(installed) => newest(installed, fresh),
            None => fresh,
        });
        tenants.insert(tenant_id, installed.clone());
        Ok(installed)
    }

    /// A module the tenant uploaded, compiled, whether it is active or not.
    /// Ownership is checked first: the caches behind it are shared by all
    /// tenants (the same bytes make the same code), so they must never
    /// answer for a module the tenant does not have.
    pub async fn uploaded_module(&self, tenant_id: Uuid, sha256: &str) -> Result<Arc<RulesModule>, ModuleError> {
        if self.control.module_info(tenant_id, sha256).await?.is_none() {
            return Err(ModuleError::Unknown(sha256.to_owned()));
        }
        self.module(tenant_id, sha256).await
    }

    /// A module of the tenant's, compiled: from the cache, else loaded from
    /// its stored artifact, else compiled from its bytes. The caller knows
    /// the tenant has the module.
    async fn module(&self, tenant_id: Uuid, sha256: &str) -> Result<Arc<RulesModule>, ModuleError> {
        if let Some(module) = self.compiled.lock().expect("module cache lock").get(sha256) {
            return Ok(module);
        }
        let engine_hash = self.runtime.engine_hash();
        let loaded = match self.control.artifact(sha256, &engine_hash).await? {
            Some(artifact) => {
                let weight = artifact.len();
                self.runtime.load_artifact(sha256, &artifact).ok().map(|module| (Arc::new(module), weight))
            }
            None => None,
        };
        let (module, weight) = match loaded {
            Some(loaded) => loaded,
            None => {
                let bytes = self.control.module_bytes(tenant_id, sha256).await?;
                let bytes = bytes.ok_or_else(|| ModuleError::Unknown(sha256.to_owned()))?;
                self.compile(sha256, bytes).await.map_err(|error| match error {
                    ModuleError::Invalid(reason) => {
                        ModuleError::Host(format!("the accepted module {sha256} no longer compiles: {reason}"))
                    }
                    other => other,
                })?
            }
        };
        self.compiled.lock().expect("module cache lock").insert(sha256.to_owned(), module.clone(), weight);
        Ok(module)
    }

    /// Compiles a module off the async threads and stores its artifact;
    /// the module, and what its artifact weighs.
    async fn compile(&self, sha256: &str, bytes: Vec<u8>) -> Result<(Arc<RulesModule>, usize), ModuleError> {
        if bytes.len() > MAX_MODULE_BYTES {
            return Err(ModuleError::Invalid(format!(
                "the module is {} bytes; the limit is {MAX_MODULE_BYTES}",
                bytes.len()
            )));
        }
        let _turn = self.compiling.acquire().await.map_err(|error| ModuleError::Host(error.to_string()))?;
        let runtime = self.runtime.clone();
        let (module, artifact) = tokio::task::spawn_blocking(move || runtime.compile(&bytes))
            .await
            .map_err(|error| ModuleError::Host(format!("compilation crashed: {error}")))?
            .map_err(|error| ModuleError::Invalid(format!("{error:#}")))?;
        self.control.put_artifact(sha256, &self.runtime.engine_hash(), &artifact).await?;
        Ok((Arc::new(module), artifact.len()))
    }
}

/// Why an upload past the quota is refused, and what makes room.
fn over_quota() -> ModuleError {
    let ModuleQuota { modules, bytes } = MODULE_QUOTA;
    ModuleError::Quota(format!(
        "the tenant keeps {modules} modules or {} MiB of them at most: delete one it no longer needs \
         (DELETE /admin/modules/{{sha256}})",
        bytes >> 20
    ))
}

/// The later of each part of `installed` and `fresh`: the configuration
/// (module, limits, settings) by `config_version`, the catalog by
/// `catalog_version`.
fn newest(installed: &Installed, fresh: Installed) -> Installed {
    let (config_from, catalog_from) = (
        installed.config.config_version > fresh.config.config_version,
        installed.catalog_version > fresh.catalog_version,
    );
    let Installed { limits, catalog, module_settings, config, catalog_version } = fresh;
    let (limits, module_settings, config) = match config_from {
        true => (installed.limits.clone(), installed.module_settings.clone(), installed.config.clone()),
        false => (limits, module_settings, config),
    };
    let (catalog, catalog_version) = match catalog_from {
        true => (installed.catalog.clone(), installed.catalog_version),
        false => (catalog, catalog_version),
    };
    Installed { limits, catalog, module_settings, config, catalog_version }
}

/// Polls the tenants this host serves until `Rules` is dropped.
fn spawn_refresher(rules: Weak<Rules>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(REFRESH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(rules) = rules.upgrade() else { return };
            let tenant_ids: Vec<Uuid> = rules.tenants.read().expect("tenant rules lock").keys().copied().collect();
            if !tenant_ids.is_empty()
                && let Err(error) = rules.refresh(&tenant_ids).await
            {
                tracing::warn!(%error, "refreshing tenants' rules modules failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeLimits;
    use crate::storage::LimitOverrides;

    fn installed(config_version: i64, fuel: i64, catalog_version: i64) -> Installed {
        let limits = LimitOverrides { fuel: Some(fuel), ..LimitOverrides::default() };
        let config = TenantConfig {
            active_sha256: None,
            limits: limits.clone(),
            settings: TenantSettings::default(),
            config_version,
            database: None,
        };
        let call_limits = RuntimeLimits::default().for_call(&limits);
        let catalog = Arc::new(Catalog::new(Vec::new(), Vec::new(), Vec::new()));
        Installed::new(call_limits, catalog, config, catalog_version)
    }

    /// Two refreshes that read at different times may finish in either
    /// order: each part ends at the later version it was read at.
    #[test]
    fn a_slower_refresh_never_puts_back_an_older_part() {
        let current = installed(5, 500, 2);
        let merged = newest(&current, installed(4, 400, 3));
        assert_eq!((merged.config.config_version, merged.limits.fuel), (5, 500), "the configuration stays the later");
        assert_eq!(merged.catalog_version, 3, "the catalog moves to the later");
        assert!(!Arc::ptr_eq(&merged.catalog, &current.catalog));

        let merged = newest(&current, installed(6, 600, 1));
        assert_eq!(
            (merged.config.config_version, merged.limits.fuel),
            (6, 600),
            "the configuration moves to the later"
        );
        assert_eq!(merged.catalog_version, 2, "the catalog stays the later");
        assert!(Arc::ptr_eq(&merged.catalog, &current.catalog));
    }

    #[test]
    fn the_module_cache_drops_the_least_recently_used_past_its_budget() {
        let module = Runtime::new(RuntimeLimits::default()).expect("runtime").default_module();
        let mut cache = ModuleCache::new(100);
        cache.insert("a".into(), module.clone(), 40);
        cache.insert("b".into(), module.clone(), 40);
        assert!(cache.get("a").is_some(), "a is now the more recent");
        cache.insert("c".into(), module.clone(), 40);
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert_eq!(cache.used_bytes, 80);
        cache.insert("huge".into(), module, 500);
        assert_eq!(cache.entries.len(), 1, "one past the budget alone is kept, until the next");
        cache.remove("huge");
        assert_eq!(cache.used_bytes, 0);
    }
}
