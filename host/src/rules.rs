//! What each tenant's requests run with: its rules module, the module's
//! limits, its settings, and its catalog in memory. Modules are stored in
//! the control plane by SHA-256, compiled once per engine (the artifact is
//! stored too, so a restart deserializes instead of recompiling), and
//! cached in memory. A tenant's active module sits behind an `Arc`: a
//! request clones it once and finishes on it, so swapping never drains or
//! fails anything in flight. The configuration is re-read when the control
//! plane's `config_version` moves, the catalog (from the tenant's own
//! store) when its `catalog_version` moves. Changes made through another
//! host are picked up by polling the tenants this host serves (every
//! [`REFRESH_INTERVAL`]); nothing depends on LISTEN/NOTIFY.

use crate::catalog::Catalog;
use crate::runtime::{Call, CallLimits, Placement, PlayerContext, RequestContext, RulesModule, Runtime};
use crate::storage::{ControlStore, ModuleInfo, StorageError, TenantConfig, TenantSettings, TenantStores, User};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use uuid::Uuid;

/// The largest module a tenant may upload (Shopify Functions allow 256 kB).
pub const MAX_MODULE_BYTES: usize = 256 * 1024;
/// How often a host re-reads the active modules of the tenants it serves.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// What a tenant's request runs with.
pub struct TenantContext {
    pub module: Arc<RulesModule>,
    pub limits: CallLimits,
    pub catalog: Arc<Catalog>,
    /// The tenant's module settings, shared by its calls.
    module_settings: Arc<serde_json::Map<String, serde_json::Value>>,
    config: TenantConfig,
    catalog_version: i64,
}

impl TenantContext {
    fn new(
        module: Arc<RulesModule>,
        limits: CallLimits,
        catalog: Arc<Catalog>,
        config: TenantConfig,
        catalog_version: i64,
    ) -> Self {
        let module_settings = Arc::new(config.settings.module_settings.clone());
        Self { module, limits, catalog, module_settings, config, catalog_version }
    }

    /// The uploaded module the tenant runs (none: the built-in rules).
    pub fn uploaded_module_sha256(&self) -> Option<&str> {
        self.config.active_sha256.as_deref()
    }

    /// The tenant's own settings.
    pub fn settings(&self) -> &TenantSettings {
        &self.config.settings
    }

