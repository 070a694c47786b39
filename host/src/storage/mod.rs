//! Storage, by role. The [`ControlStore`] holds the control plane (tenants,
//! their keys, configuration and rules modules) in the host's default
//! database. A [`TenantStore`] holds one tenant's data (catalog, players,
//! sessions, balances, inventories, ledger, purchases), in the default
//! database or in the tenant's own; [`TenantStores`] hands out the store of
//! a tenant, wherever it lives, as Spin's key-value `StoreManager` hands out
//! a store by name. Every SQL statement of the product lives behind these
//! traits, implemented by each
//! backend: PostgreSQL for production, SQLite embedded for a single box.
//! [`Stores`] opens each database by the backend its URL names. Nothing here knows about HTTP, wasm or the rules
//! of the economy; checks the data must never break (caps, balances,
//! quantities) are enforced atomically by the statements themselves.

mod guarded;
mod journal;
mod postgres;
pub mod recharge;
mod shared;
mod sqlite;
mod stores;
mod types;

pub use journal::*;
pub use stores::{Backend, PoolSettings, StoreSettings, Stores};
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// The most of one item a stack may hold (10^15): far from overflow even
/// after the largest grant a purchase can make is added.
pub const MAX_STACK_QUANTITY: i64 = 1_000_000_000_000_000;
/// How many of a tenant's module events are kept.
pub const MODULE_EVENTS_KEPT: i64 = 100;

/// Why storage did not do what was asked. Backend-neutral: each backend
/// sorts its own errors into these, in one place.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint refused the write; the payload names the thing.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A grant would take a stack past [`MAX_STACK_QUANTITY`].
    #[error("a stack would hold more than {MAX_STACK_QUANTITY}")]
    StackLimit,
    /// A lock or statement outlasted its timeout, or the database broke a
    /// deadlock: nothing was written, and the same request may succeed if
    /// tried again.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// The database cannot be reached: refused or lost connections, no
    /// connection free in time.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database reported: a bug, logged and never shown.
    #[error("{0}")]
    Backend(String),
    /// No tenant has this id: a caller named one that does not exist.
    #[error("no such tenant")]
    UnknownTenant,
}

pub type StorageResult<T> = Result<T, StorageError>;

impl From<sqlx::Error> for StorageError {
    /// Each backend sorts its own database's errors.
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                sqlite::classify(&error)
            }
            _ => postgres::classify(&error),
        }
    }
}

/// Approves a catalog write given the tenant's items as they are; the error
/// says why not, for the admin.
pub type CatalogCheck<'a> = dyn Fn(&[CatalogItem]) -> Result<(), String> + Send + Sync + 'a;

