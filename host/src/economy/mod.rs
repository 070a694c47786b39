//! The economy service: what every front end calls (the native HTTP API
//! today; compatibility routes and a console next). It owns the rules of
//! the economy: the purchase protocol (the rules run on a snapshot of the
//! player, the host re-checks what they did, everything commits at once or
//! runs again on fresh reads, idempotent replay),
//! consumes, grants, store quotes, catalog writes and their checks, players
//! and sessions. It knows nothing of HTTP: it takes validated inputs and
//! answers with its own types and [`EconomyError`]. Storage owns the SQL.

mod catalog;
mod collections;
mod consume;
mod error;
mod grant;
mod idempotency;
mod limits;
mod modules;
mod players;
mod purchase;
mod queue;
mod shop;
mod store;
mod tenants;
mod versions;

pub use catalog::Applied;
pub use collections::{Collection, Holding, StackChange, StackChanged};
pub use consume::ConsumeReceipt;
pub use error::EconomyError;
pub use grant::{Grant, Granted};
pub use modules::{DryRun, DryRunAnswer, DryRunOutcome, Quote, Sample};
pub use players::{CustomLogin, MAX_SESSION_TTL, OpenedSession};
pub use purchase::{PurchaseReceipt, PurchaseRequest};
pub use shop::ShopItem;
pub use store::{ListingView, StorePage};
pub use tenants::{CreatedTenant, ModuleEntry, UploadedModule};

use crate::commit::{Remembered, Snapshot, Source};
use crate::domain::Identity;
use crate::rules::{Rules, TenantContext};
pub use crate::runtime::Placement;
use crate::storage::{
    BundlePurchase, CatalogItem, ControlStore, InventoryEntry, LedgerEntry, LedgerQuery, PaidPrice, Tenant,
    TenantStore, TenantStores, User, WalletEntry,
};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long readiness waits for a tenant's own database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// What a request answered: a fresh result, or the replay of the first
/// request with the same idempotency key.
#[derive(Clone, Debug)]
pub struct Outcome<T> {
    pub value: T,
    pub replayed: bool,
}

pub struct Economy {
    control: Arc<dyn ControlStore>,
    stores: Arc<dyn TenantStores>,
    rules: Arc<Rules>,
    /// Takes each player's writes one at a time on this host.
    user_queue: queue::UserQueue,
    /// The balances this host committed: what a first attempt decides on.
    remembered: Arc<Remembered>,
    /// The tenants' request rate limits, counted on this host.
    limiter: limits::RateLimiter,
    /// Reads collection versions in groups.
    versions: versions::VersionReads,
    /// Watches the tenants' modules: failures, and new ones on probation.
    watch: modules::ModuleWatch,
    settings: EconomySettings,
}

/// How the service treats every tenant.
#[derive(Clone, Copy, Debug)]
pub struct EconomySettings {
    /// The session lifetime when none is asked for.
    pub session_ttl: Duration,
    /// Module uploads one tenant may make per minute (each costs a
    /// compilation), in bursts of half of them.
    pub uploads_per_minute: u32,
}

impl Economy {
    pub fn new(
        control: Arc<dyn ControlStore>,
        stores: Arc<dyn TenantStores>,
        rules: Arc<Rules>,
        settings: EconomySettings,
    ) -> Self {
        Self {
            control,
            stores,
            rules,
            user_queue: queue::UserQueue::default(),
            remembered: Arc::default(),
            limiter: Default::default(),
            versions: Default::default(),
            watch: Default::default(),
            settings,
        }
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// Whether this host can serve: the control plane must answer; the
    /// tenants whose own database does not (within a second, or failed to
    /// connect less than a second ago) are returned.
    pub async fn readiness(&self) -> Result<Vec<Tenant>, EconomyError> {
        self.control.ping().await?;
        let tenants = self.control.tenants_with_databases().await?;
        let checks = tenants.into_iter().map(|tenant| async move {
            let answered =
                tokio::time::timeout(READINESS_TIMEOUT, async { self.stores.tenant(tenant.id).await?.ping().await })
                    .await;
            (!matches!(answered, Ok(Ok(())))).then_some(tenant)
        });
        Ok(futures::future::join_all(checks).await.into_iter().flatten().collect())
    }

    /// The store of `tenant_id`'s data.
    async fn tenant_store(&self, tenant_id: Uuid) -> Result<Arc<dyn TenantStore>, EconomyError> {
        Ok(self.stores.tenant(tenant_id).await?)
    }

    /// A snapshot of `user` for one attempt at a request, whose changes are
    /// recorded as made by the tenant's module (`by_module`) or by the
    /// server. A first attempt may trust the balances this host remembers.
    fn snapshot(
        &self,
        store: &Arc<dyn TenantStore>,
        tenant: &TenantContext,
        user: &User,
        by_module: bool,
        trust_remembered: bool,
    ) -> Snapshot {
        let source =
            Source { store: store.clone(), catalog: tenant.catalog.clone(), remembered: self.remembered.clone() };
        let module = by_module.then(|| tenant.module.sha256.clone());
        Snapshot::new(source, user.id, Utc::now(), module, trust_remembered)
    }

    /// The player's balances, regenerating ones settled first: what
    /// accrued is written with a `recharge` ledger entry. A settlement that
    /// meets another change of the player's is not needed: that change
    /// settled them.
    pub async fn wallet(&self, user: &User) -> Result<Vec<WalletEntry>, EconomyError> {
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let store = self.tenant_store(user.tenant_id).await?;
        if !tenant.catalog.recharging().is_empty() {
            let mut snapshot = self.snapshot(&store, &tenant, user, false, false);
            for code in tenant.catalog.recharging().iter() {
                snapshot.balance(code).await?;
            }
            if snapshot.changes_anything() {
                snapshot.commit().await?;
            }
        }
        Ok(store.wallet(user).await?)
    }

    /// The player's purchases of bundles, oldest first, each with its
    /// bundle as the catalog has it now (a bundle since deleted is left out).
    pub async fn bundle_purchases(&self, user: &User) -> Result<Vec<(BundlePurchase, CatalogItem)>, EconomyError> {
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let purchases = self.tenant_store(user.tenant_id).await?.bundle_purchases(user).await?;
        Ok(purchases
            .into_iter()
            .filter_map(|purchase| {
                let item = tenant.catalog.item_by_id(purchase.item_id)?.clone();
                Some((purchase, item))
            })
            .collect())
    }

    /// For each item the player bought, the unit price of its latest purchase.
    pub async fn paid_prices(&self, user: &User) -> Result<Vec<PaidPrice>, EconomyError> {
        Ok(self.tenant_store(user.tenant_id).await?.paid_prices(user).await?)
    }

    /// The player's unexpired, non-empty stacks.
    pub async fn inventory(&self, user: &User) -> Result<Vec<InventoryEntry>, EconomyError> {
        Ok(self.tenant_store(user.tenant_id).await?.inventory(user).await?)
    }

    /// A page of the player's ledger, newest first.
    pub async fn ledger(
        &self,
        tenant_id: Uuid,
        identity: &Identity,
        query: &LedgerQuery,
    ) -> Result<Vec<LedgerEntry>, EconomyError> {
        let user = self.player(tenant_id, identity).await?;
        Ok(self.tenant_store(tenant_id).await?.ledger(&user, query).await?)
    }
}
