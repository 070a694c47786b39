//! Plain data the rules decide on: mirrors of the WIT types, free of bindings.

/// What kind of thing a catalog item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemType {
    Consumable,
    Durable,
    Bundle,
}

/// An amount of one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub currency_code: String,
    pub amount: i64,
}

/// One entry of a bundle's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Item { item_key: String, quantity: u64 },
    Currency(Price),
}

/// A catalog item, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub key: String,
    pub item_type: ItemType,
    pub prices: Vec<Price>,
    pub contents: Vec<Content>,
    pub duration_seconds: Option<u64>,
    /// The item's `display_properties` JSON object, as text: where custom
    /// rules keep per-item settings (sale windows, price tiers).
    pub display_properties: String,
}

/// An item's listing in a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub override_prices: Vec<Price>,
    pub max_purchases_per_user: Option<u64>,
    pub purchasable: bool,
}

/// A grant of an item, as the inventory import takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub item_id: String,
    pub quantity: u64,
    pub duration_seconds: Option<u64>,
}

/// Why a rules operation failed; one case per API error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    NotFound(String),
    NoPrice,
    NotPurchasable,
    MaxPurchasesReached,
    InsufficientBalance,
    MaxBalanceExceeded(String),
    NotConsumable,
    InsufficientQuantity,
    Invalid(String),
}

/// Why the wallet refused a balance change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalletError {
    UnknownCurrency,
    InvalidAmount,
    InsufficientBalance,
    MaxBalanceExceeded,
}

/// Why the inventory refused a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryError {
    UnknownItem,
    InvalidQuantity,
    InsufficientQuantity,
}

impl WalletError {
    /// The rule a wallet refusal breaks, for a change in `currency_code`.
    pub fn into_rule_error(self, currency_code: &str) -> RuleError {
        match self {
            Self::UnknownCurrency => RuleError::NotFound(format!("currency {currency_code}")),
            Self::InvalidAmount => RuleError::Invalid("amount out of range".into()),
            Self::InsufficientBalance => RuleError::InsufficientBalance,
            Self::MaxBalanceExceeded => RuleError::MaxBalanceExceeded(currency_code.into()),
        }
    }
}

impl From<InventoryError> for RuleError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::UnknownItem => RuleError::NotFound("item".into()),
            InventoryError::InvalidQuantity => RuleError::Invalid("quantity out of range".into()),
            InventoryError::InsufficientQuantity => RuleError::InsufficientQuantity,
        }
    }
}

/// What the host tells the rules about the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub user_id: String,
    /// The request id, written as the reference of every ledger entry.
    pub request_id: String,
    /// The request's time, milliseconds since the Unix epoch.
    pub now_ms: i64,
}

/// The price decision: the one rule custom modules usually replace. The
/// rest of a purchase (caps, debit, bundle grants) stays as `purchase` does it.
pub trait PricePolicy {
    /// The price of one `item` in `currency_code`, bought through `listing`
    /// if there is one. Must refuse a listing that is not `purchasable`.
    fn unit_price(
        env: &mut impl Env,
        ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError>;
}

/// The default policy: the store's override price, else the catalog price.
pub struct CatalogPrice;

impl PricePolicy for CatalogPrice {
    fn unit_price(
        _env: &mut impl Env,
        _ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError> {
        crate::pricing::unit_price(item, listing, currency_code)
    }
}

/// The storage a rules operation runs against: the WIT imports in the
/// component, an in-memory fake in the unit tests. Implemented by this
/// crate; new methods come with new minor versions of the contract.
pub trait Env {
    fn item_by_id(&mut self, id: &str) -> Option<Item>;
    fn item_by_key(&mut self, key: &str) -> Option<Item>;
    fn listing(&mut self, store_id: &str, item_id: &str) -> Option<Listing>;
    fn balance(&mut self, currency_code: &str) -> Option<i64>;
    fn debit(&mut self, currency_code: &str, amount: i64, reference: &str) -> Result<i64, WalletError>;
    fn credit(&mut self, currency_code: &str, amount: i64, reference: &str) -> Result<i64, WalletError>;
    fn grant_items(&mut self, grants: &[Grant]) -> Result<(), InventoryError>;
    fn consume(&mut self, item_id: &str, quantity: u64) -> Result<u64, InventoryError>;
    /// How many of the item the player holds (unexpired stacks, every
    /// collection).
    fn held(&mut self, item_id: &str) -> u64;
    /// How many of the item the player bought before this request.
    fn item_purchases(&mut self, item_id: &str) -> u64;
    /// How many the player bought through a store listing so far.
    fn listing_purchases(&mut self, store_id: &str, item_id: &str) -> u64;
    fn claim_listing(&mut self, store_id: &str, item_id: &str, quantity: u64, cap: u64) -> Option<u64>;
    /// The player's identity as the game names it (e.g. `vip-4821`), not
    /// the host's `user_id`.
    fn identity(&mut self) -> String;
    /// The player attribute `name` the game server set, as JSON text
    /// (`true`, `"gold"`, `3`), or none.
    fn attribute(&mut self, name: &str) -> Option<String>;
    /// The tenant-wide module setting `name` its admin set, as JSON text,
    /// or none.
    fn setting(&mut self, name: &str) -> Option<String>;
}
