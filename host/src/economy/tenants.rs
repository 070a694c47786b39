//! Tenants and their rules modules: what the operator and a tenant's admin
//! change about how the tenant's requests run.

use super::Economy;
use super::catalog::Applied;
use super::error::EconomyError;
use crate::domain::{Name, Slug};
use crate::runtime::CallLimits;
use crate::secrets;
use crate::storage::{DatabaseUrl, KeyKind, LimitOverrides, ModuleInfo, Tenant};
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

/// An uploaded module, and whether the tenant runs it now.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleEntry {
    #[serde(flatten)]
    pub module: ModuleInfo,
    pub active: bool,
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

    /// Checks, compiles and stores a module; it runs nothing until activated.
    pub async fn upload_module(&self, tenant_id: Uuid, bytes: Vec<u8>) -> Result<ModuleInfo, EconomyError> {
        Ok(self.rules.upload(tenant_id, bytes).await?)
    }

    /// The tenant's uploaded modules, marking the one it runs.
    pub async fn modules(&self, tenant_id: Uuid) -> Result<Vec<ModuleEntry>, EconomyError> {
        let active = self.rules.for_tenant(tenant_id).await?.module.sha256.clone();
        let modules = self.control.modules(tenant_id).await?;
        Ok(modules.into_iter().map(|module| ModuleEntry { active: module.sha256 == active, module }).collect())
    }

    /// Swaps the tenant's rules to a module it uploaded; requests already
    /// running finish on the module they began with.
    pub async fn activate_module(&self, tenant_id: Uuid, sha256: &str) -> Result<Applied<ModuleEntry>, EconomyError> {
        let module = self.rules.activate(tenant_id, Some(sha256)).await?;
        let module = module.ok_or_else(|| EconomyError::internal("an activated module has no record"))?;
        Ok(self.applied(tenant_id, ModuleEntry { module, active: true }).await)
    }

    /// Back to the built-in rules; returns their hash.
    pub async fn deactivate_module(&self, tenant_id: Uuid) -> Result<Applied<String>, EconomyError> {
        self.rules.activate(tenant_id, None).await?;
        Ok(self.applied(tenant_id, self.rules.runtime().default_module().sha256.clone()).await)
    }
}
