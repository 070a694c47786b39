//! Tenants and their rules modules: what the operator and a tenant's admin
//! change about how the tenant's requests run.

use super::Economy;
use super::catalog::Applied;
use super::error::EconomyError;
use super::modules::Sample;
use crate::domain::{Name, Slug};
use crate::rules::MAX_MODULE_BYTES;
use crate::runtime::{CallLimits, ECONOMY_CORE_WASM};
use crate::secrets;
use crate::storage::{DatabaseUrl, KeyKind, LimitOverrides, ModuleInfo, Tenant};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The most fuel a tenant's calls may be given (about a minute of wasm).
const MAX_FUEL: i64 = 1_000_000_000_000;
/// The longest deadline a tenant's calls may be given.
const MAX_DEADLINE_MS: i64 = 60_000;
/// The most linear memory a tenant's calls may be given (the host's own
/// instance size caps it further).
const MAX_MEMORY_BYTES: i64 = 4 << 30;
/// The most storage calls a tenant's calls may be given.
const MAX_IMPORT_CALLS: i64 = 100_000;

/// A tenant just created, with its three keys (shown only here).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub client_key: String,
    pub server_key: String,
    pub admin_key: String,
}

/// A module the tenant can run (one it uploaded, or the built-in rules),
/// and whether it runs it now.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleEntry {
    pub sha256: String,
    pub size: i32,
    /// When it was uploaded (none for the built-in rules).
    pub created_at: Option<DateTime<Utc>>,
    /// The rules the host runs for a tenant that activated none.
    pub builtin: bool,
    pub active: bool,
}

impl ModuleEntry {
    fn uploaded(module: ModuleInfo, active: bool) -> Self {
        let ModuleInfo { sha256, size, created_at } = module;
        Self { sha256, size, created_at: Some(created_at), builtin: false, active }
    }
}

/// A module just uploaded, with what it may weigh and what a sample call
/// of it cost.
#[derive(Debug)]
pub struct UploadedModule {
    pub module: ModuleInfo,
    /// The largest module the host takes, in bytes.
    pub limit_bytes: usize,
    /// A quote of the tenant's first priced item (by key); none if no item
    /// has a price.
    pub sample: Option<Sample>,
}

impl Economy {
    /// Whether any tenant exists.
    pub async fn has_tenants(&self) -> Result<bool, EconomyError> {
        Ok(self.control.has_tenants().await?)
    }

    /// Creates a tenant with a client, a server and an admin key.
    pub async fn create_tenant(
        &self,
        slug: &Slug,
        name: &Name,
        database: Option<&DatabaseUrl>,
    ) -> Result<CreatedTenant, EconomyError> {
        let keys = KeyKind::ALL.map(|kind| (kind, secrets::generate(&format!("ek_{}_", kind.as_str()))));
        let hashes = keys.clone().map(|(kind, key)| (kind, secrets::hash(&key)));
        let tenant = self.control.create_tenant(slug.as_str(), name.as_str(), &hashes, database).await?;
        let [(_, client_key), (_, server_key), (_, admin_key)] = keys;
        Ok(CreatedTenant { tenant, client_key, server_key, admin_key })
    }

    /// Sets a tenant's sandbox limits (`None` keeps the host's default),
    /// each within its bound; returns the limits its calls now run under.
    pub async fn set_limits(
        &self,
        tenant_id: Uuid,
        limits: &LimitOverrides,
    ) -> Result<Applied<CallLimits>, EconomyError> {
        let bounded = [
            ("fuel", limits.fuel, MAX_FUEL),
            ("deadline_ms", limits.deadline_ms, MAX_DEADLINE_MS),
            ("memory_bytes", limits.memory_bytes, MAX_MEMORY_BYTES),
            ("max_import_calls", limits.max_import_calls.map(i64::from), MAX_IMPORT_CALLS),
        ];
        for (name, value, max) in bounded {
            if value.is_some_and(|value| !(1..=max).contains(&value)) {
                return Err(EconomyError::Invalid(format!("{name} must be between 1 and {max}")));
            }
        }
        if !self.control.set_limits(tenant_id, limits).await? {
            return Err(EconomyError::not_found("tenant"));
        }
        Ok(self.applied(tenant_id, self.rules.runtime().limits().for_call(limits)).await)
    }

    /// Checks, compiles and stores a module; it runs nothing until
    /// activated, except for a sample quote that writes nothing.
    pub async fn upload_module(&self, tenant_id: Uuid, bytes: Vec<u8>) -> Result<UploadedModule, EconomyError> {
        self.admit_upload(tenant_id)?;
        let module = self.rules.upload(tenant_id, bytes).await?;
        // The module is stored: a sample the host could not run is left out.
        let sample = self.sample_run(tenant_id, &module.sha256).await.unwrap_or_else(|error| {
            tracing::warn!(%error, module = %module.sha256, "the sample call of an upload failed");
            None
        });
        Ok(UploadedModule { module, limit_bytes: MAX_MODULE_BYTES, sample })
    }

    /// The tenant's uploaded modules, oldest first, then the built-in
    /// rules; the one it runs is marked active.
    pub async fn modules(&self, tenant_id: Uuid) -> Result<Vec<ModuleEntry>, EconomyError> {
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let active = tenant.uploaded_module_sha256();
        let modules = self.control.modules(tenant_id).await?;
        let mut entries: Vec<ModuleEntry> = modules
            .into_iter()
            .map(|module| {
                let active = active == Some(module.sha256.as_str());
                ModuleEntry::uploaded(module, active)
            })
            .collect();
        entries.push(ModuleEntry {
            sha256: self.rules.runtime().default_module().sha256.clone(),
            size: i32::try_from(ECONOMY_CORE_WASM.len()).unwrap_or(i32::MAX),
            created_at: None,
            builtin: true,
            active: active.is_none(),
        });
        Ok(entries)
    }

    /// Swaps the tenant's rules to a module it uploaded; requests already
    /// running finish on the module they began with. The module is on
    /// probation for its first calls on this host: if most of them fail,
    /// the module active before it is put back.
    pub async fn activate_module(&self, tenant_id: Uuid, sha256: &str) -> Result<Applied<ModuleEntry>, EconomyError> {
        let previous = self.active_upload(tenant_id).await?;
        let module = self.rules.activate(tenant_id, Some(sha256)).await?;
        let module = module.ok_or_else(|| EconomyError::internal("an activated module has no record"))?;
        self.watch_activation(tenant_id, Some(sha256), previous);
        Ok(self.applied(tenant_id, ModuleEntry::uploaded(module, true)).await)
    }

    /// Deletes a module the tenant uploaded and does not run, making room
    /// in its quota.
    pub async fn delete_module(&self, tenant_id: Uuid, sha256: &str) -> Result<(), EconomyError> {
        Ok(self.rules.delete(tenant_id, sha256).await?)
    }

    /// Back to the built-in rules; returns their hash.
    pub async fn deactivate_module(&self, tenant_id: Uuid) -> Result<Applied<String>, EconomyError> {
        self.rules.activate(tenant_id, None).await?;
        self.watch_activation(tenant_id, None, None);
        Ok(self.applied(tenant_id, self.rules.runtime().default_module().sha256.clone()).await)
    }

    /// The uploaded module the tenant runs, as stored now (none: the
    /// built-in rules).
    async fn active_upload(&self, tenant_id: Uuid) -> Result<Option<String>, EconomyError> {
        let config = self.control.tenant_configs(&[tenant_id]).await?.pop().map(|(_, config)| config);
        Ok(config.ok_or(EconomyError::UnknownTenant)?.active_sha256)
    }
}
