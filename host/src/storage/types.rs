//! The data storage reads and writes: plain types shared by the stores,
//! the economy service and the front ends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What an API key allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    pub(super) fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "a recharge: an object with amount, period_seconds and max")]
pub struct Recharge {
    pub amount: i64,
    pub period_seconds: i64,
    pub max: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

    pub(super) fn parse(text: &str) -> Self {
        match text {
            "consumable" => Self::Consumable,
            "bundle" => Self::Bundle,
            _ => Self::Durable,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "a price: an object with currency_code and amount")]
pub struct Price {
    pub currency_code: String,
    pub amount: i64,
}

/// One entry of a bundle's contents: an item or a currency amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged, deny_unknown_fields, expecting = "a bundle content: {item_key, quantity} or {currency_code, amount}")]
pub enum Content {
    Item { item_key: String, quantity: u64 },
    Currency { currency_code: String, amount: i64 },
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ItemSummary {
    pub key: String,
    pub name: String,
    pub icon_url: Option<String>,
    pub item_type: ItemType,
    pub category: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InventoryEntry {
    pub app_user_id: Uuid,
    pub catalog_item_id: Uuid,
    pub collection_id: String,
    pub stack_id: String,
    pub quantity: i64,
    pub acquired_via: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The stack's own display properties, given when a request created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_properties: Option<Value>,
    /// The bundle purchase that created the stack, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_purchase_id: Option<Uuid>,
    pub catalog_items: ItemSummary,
}

impl InventoryEntry {
    /// The player's stack, shown with its item's catalog fields.
    pub fn new(app_user_id: Uuid, stack: Stack, catalog_items: ItemSummary) -> Self {
        Self {
            app_user_id,
            catalog_item_id: stack.catalog_item_id,
            collection_id: stack.collection_id,
            stack_id: stack.stack_id,
            quantity: stack.quantity,
            acquired_via: stack.acquired_via,
            acquired_at: stack.acquired_at,
            expires_at: stack.expires_at,
            display_properties: None,
            bundle_purchase_id: None,
            catalog_items,
        }
    }
}

/// A purchase of a bundle: what legacy inventories show as the bundle's
/// own instance, the parent of the stacks it created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundlePurchase {
    pub id: Uuid,
    pub item_id: Uuid,
    pub currency_code: String,
    pub unit_price: i64,
    pub created_at: DateTime<Utc>,
}

/// One thing a collection holds, as stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Held {
    Stack { item_id: Uuid, stack_id: String, quantity: i64, expires_at: Option<DateTime<Utc>> },
    Balance { currency_code: String, balance: i64 },
}

impl Held {
    /// Whether both are the same stack (item and stack id) or the same
    /// balance, whatever they hold.
    pub fn same_holding(&self, other: &Held) -> bool {
        match (self, other) {
            (Held::Stack { item_id, stack_id, .. }, Held::Stack { item_id: other_item, stack_id: other_stack, .. }) => {
                item_id == other_item && stack_id == other_stack
            }
            (Held::Balance { currency_code, .. }, Held::Balance { currency_code: other, .. }) => currency_code == other,
            _ => false,
        }
    }
}

/// What the player paid for one unit of an item at its latest purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidPrice {
    pub item_id: Uuid,
    pub currency_code: String,
    pub unit_price: i64,
}

/// Why a balance changed; stored in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub currency_code: String,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: String,
    pub reference: Option<String>,
    /// The rules module that made the change (none for the server's and
    /// admin's own grants).
    pub module_sha256: Option<String>,
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

/// A stack of a player's inventory, by where it is: a collection, and a
/// stack in it (both `default` unless a request names others).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StackKey {
    pub collection_id: String,
    pub stack_id: String,
}

impl Default for StackKey {
    fn default() -> Self {
        Self { collection_id: DEFAULT_STACK.into(), stack_id: DEFAULT_STACK.into() }
    }
}

/// The collection and the stack a request names when it names none.
pub const DEFAULT_STACK: &str = "default";

/// A grant of an item into one of the user's stacks.
#[derive(Clone, Debug)]
pub struct NewGrant {
    pub item_id: Uuid,
    pub quantity: i64,
    pub acquired_via: String,
    pub duration_seconds: Option<i64>,
    pub stack: StackKey,
    /// Given to the stack when this grant creates it (an existing stack
    /// keeps its own).
    pub display_properties: Option<Value>,
    /// The purchase of the bundle this grant is part of, recorded on the
    /// stack the grant creates.
    pub bundle_purchase_id: Option<Uuid>,
}