    /// A call of this tenant's module, for the request `request_id` of
    /// `user`, at the current time.
    pub fn call(&self, user: &User, request_id: Uuid) -> Call<'_> {
        Call {
            module: &self.module,
            limits: &self.limits,
            catalog: &self.catalog,
            ctx: RequestContext::for_request(user, request_id),
            player: PlayerContext::new(user.identity.clone(), self.module_settings.clone()),
            placement: Placement::default(),
            read_only: false,
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
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct Rules {
    runtime: Runtime,
    control: Arc<dyn ControlStore>,
    stores: Arc<dyn TenantStores>,
    /// Compiled modules by SHA-256.
    compiled: Mutex<HashMap<String, Arc<RulesModule>>>,
    /// The rules of every tenant this host has served.
    tenants: RwLock<HashMap<Uuid, Arc<TenantContext>>>,
}

impl Rules {
    pub fn new(runtime: Runtime, control: Arc<dyn ControlStore>, stores: Arc<dyn TenantStores>) -> Arc<Self> {
        let rules = Arc::new(Self { runtime, control, stores, compiled: Mutex::default(), tenants: RwLock::default() });
        spawn_refresher(Arc::downgrade(&rules));
        rules
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What `tenant_id` runs with now.
    pub async fn for_tenant(&self, tenant_id: Uuid) -> Result<Arc<TenantContext>, ModuleError> {
        if let Some(found) = self.tenants.read().expect("tenant rules lock").get(&tenant_id) {
            return Ok(found.clone());
        }
        let config = self.control.tenant_configs(&[tenant_id]).await?.pop().map(|(_, config)| config);
        let config = config.ok_or(StorageError::UnknownTenant)?;
        let catalog_version = self.stores.tenant(tenant_id).await?.catalog_version().await?;
        self.install(tenant_id, config, catalog_version).await
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
        let module = self.compile(&sha256, bytes.clone()).await?;
        self.compiled.lock().expect("module cache lock").insert(sha256.clone(), module);
        Ok(self.control.put_module(tenant_id, &sha256, &bytes).await?)
    }

    /// Makes an uploaded module (`None`: the built-in rules) the tenant's
    /// rules, and returns its record; [`Rules::refresh`] applies it on this
    /// host, and the other hosts pick it up within a refresh. A module the
    /// tenant never uploaded is [`ModuleError::Unknown`], and nothing is
    /// written.
    pub async fn activate(&self, tenant_id: Uuid, sha256: Option<&str>) -> Result<Option<ModuleInfo>, ModuleError> {
        let info = match sha256 {
            Some(sha256) => {
                self.stored_module(tenant_id, sha256).await?;
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

    /// Builds what the tenant runs with from `config` and its catalog at
    /// `catalog_version`, and swaps it in. A slower refresh never puts back
    /// an older part: each part (the configuration, the catalog) is kept
    /// from whichever of the installed and the new is the later version.
    async fn install(
        &self,
        tenant_id: Uuid,
        config: TenantConfig,
        catalog_version: i64,
    ) -> Result<Arc<TenantContext>, ModuleError> {
        let current = self.tenants.read().expect("tenant rules lock").get(&tenant_id).cloned();
        let module = match &config.active_sha256 {
            None => self.runtime.default_module(),
            Some(sha256) => self.stored_module(tenant_id, sha256).await?,
        };
        let catalog = match &current {
            Some(current) if current.catalog_version == catalog_version => current.catalog.clone(),
            _ => {
                let store = self.stores.tenant(tenant_id).await?;
                let (items, stores, currencies) = tokio::try_join!(store.items(), store.stores(), store.currencies())?;
                Arc::new(Catalog::new(items, stores, currencies))
            }
        };
        let limits = self.runtime.limits().for_call(&config.limits);
        let fresh = TenantContext::new(module, limits, catalog, config, catalog_version);
        let mut tenants = self.tenants.write().expect("tenant rules lock");
        let installed = Arc::new(match tenants.get(&tenant_id) {
            Some(installed) => newest(installed, fresh),
            None => fresh,
        });
        tenants.insert(tenant_id, installed.clone());
        Ok(installed)
    }

    /// A module the tenant uploaded, compiled, whether it is active or not.
    pub async fn uploaded_module(&self, tenant_id: Uuid, sha256: &str) -> Result<Arc<RulesModule>, ModuleError> {
        self.stored_module(tenant_id, sha256).await
    }

    /// A module the tenant uploaded, compiled. Ownership is checked first:
    /// the caches behind it are shared by all tenants (the same bytes make
    /// the same code), so they must never answer for a module the tenant
    /// does not have.
    async fn stored_module(&self, tenant_id: Uuid, sha256: &str) -> Result<Arc<RulesModule>, ModuleError> {
        if self.control.module_info(tenant_id, sha256).await?.is_none() {
            return Err(ModuleError::Unknown(sha256.to_owned()));
        }
        if let Some(module) = self.compiled.lock().expect("module cache lock").get(sha256) {
            return Ok(module.clone());
        }
        let engine_hash = self.runtime.engine_hash();
        let loaded = match self.control.artifact(sha256, &engine_hash).await? {
            Some(artifact) => self.runtime.load_artifact(sha256, &artifact).ok().map(Arc::new),
            None => None,
        };
        let module = match loaded {
            Some(module) => module,
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
        self.compiled.lock().expect("module cache lock").insert(sha256.to_owned(), module.clone());
        Ok(module)
    }

    /// Compiles a module off the async threads and stores its artifact.
    async fn compile(&self, sha256: &str, bytes: Vec<u8>) -> Result<Arc<RulesModule>, ModuleError> {
        if bytes.len() > MAX_MODULE_BYTES {
            return Err(ModuleError::Invalid(format!(
                "the module is {} bytes; the limit is {MAX_MODULE_BYTES}",
                bytes.len()
            )));
        }
        let runtime = self.runtime.clone();
        let (module, artifact) = tokio::task::spawn_blocking(move || runtime.compile(&bytes))
            .await
            .map_err(|error| ModuleError::Host(format!("compilation crashed: {error}")))?
            .map_err(|error| ModuleError::Invalid(format!("{error:#}")))?;
        self.control.put_artifact(sha256, &self.runtime.engine_hash(), &artifact).await?;
        Ok(Arc::new(module))
    }
}

/// The later of each part of `installed` and `fresh`: the configuration
/// (module, limits, settings) by `config_version`, the catalog by
/// `catalog_version`.
fn newest(installed: &TenantContext, fresh: TenantContext) -> TenantContext {
    let (config_from, catalog_from) = (
        installed.config.config_version > fresh.config.config_version,
        installed.catalog_version > fresh.catalog_version,
    );
    let TenantContext { module, limits, catalog, module_settings, config, catalog_version } = fresh;
    let (module, limits, module_settings, config) = match config_from {
        true => (
            installed.module.clone(),
            installed.limits.clone(),
            installed.module_settings.clone(),
            installed.config.clone(),
        ),
        false => (module, limits, module_settings, config),
    };
    let (catalog, catalog_version) = match catalog_from {
        true => (installed.catalog.clone(), installed.catalog_version),
        false => (catalog, catalog_version),
    };
    TenantContext { module, limits, catalog, module_settings, config, catalog_version }
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

    fn context(module: &Arc<RulesModule>, config_version: i64, fuel: i64, catalog_version: i64) -> TenantContext {
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
        TenantContext::new(module.clone(), call_limits, catalog, config, catalog_version)
    }

    /// Two refreshes that read at different times may finish in either
    /// order: each part ends at the later version it was read at.
    #[tokio::test]
    async fn a_slower_refresh_never_puts_back_an_older_part() {
        let module = Runtime::new(RuntimeLimits::default()).expect("runtime").default_module();
        let installed = context(&module, 5, 500, 2);
        let merged = newest(&installed, context(&module, 4, 400, 3));
        assert_eq!((merged.config.config_version, merged.limits.fuel), (5, 500), "the configuration stays the later");
        assert_eq!(merged.catalog_version, 3, "the catalog moves to the later");
        assert!(!Arc::ptr_eq(&merged.catalog, &installed.catalog));

        let merged = newest(&installed, context(&module, 6, 600, 1));
        assert_eq!(
            (merged.config.config_version, merged.limits.fuel),
            (6, 600),
            "the configuration moves to the later"
        );
        assert_eq!(merged.catalog_version, 2, "the catalog stays the later");
        assert!(Arc::ptr_eq(&merged.catalog, &installed.catalog));
    }
}