/// The control plane: tenants, their keys and configuration, and their
/// rules modules.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Whether the database answers.
    async fn ping(&self) -> StorageResult<()>;
    /// Whether any tenant exists.
    async fn has_tenants(&self) -> StorageResult<bool>;

    /// Creates a tenant with its three keys (given as hashes), its data kept
    /// in `database` (`None`: the host's default database).
    async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        keys: &[(KeyKind, [u8; 32])],
        database: Option<&DatabaseUrl>,
    ) -> StorageResult<Tenant>;
    async fn find_api_key(&self, key_hash: &[u8; 32]) -> StorageResult<Option<ApiKeyRecord>>;
    /// The configuration of each tenant found among `tenant_ids`.
    async fn tenant_configs(&self, tenant_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, TenantConfig)>>;
    /// Every tenant that keeps its data in a database of its own.
    async fn tenants_with_databases(&self) -> StorageResult<Vec<Tenant>>;
    /// Sets the tenant's settings.
    async fn set_settings(&self, tenant_id: Uuid, settings: &TenantSettings) -> StorageResult<()>;
    /// Sets the tenant's limit overrides; false if there is no such tenant.
    async fn set_limits(&self, tenant_id: Uuid, limits: &LimitOverrides) -> StorageResult<bool>;

    /// Stores a module's bytes (once per tenant and hash), unless it would
    /// take the tenant past `quota`: a tenant's uploads take turns, so two
    /// never both pass it.
    async fn put_module(
        &self,
        tenant_id: Uuid,
        sha256: &str,
        bytes: &[u8],
        quota: &ModuleQuota,
    ) -> StorageResult<Uploaded>;
    /// Deletes a module the tenant uploaded, unless it is the tenant's
    /// active one; its compiled artifacts go when no tenant keeps the bytes.
    async fn delete_module(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Deleted>;
    async fn modules(&self, tenant_id: Uuid) -> StorageResult<Vec<ModuleInfo>>;
    /// The tenant's module with this hash, if the tenant uploaded it.
    async fn module_info(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<ModuleInfo>>;
    async fn module_bytes(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<Vec<u8>>>;
    /// Activates a module the tenant uploaded (`None`: back to the built-in
    /// rules); false, with nothing written, if the tenant has no such module.
    async fn set_active_module(&self, tenant_id: Uuid, sha256: Option<&str>) -> StorageResult<bool>;
    /// Puts module `to` back in place of `from` (`None`: the built-in
    /// rules), only if `from` is still the active one; false otherwise.
    async fn replace_active_module(&self, tenant_id: Uuid, from: &str, to: Option<&str>) -> StorageResult<bool>;
    /// Records an event of a tenant's module; only the latest
    /// [`MODULE_EVENTS_KEPT`] of a tenant are kept.
    async fn record_module_event(&self, tenant_id: Uuid, event: &ModuleEvent) -> StorageResult<()>;
    /// The tenant's latest module events, newest first.
    async fn module_events(&self, tenant_id: Uuid, limit: i64) -> StorageResult<Vec<ModuleEvent>>;
    /// A compiled artifact of a module for an engine. Artifacts are shared
    /// by every tenant that uploaded the same bytes: ask only after checking
    /// that the tenant has the module.
    async fn artifact(&self, sha256: &str, engine_hash: &str) -> StorageResult<Option<Vec<u8>>>;
    async fn put_artifact(&self, sha256: &str, engine_hash: &str, artifact: &[u8]) -> StorageResult<()>;
}

/// Hands out each tenant's store, wherever its data lives.
#[async_trait]
pub trait TenantStores: Send + Sync {
    /// The store of `tenant_id`; `Unavailable` while its database cannot be
    /// reached (a database is connected, and migrated, on first use).
    async fn tenant(&self, tenant_id: Uuid) -> StorageResult<Arc<dyn TenantStore>>;
    /// The catalog version of each of `tenant_ids`, asking each database
    /// once; a tenant whose database fails has its error instead.
    async fn catalog_versions(&self, tenant_ids: &[Uuid]) -> Vec<(Uuid, StorageResult<i64>)>;
    /// Closes every database: what is queued commits first.
    async fn close(&self);
}

/// Refuses a player of another tenant: a caller's mistake, never written.
/// Every tenant store checks a player it is handed before it touches
/// anything of the player's.
pub(crate) fn own(tenant_id: Uuid, user: &User) -> StorageResult<()> {
    match user.tenant_id == tenant_id {
        true => Ok(()),
        false => Err(StorageError::Backend(format!("player {} is not of tenant {tenant_id}", user.id))),
    }
}

/// What `find` finds, else what `create` creates (and whether it did); if
/// another request created it first, what `find` finds then.
async fn find_or_create<F, C>(find: impl Fn() -> F, create: impl FnOnce() -> C) -> StorageResult<(User, bool)>
where
    F: Future<Output = StorageResult<Option<User>>>,
    C: Future<Output = StorageResult<Option<User>>>,
{
    if let Some(user) = find().await? {
        return Ok((user, false));
    }
    if let Some(user) = create().await? {
        return Ok((user, true));
    }
    let found = find().await?;
    Ok((found.ok_or_else(|| StorageError::Backend("a player vanished as it was created".into()))?, false))
}

/// One tenant's data. Every call is scoped to the tenant the store was
/// handed out for. Its catalog, players and reads are traits of their own,
/// as each backend keeps them in files of their own.
#[async_trait]
pub trait TenantStore: CatalogStore + PlayerStore + ReadStore {
    /// Whether the tenant's database answers.
    async fn ping(&self) -> StorageResult<()>;

    /// Writes everything one request changed for one player in one
    /// transaction, only if every balance, stack and listing count it
    /// changed is still as it was read and its idempotency key is unused:
    /// [`Commit::Done`], or [`Commit::Stale`] with nothing written. The
    /// transaction holds its rows for its own statements only; it never
    /// waits on anything else of the request's.
    async fn commit(&self, journal: Journal) -> StorageResult<Commit>;

    /// Whether committing `journal` takes a connection of the database's
    /// pool for its transaction, rather than joining a committer's batch
    /// (which writes on connections of its own).
    fn commits_on_the_pool(&self, journal: &Journal) -> bool;
}

/// A tenant's catalog: currencies, items and stores.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Moves on every write to the tenant's currencies, items or stores.
    async fn catalog_version(&self) -> StorageResult<i64>;
    async fn put_currency(&self, currency: &NewCurrency) -> StorageResult<Currency>;
    async fn currencies(&self) -> StorageResult<Vec<Currency>>;
    /// Writes an item (upsert by key) if `check`, given the tenant's items
    /// as they are, approves; catalog writes of one tenant take turns, so
    /// two concurrent writes are never both checked against the old catalog.
    async fn put_item(&self, item: &NewItem, check: &CatalogCheck<'_>) -> StorageResult<Result<CatalogItem, String>>;
    async fn items(&self) -> StorageResult<Vec<CatalogItem>>;
    async fn item_by_key(&self, key: &str) -> StorageResult<Option<CatalogItem>>;
    async fn put_store(&self, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store>;
    async fn store_by_key(&self, key: &str) -> StorageResult<Option<Store>>;
    async fn stores(&self) -> StorageResult<Vec<Store>>;
}

/// A tenant's players: identities, custom-id logins and sessions.
#[async_trait]
pub trait PlayerStore: Send + Sync {
    async fn find_user(&self, identity: &str) -> StorageResult<Option<User>>;
    /// The player of this tenant with the id `user_id` (`app_user_id`).
    async fn find_user_by_id(&self, user_id: Uuid) -> StorageResult<Option<User>>;
    /// Creates the player `identity` with its initial balances; none, with
    /// nothing written, if the identity is taken.
    async fn create_user(&self, identity: &str) -> StorageResult<Option<User>>;
    /// Finds the player, creating it (with its initial balances) if new.
    async fn find_or_create_user(&self, identity: &str) -> StorageResult<User> {
        let found = find_or_create(|| self.find_user(identity), || self.create_user(identity)).await?;
        Ok(found.0)
    }
    /// The player a custom id names (given as its hash): the one the server
    /// linked it to, or the one its first login created (whose identity is
    /// its own id). Never a player found by identity.
    async fn find_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>>;
    /// Creates the player of a custom id that names none (its identity is
    /// its own id); none if the custom id names a player already.
    async fn create_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>>;
    /// The player a custom id names, created if there is none, and whether
    /// this call created it.
    async fn custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<(User, bool)> {
        find_or_create(|| self.find_custom_id_user(custom_id_hash), || self.create_custom_id_user(custom_id_hash)).await
    }
    /// Links a custom id to `user`; false, changing nothing, if the custom id
    /// already names another player.
    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool>;
    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()>;
    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>>;
    /// The attributes the game server set on the player `user_id` of this
    /// tenant (empty if none, or no such player).
    async fn attributes(&self, user_id: Uuid) -> StorageResult<Attributes>;
    /// Replaces the player's attributes.
    async fn set_attributes(&self, user: &User, attributes: &Attributes) -> StorageResult<()>;
}

/// What a tenant's players hold and did, read outside any transaction.
#[async_trait]
pub trait ReadStore: Send + Sync {
    /// The player's balances, as stored (a regenerating one as last settled).
    async fn wallet(&self, user: &User) -> StorageResult<Vec<WalletEntry>>;
    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>>;
    /// For each item the player bought, the unit price of its latest purchase.
    async fn paid_prices(&self, user: &User) -> StorageResult<Vec<PaidPrice>>;
    /// The player's purchases of bundles, oldest first.
    async fn bundle_purchases(&self, user: &User) -> StorageResult<Vec<BundlePurchase>>;
    /// What each `(player, collection)` holds, as stored: the collection's
    /// unexpired, non-empty stacks and, for the default collection, the
    /// stored balances; in one round trip, each in no particular order.
    async fn collection_states(&self, wanted: &[(User, String)]) -> StorageResult<Vec<Vec<Held>>>;
    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>>;
    /// The committed request of `kind` that used `key` for this player, if any.
    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>>;

    /// The player `user_id`'s balance in currency `code` for a snapshot,
    /// with the currency's terms; none if the tenant has no such currency.
    async fn balance_read(&self, user_id: Uuid, code: &str) -> StorageResult<Option<BalanceRead>>;
    /// Every stack of the item the player has, expired and emptied ones too.
    async fn stacks(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<Vec<StoredStack>>;
    /// How many of the item the player bought in all (the sum of quantities).
    async fn item_purchases(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<i64>;
    /// How many the player bought through the listing (none: never).
    async fn listing_purchases(&self, user_id: Uuid, store_id: Uuid, item_id: Uuid) -> StorageResult<Option<i64>>;
}
