//! Storage: every SQL statement of the product lives behind the [`Storage`]
//! (pool-level) and [`Tx`] (one request's transaction) traits, so the
//! embedded backend and per-tenant databases can slot in beside PostgreSQL.
//! Nothing here knows about HTTP or wasm; rule checks (caps, balances,
//! quantities) are enforced atomically by the statements themselves.

mod postgres;

pub use postgres::{MIGRATOR, PgSettings, PgStorage};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// The most of one item a stack may hold (10^15): far from overflow even
/// after the largest grant a purchase can make is added.
pub const MAX_STACK_QUANTITY: i64 = 1_000_000_000_000_000;

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
    /// An optimistic transaction could not vouch for what it did: a balance
    /// it read changed before its commit, or the request needed more than
    /// its one guarded statement covers. Nothing was written.
    #[error("the optimistic transaction must run again under locks")]
    Stale,
}

pub type StorageResult<T> = Result<T, StorageError>;

/// What an API key allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Client,
    Server,
    Admin,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Client, KeyKind::Server, KeyKind::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Admin => "admin",
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug)]
pub struct ApiKeyRecord {
    pub tenant_id: Uuid,
    pub kind: KeyKind,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub identity: String,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

/// A regenerating currency: `amount` every `period_seconds`, up to `max`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a recharge: an object with amount, period_seconds and max")]
pub struct Recharge {
    pub amount: i64,
    pub period_seconds: i64,
    pub max: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Currency {
    pub code: String,
    pub name: String,
    pub initial_balance: i64,
    pub max_balance: Option<i64>,
    pub recharge: Option<Recharge>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewCurrency {
    pub code: String,
    pub name: String,
    pub initial_balance: i64,
    pub max_balance: Option<i64>,
    pub recharge: Option<Recharge>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Consumable,
    Durable,
    Bundle,
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consumable => "consumable",
            Self::Durable => "durable",
            Self::Bundle => "bundle",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "consumable" => Self::Consumable,
            "bundle" => Self::Bundle,
            _ => Self::Durable,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a price: an object with currency_code and amount")]
pub struct Price {
    pub currency_code: String,
    pub amount: i64,
}

/// One entry of a bundle's contents: an item or a currency amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields, expecting = "a bundle content: {item_key, quantity} or {currency_code, amount}")]
pub enum Content {
    Item { item_key: String, quantity: u64 },
    Currency { currency_code: String, amount: i64 },
}

#[derive(Clone, Debug, Serialize)]
pub struct CatalogItem {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub icon_url: Option<String>,
    pub item_type: ItemType,
    pub category: Option<String>,
    pub display_properties: Value,
    pub prices: Vec<Price>,
    pub contents: Vec<Content>,
    pub duration_seconds: Option<i64>,
    /// Sold only through a store listing: a purchase must name the store.
    pub store_only: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewItem {
    pub key: String,
    pub name: String,
    pub icon_url: Option<String>,
    pub item_type: ItemType,
    pub category: Option<String>,
    pub display_properties: Value,
    pub prices: Vec<Price>,
    pub contents: Vec<Content>,
    pub duration_seconds: Option<i64>,
    pub store_only: bool,
}

fn purchasable_by_default() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a listing: an object with item_key, and optionally override_prices, max_purchases_per_user and purchasable"
)]
pub struct Listing {
    pub item_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_prices: Option<Vec<Price>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_purchases_per_user: Option<u64>,
    #[serde(default = "purchasable_by_default")]
    pub purchasable: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Store {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub listings: Vec<Listing>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A listing found for a purchase, with the store it belongs to.
#[derive(Clone, Debug)]
pub struct StoreListing {
    pub store_id: Uuid,
    pub store_key: String,
    pub listing: Listing,
}

#[derive(Clone, Debug, Serialize)]
pub struct WalletEntry {
    pub currency_code: String,
    pub balance: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recharge: Option<Recharge>,
    /// When the next recharge lands, for a regenerating balance below its max.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_recharge_at: Option<DateTime<Utc>>,
}

/// The catalog fields shown with an inventory stack (Amba's `catalog_items`).
#[derive(Clone, Debug, Serialize)]
pub struct ItemSummary {
    pub key: String,
    pub name: String,
    pub icon_url: Option<String>,
    pub item_type: ItemType,
    pub category: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InventoryEntry {
    pub app_user_id: Uuid,
    pub catalog_item_id: Uuid,
    pub collection_id: String,
    pub stack_id: String,
    pub quantity: i64,
    pub acquired_via: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub catalog_items: ItemSummary,
}

/// Why a balance changed; stored in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerReason {
    Purchase,
    Grant,
    Consume,
    Recharge,
    Refund,
    Admin,
}

impl LedgerReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Grant => "grant",
            Self::Consume => "consume",
            Self::Recharge => "recharge",
            Self::Refund => "refund",
            Self::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub currency_code: String,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: String,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which ledger entries to list: newest first, before `cursor` if given.
#[derive(Clone, Debug)]
pub struct LedgerQuery {
    pub currency_code: Option<String>,
    pub limit: i64,
    pub cursor: Option<Uuid>,
}

/// Why a balance change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalletRefusal {
    UnknownCurrency,
    InsufficientBalance,
    MaxBalanceExceeded,
}

/// Why an inventory change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryRefusal {
    UnknownItem,
    InsufficientQuantity,
}

/// A grant of an item into the user's default stack.
#[derive(Clone, Debug)]
pub struct NewGrant {
    pub item_id: Uuid,
    pub quantity: i64,
    pub acquired_via: String,
    pub duration_seconds: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stack {
    pub catalog_item_id: Uuid,
    pub collection_id: String,
    pub stack_id: String,
    pub quantity: i64,
    pub acquired_via: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A response stored with its idempotency key.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Value,
}

/// A committed request's idempotency key: what it was, what it answered.
#[derive(Clone, Debug)]
pub struct IdempotencyRecord {
    pub request_hash: Vec<u8>,
    pub response: StoredResponse,
}

/// Where a request's idempotency record lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// On the purchase row.
    Purchase,
    /// In the records of grants and consumes.
    Request,
}

/// How recording a purchase ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Done,
    /// Another request with the same idempotency key committed first.
    KeyTaken,
    /// A grant named an item the tenant's catalog does not have.
    UnknownItem,
}

/// A completed purchase, recorded with the response it returned.
#[derive(Clone, Debug)]
pub struct PurchaseRecord {
    pub id: Uuid,
    pub item_id: Uuid,
    pub store_id: Option<Uuid>,
    pub quantity: i64,
    pub currency_code: String,
    pub unit_price: i64,
    pub total: i64,
    pub idempotency_key: Option<String>,
    /// What a retry must match to be the same request (with a key only).
    pub request_hash: Vec<u8>,
}

/// An uploaded rules module.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleInfo {
    pub sha256: String,
    pub size: i32,
    pub created_at: DateTime<Utc>,
}

/// The operator's per-tenant overrides of the sandbox limits; `None` keeps
/// the host's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with optionally fuel, deadline_ms, memory_bytes and max_import_calls"
)]
pub struct LimitOverrides {
    pub fuel: Option<i64>,
    pub deadline_ms: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub max_import_calls: Option<i32>,
}