impl NewGrant {
    /// A grant into the default stack.
    pub fn new(item_id: Uuid, quantity: i64, acquired_via: impl Into<String>, duration_seconds: Option<i64>) -> Self {
        Self {
            item_id,
            quantity,
            acquired_via: acquired_via.into(),
            duration_seconds,
            stack: StackKey::default(),
            display_properties: None,
            bundle_purchase_id: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
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

/// How many modules, and how many bytes of them, a tenant may keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleQuota {
    pub modules: i64,
    pub bytes: i64,
}

/// How storing an upload ended.
#[derive(Clone, Debug)]
pub enum Uploaded {
    Stored(ModuleInfo),
    /// It would take the tenant past its quota: nothing was stored.
    OverQuota,
}

/// How deleting a module ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// Gone; `last` if no tenant keeps the same bytes any more (its
    /// compiled artifacts went with it).
    Deleted { last: bool },
    /// It is the tenant's active module: nothing was deleted.
    Active,
    /// The tenant has no such module.
    Unknown,
}

/// An uploaded rules module.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleInfo {
    pub sha256: String,
    pub size: i32,
    pub created_at: DateTime<Utc>,
}

/// Something that happened to a tenant's rules module that its admin
/// should see: a call it failed, or its automatic rollback.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ModuleEvent {
    pub id: Uuid,
    pub kind: ModuleEventKind,
    /// The module it happened to.
    pub module_sha256: String,
    /// The call it happened in (`purchase`, `quote`, `consume`); none for a
    /// rollback.
    pub operation: Option<String>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModuleEventKind {
    /// A call trapped, ran out of a limit, or returned an outcome the host
    /// refused.
    Failure,
    /// A newly activated module failed most of its first calls and the
    /// module active before it was put back.
    RolledBack,
}

impl ModuleEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::RolledBack => "rolled_back",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        [Self::Failure, Self::RolledBack].into_iter().find(|known| known.as_str() == kind)
    }
}

/// The operator's per-tenant overrides of the sandbox limits; `None` keeps
/// the host's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with optionally custom_id_login, module_settings and rate_limits")]
pub struct TenantSettings {
    /// Whether players may sign in with a custom id and the client key.
    #[serde(default = "enabled")]
    pub custom_id_login: bool,
    /// What the tenant's rules module reads as its settings (`setting(name)`
    /// of `economy:plugin/settings`): a JSON object, e.g.
    /// `{"vip_percent_off": 30}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub module_settings: Attributes,
    /// How many requests the tenant's players and keys may make, on each
    /// host: left out, the defaults; `null`, no limits (for load tests).
    #[serde(default = "RateLimits::defaults")]
    pub rate_limits: Option<RateLimits>,
}

/// A tenant's request rate limits, counted on each host. A player's writes
/// (purchases, consumes, grants, stack changes) may come in a burst of a
/// quarter of a minute's worth, then at the rate; a key's requests (every
/// request made with it, and for PlayFab's client routes and logins, every
/// request of the title's players) in a burst of a second's worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with player_writes_per_minute and key_requests_per_second")]
pub struct RateLimits {
    /// Writes one player may make per minute (default 120).
    pub player_writes_per_minute: u32,
    /// Requests one API key may make per second (default 2,000).
    pub key_requests_per_second: u32,
}

impl RateLimits {
    /// What a tenant ships with: far above what a person playing does, far
    /// below what a script hammering the API does.
    pub const DEFAULT: Self = Self { player_writes_per_minute: 120, key_requests_per_second: 2_000 };

    fn defaults() -> Option<Self> {
        Some(Self::DEFAULT)
    }
}

/// A JSON object of named values: a player's attributes, a tenant's module
/// settings.
pub type Attributes = serde_json::Map<String, Value>;

fn enabled() -> bool {
    true
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self { custom_id_login: true, module_settings: Attributes::new(), rate_limits: RateLimits::defaults() }
    }
}

/// Where a tenant's data lives: a database URL. It may hold a password, so
/// it is never shown: neither `Debug` nor `Display` print it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(…)")
    }
}

/// What the control plane knows of a tenant: which rules it runs, under
/// which limits and settings, and where its data lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantConfig {
    /// `None`: the built-in `economy-core`.
    pub active_sha256: Option<String>,
    pub limits: LimitOverrides,
    pub settings: TenantSettings,
    /// Moves on every write to the tenant's active module, limits or
    /// settings: one version names one state.
    pub config_version: i64,
    /// The tenant's own database; `None`: the host's default database.
    pub database: Option<DatabaseUrl>,
}
