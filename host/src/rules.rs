//! What each tenant's requests run with: its rules module, the module's
//! limits, and its catalog in memory. Modules are stored in the database
//! by SHA-256, compiled once per engine (the artifact is stored too, so a
//! restart deserializes instead of recompiling), and cached in memory. A
//! tenant's active module sits behind an `Arc`: a request clones it once
//! and finishes on it, so swapping never drains or fails anything in flight.
//! The catalog is reloaded whole when the tenant's `config_version` moves.
//! Changes made through another host are picked up by polling the tenants
//! this host serves (every [`REFRESH_INTERVAL`]); nothing depends on
//! LISTEN/NOTIFY.

use crate::catalog::Catalog;
use crate::runtime::{Call, CallLimits, RequestContext, RulesModule, Runtime};
use crate::storage::{ModuleInfo, Storage, StorageError, TenantRules, TenantSettings, TxScope, User};
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
    rules: TenantRules,
}

impl TenantContext {
    /// The tenant's own settings.
    pub fn settings(&self) -> &TenantSettings {
        &self.rules.settings
    }

    /// The scope of a transaction for `user`, recording this tenant's module
    /// (`recorded`) or none (the server's own grants).
    pub fn scope(&self, user: &User, recorded: bool) -> TxScope {
        TxScope {
            tenant_id: user.tenant_id,
            user_id: user.id,
            module_sha256: recorded.then(|| self.module.sha256.clone()),
            recharging: self.catalog.recharging().clone(),
        }
    }

    /// A call of this tenant's module, for the request `ctx`.
    pub fn call(&self, ctx: RequestContext) -> Call<'_> {
        Call { module: &self.module, limits: &self.limits, catalog: &self.catalog, ctx }
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
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct Rules {
    runtime: Runtime,
    storage: Arc<dyn Storage>,
    /// Compiled modules by SHA-256.
    compiled: Mutex<HashMap<String, Arc<RulesModule>>>,
    /// The rules of every tenant this host has served.
    tenants: RwLock<HashMap<Uuid, Arc<TenantContext>>>,
}

impl Rules {
    pub fn new(runtime: Runtime, storage: Arc<dyn Storage>) -> Arc<Self> {
        let rules = Arc::new(Self { runtime, storage, compiled: Mutex::default(), tenants: RwLock::default() });
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
        let rules = self.storage.tenant_rules(&[tenant_id]).await?.pop().map(|(_, rules)| rules).unwrap_or_default();
        self.install(tenant_id, rules).await
    }

    /// Checks, compiles and stores a module; it is not active yet. The
    /// bytes are compiled even when another tenant uploaded the same ones:
    /// how long an upload takes must tell nothing about other tenants'
    /// modules. Only a tenant's re-upload of its own module answers at once.
    pub async fn upload(&self, tenant_id: Uuid, bytes: Vec<u8>) -> Result<ModuleInfo, ModuleError> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(uploaded) = self.storage.module_info(tenant_id, &sha256).await? {
            return Ok(uploaded);
        }
        let module = self.compile(&sha256, bytes.clone()).await?;
        self.compiled.lock().expect("module cache lock").insert(sha256.clone(), module);
        Ok(self.storage.put_module(tenant_id, &sha256, &bytes).await?)
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
                self.storage.module_info(tenant_id, sha256).await?
            }
            None => None,
        };
        if !self.storage.set_active_module(tenant_id, sha256).await? {
            return Err(ModuleError::Unknown(sha256.unwrap_or_default().to_owned()));
        }
        Ok(info)
    }

    /// Re-reads the rules of `tenant_ids` and swaps in what changed.
    pub async fn refresh(&self, tenant_ids: &[Uuid]) -> Result<(), ModuleError> {
        for (tenant_id, rules) in self.storage.tenant_rules(tenant_ids).await? {
            let current = self.tenants.read().expect("tenant rules lock").get(&tenant_id).map(|t| t.rules.clone());
            if current.as_ref() != Some(&rules) {
                self.install(tenant_id, rules).await?;
            }
        }
        Ok(())
    }

    async fn install(&self, tenant_id: Uuid, rules: TenantRules) -> Result<Arc<TenantContext>, ModuleError> {
        let current = self.tenants.read().expect("tenant rules lock").get(&tenant_id).cloned();
        let module = match &rules.active_sha256 {
            None => self.runtime.default_module(),
            Some(sha256) => self.stored_module(tenant_id, sha256).await?,
        };
        let catalog = match &current {
            Some(current) if current.rules.config_version == rules.config_version => current.catalog.clone(),
            _ => {
                let (items, stores, currencies) = tokio::try_join!(
                    self.storage.items(tenant_id),
                    self.storage.stores(tenant_id),
                    self.storage.currencies(tenant_id)
                )?;
                Arc::new(Catalog::new(items, stores, currencies))
            }
        };
        let limits = self.runtime.limits().for_call(&rules.limits);
        let installed = Arc::new(TenantContext { module, limits, catalog, rules });
        let mut tenants = self.tenants.write().expect("tenant rules lock");
        match tenants.get(&tenant_id) {
            // A slower refresh must not put back older rules: every change
            // moves the version, so an equal version is the same rules.
            Some(newer) if newer.rules.config_version >= installed.rules.config_version => Ok(newer.clone()),
            _ => {
                tenants.insert(tenant_id, installed.clone());
                Ok(installed)
            }
        }
    }

    /// A module the tenant uploaded, compiled. Ownership is checked first:
    /// the caches behind it are shared by all tenants (the same bytes make
    /// the same code), so they must never answer for a module the tenant
    /// does not have.
    async fn stored_module(&self, tenant_id: Uuid, sha256: &str) -> Result<Arc<RulesModule>, ModuleError> {
        if self.storage.module_info(tenant_id, sha256).await?.is_none() {
            return Err(ModuleError::Unknown(sha256.to_owned()));
        }
        if let Some(module) = self.compiled.lock().expect("module cache lock").get(sha256) {
            return Ok(module.clone());
        }
        let engine_hash = self.runtime.engine_hash();
        let loaded = match self.storage.artifact(sha256, &engine_hash).await? {
            Some(artifact) => self.runtime.load_artifact(sha256, &artifact).ok().map(Arc::new),
            None => None,
        };
        let module = match loaded {
            Some(module) => module,
            None => {
                let bytes = self.storage.module_bytes(tenant_id, sha256).await?;
                self.compile(sha256, bytes.ok_or_else(|| ModuleError::Unknown(sha256.to_owned()))?).await?
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
            .map_err(|error| ModuleError::Invalid(format!("compilation failed: {error}")))?
            .map_err(|error| ModuleError::Invalid(format!("{error:#}")))?;
        self.storage.put_artifact(sha256, &self.runtime.engine_hash(), &artifact).await?;
        Ok(Arc::new(module))
    }
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