/// A tenant's own settings, written by its admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with optionally custom_id_login")]
pub struct TenantSettings {
    /// Whether players may sign in with a custom id and the client key.
    #[serde(default = "enabled")]
    pub custom_id_login: bool,
}

fn enabled() -> bool {
    true
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self { custom_id_login: true }
    }
}

/// Which rules a tenant runs, under which limits and settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantRules {
    /// `None`: the built-in `economy-core`.
    pub active_sha256: Option<String>,
    pub limits: LimitOverrides,
    pub settings: TenantSettings,
    /// Moves on every write to the tenant's currencies, items, stores,
    /// active module, limits or settings: one version names one state.
    pub config_version: i64,
}

/// Approves a catalog write given the tenant's items as they are; the error
/// says why not, for the admin.
pub type CatalogCheck<'a> = dyn Fn(&[CatalogItem]) -> Result<(), String> + Send + Sync + 'a;

/// Pool-level storage: tenants, keys, sessions, the catalog, and reads.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Whether the database answers.
    async fn ping(&self) -> StorageResult<()>;

    /// Creates a tenant with its three keys (given as hashes).
    async fn create_tenant(&self, slug: &str, name: &str, keys: &[(KeyKind, [u8; 32])]) -> StorageResult<Tenant>;
    async fn find_api_key(&self, key_hash: &[u8; 32]) -> StorageResult<Option<ApiKeyRecord>>;

    async fn put_currency(&self, tenant_id: Uuid, currency: &NewCurrency) -> StorageResult<Currency>;
    async fn currencies(&self, tenant_id: Uuid) -> StorageResult<Vec<Currency>>;
    /// Writes an item (upsert by key) if `check`, given the tenant's items
    /// as they are, approves; catalog writes of one tenant take turns, so
    /// two concurrent writes are never both checked against the old catalog.
    async fn put_item(
        &self,
        tenant_id: Uuid,
        item: &NewItem,
        check: &CatalogCheck<'_>,
    ) -> StorageResult<Result<CatalogItem, String>>;
    async fn items(&self, tenant_id: Uuid) -> StorageResult<Vec<CatalogItem>>;
    async fn item_by_key(&self, tenant_id: Uuid, key: &str) -> StorageResult<Option<CatalogItem>>;
    async fn put_store(&self, tenant_id: Uuid, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store>;
    async fn store_by_key(&self, tenant_id: Uuid, key: &str) -> StorageResult<Option<Store>>;
    async fn stores(&self, tenant_id: Uuid) -> StorageResult<Vec<Store>>;

    /// Finds the user, creating it (with its initial balances) if new.
    async fn find_or_create_user(&self, tenant_id: Uuid, identity: &str) -> StorageResult<User>;
    async fn find_user(&self, tenant_id: Uuid, identity: &str) -> StorageResult<Option<User>>;
    /// The player a custom id names (given as its hash): the one the server
    /// linked it to, or the one its first login created (whose identity is
    /// its own id). Never a player found by identity.
    async fn custom_id_user(&self, tenant_id: Uuid, custom_id_hash: &[u8; 32]) -> StorageResult<User>;
    /// Links a custom id to `user`; false, changing nothing, if the custom id
    /// already names another player.
    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool>;
    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()>;
    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>>;

    /// The user's balances, regenerating ones (`recharging`) settled first.
    async fn wallet(&self, user: &User, recharging: &[String]) -> StorageResult<Vec<WalletEntry>>;
    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>>;
    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>>;
    /// The committed request of `kind` that used `key` for this user, if any.
    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>>;

    /// Stores a module's bytes (once per tenant and hash).
    async fn put_module(&self, tenant_id: Uuid, sha256: &str, bytes: &[u8]) -> StorageResult<ModuleInfo>;
    async fn modules(&self, tenant_id: Uuid) -> StorageResult<Vec<ModuleInfo>>;
    /// The tenant's module with this hash, if the tenant uploaded it.
    async fn module_info(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<ModuleInfo>>;
    async fn module_bytes(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<Vec<u8>>>;
    /// Activates a module the tenant uploaded (`None`: back to the built-in
    /// rules); false, with nothing written, if the tenant has no such module.
    async fn set_active_module(&self, tenant_id: Uuid, sha256: Option<&str>) -> StorageResult<bool>;
    /// The rules of each tenant found among `tenant_ids`.
    async fn tenant_rules(&self, tenant_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, TenantRules)>>;
    /// Sets the tenant's settings.
    async fn set_settings(&self, tenant_id: Uuid, settings: &TenantSettings) -> StorageResult<()>;
    /// Sets the tenant's limit overrides; false if there is no such tenant.
    async fn set_limits(&self, tenant_id: Uuid, limits: &LimitOverrides) -> StorageResult<bool>;
    /// A compiled artifact of a module for an engine. Artifacts are shared
    /// by every tenant that uploaded the same bytes: ask only after checking
    /// that the tenant has the module.
    async fn artifact(&self, sha256: &str, engine_hash: &str) -> StorageResult<Option<Vec<u8>>>;
    async fn put_artifact(&self, sha256: &str, engine_hash: &str, artifact: &[u8]) -> StorageResult<()>;

    /// Opens a transaction for one tenant and one user.
    async fn begin(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>>;
    /// Opens an optimistic transaction for a purchase: it holds no
    /// connection while the rules run, answers balance reads with the
    /// balance this host last saw committed, and commits in one statement
    /// (shared with the other purchases waiting to commit) guarded on that
    /// balance being unchanged. It covers one currency, one debit and the
    /// purchase record; anything else, and a guard that fails, ends in
    /// [`StorageError::Stale`] with nothing written, and the caller runs the
    /// request again in a [`Storage::begin`] transaction.
    async fn begin_optimistic(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>>;
}

/// Whom a transaction acts for, and what it must know about the tenant.
#[derive(Clone, Debug)]
pub struct TxScope {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The module recorded with every ledger entry, purchase and consume of
    /// the transaction (none for the server's own grants).
    pub module_sha256: Option<String>,
    /// The tenant's regenerating currencies: their balances are settled (what
    /// accrued up to the moment of the read or change is credited, with a
    /// `recharge` ledger entry) before they are read or changed.
    pub recharging: Arc<[String]>,
}

/// One request's transaction, scoped to one tenant and one user. Dropping it
/// without `commit` rolls it back, but callers roll back explicitly.
#[async_trait]
pub trait Tx: Send {
    /// The user's balance (the initial balance if never touched), settled
    /// if it regenerates, or none for an unknown currency.
    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>>;
    /// Adds `delta` (positive or negative, not zero) to the balance, settled
    /// first if it regenerates, under a row lock and appends a ledger entry;
    /// returns the balance after.
    async fn change_balance(
        &mut self,
        code: &str,
        delta: i64,
        reason: LedgerReason,
        reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>>;

    /// Quantity held in unexpired default stacks.
    async fn quantity(&mut self, item_id: Uuid) -> StorageResult<i64>;
    /// Applies all grants (item ids distinct, quantities ≥ 1) or none.
    async fn grant_items(&mut self, grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>>;
    /// Takes `quantity` from the default stack under a row lock.
    async fn consume(&mut self, item_id: Uuid, quantity: i64) -> StorageResult<Result<i64, InventoryRefusal>>;

    async fn item_purchases(&mut self, item_id: Uuid) -> StorageResult<i64>;
    async fn listing_purchases(&mut self, store_id: Uuid, item_id: Uuid) -> StorageResult<i64>;
    /// Adds `quantity` to the listing's count if it stays within `cap`.
    async fn claim_listing(
        &mut self,
        store_id: Uuid,
        item_id: Uuid,
        quantity: i64,
        cap: i64,
    ) -> StorageResult<Option<i64>>;

    /// Completes a purchase in one statement: applies `grants` (as
    /// `grant_items`), records the purchase and, with an idempotency key,
    /// stores the response to replay. If the key is already taken (a
    /// concurrent claimer waits for this transaction to end), nothing must be
    /// committed: the caller rolls back and replays the earlier response.
    async fn record_purchase(
        &mut self,
        purchase: &PurchaseRecord,
        grants: &[NewGrant],
        response: &StoredResponse,
    ) -> StorageResult<Recorded>;
    /// Claims `key` for a grant or consume with its answer; false (nothing
    /// written) if a request that committed first holds it. A concurrent
    /// claimer waits for this transaction to end.
    async fn record_request(
        &mut self,
        key: &str,
        request_hash: &[u8],
        response: &StoredResponse,
    ) -> StorageResult<bool>;
    /// Records a consume and the quantity it left.
    async fn record_consume(&mut self, id: Uuid, item_id: Uuid, quantity: i64, remaining: i64) -> StorageResult<()>;

    async fn commit(self: Box<Self>) -> StorageResult<()>;
    async fn rollback(self: Box<Self>) -> StorageResult<()>;

    /// Whether an answer reached in this transaction may rest on a stale
    /// read, so a refusal or failure must be confirmed by a locking one.
    /// Only an optimistic transaction that read a balance is unconfirmed.
    fn unconfirmed(&self) -> bool {
        false
    }
}
