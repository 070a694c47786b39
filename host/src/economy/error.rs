//! The economy service's one error type: every way a request can fail, in
//! the economy's terms. Front ends map it to their own shapes in one place
//! each (the native API in `http/error.rs`).

use crate::domain::ValidationError;
use crate::rules::ModuleError;
use crate::runtime::RuleError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum EconomyError {
    /// The request is malformed or out of range; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The thing named does not exist for this tenant (or belongs to another).
    #[error("{0} not found")]
    NotFound(String),
    /// No tenant has the id the caller named (a title id, a ticket's).
    #[error("tenant not found")]
    UnknownTenant,
    /// The tenant turned this way in off.
    #[error("{0}")]
    TurnedOff(&'static str),
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// No price for the item in that currency.
    #[error("the item has no price in this currency")]
    NoPrice,
    /// The listing is shown but not for sale, or the item is sold only
    /// through a store and no store was named.
    #[error("{0}")]
    NotPurchasable(&'static str),
    /// The purchase would pass the listing's per-user cap.
    #[error("the per-user purchase limit of this listing is reached")]
    MaxPurchasesReached,
    #[error("insufficient balance")]
    InsufficientBalance,
    /// A credit would pass the currency's `max_balance`.
    #[error("the balance of {0} would exceed its maximum")]
    MaxBalanceExceeded(String),
    /// A grant would take a stack past its maximum.
    #[error("the player's stack of an item would hold more than {}", crate::storage::MAX_STACK_QUANTITY)]
    MaxStackExceeded,
    #[error("the item is not consumable")]
    NotConsumable,
    #[error("the player does not hold enough of the item")]
    InsufficientQuantity,
    /// The rules priced the item otherwise than the caller expected.
    #[error("the item costs {0} each, not the price given")]
    PriceChanged(i64),
    /// The caller's version of the player's collection is not the current
    /// one: something changed it since the caller read it.
    #[error("the collection changed since its ETag was read")]
    CollectionChanged,
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// An upload that is not a component implementing the economy world.
    #[error("{0}")]
    InvalidModule(String),
    /// The tenant keeps as many of something as it may; the message says
    /// what, and how to make room.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The thing is in use and cannot be removed; the message says why.
    #[error("{0}")]
    InUse(String),
    /// The rules module trapped, ran out of a limit, or returned an outcome
    /// the host refused. Logged with the module's hash where it happened.
    #[error("the rules module failed")]
    ModuleFailed,
    /// A lock or statement waited past its timeout, the player's records
    /// kept changing, or the tenant's module calls are all in use; retry.
    #[error("busy: nothing was written; retry shortly")]
    Busy(String),
    /// Over the tenant's rate limit: retry after this long.
    #[error("too many requests; retry in {} ms", .0.as_millis())]
    RateLimited(std::time::Duration),
    /// The tenant's database cannot be reached.
    #[error("the tenant's database is unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl EconomyError {
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
}

impl From<ValidationError> for EconomyError {
    fn from(error: ValidationError) -> Self {
        Self::Invalid(error.0)
    }
}

impl From<StorageError> for EconomyError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Conflict(what) => Self::Conflict(what.into()),
            StorageError::StackLimit => Self::MaxStackExceeded,
            StorageError::Busy(cause) => Self::Busy(cause),
            StorageError::Unavailable(cause) => Self::Unavailable(cause),
            StorageError::UnknownTenant => Self::UnknownTenant,
            other @ StorageError::Backend(_) => Self::internal(other),
        }
    }
}

impl From<ModuleError> for EconomyError {
    fn from(error: ModuleError) -> Self {
        match error {
            ModuleError::Invalid(reason) => Self::InvalidModule(reason),
            ModuleError::Unknown(_) => Self::not_found("module"),
            ModuleError::Quota(message) => Self::QuotaExceeded(message),
            error @ ModuleError::Active(_) => Self::InUse(error.to_string()),
            ModuleError::Storage(error) => error.into(),
            error @ ModuleError::Host(_) => Self::internal(error),
        }
    }
}

impl From<RuleError> for EconomyError {
    fn from(error: RuleError) -> Self {
        match error {
            RuleError::NotFound(what) => Self::NotFound(what),
            RuleError::NoPrice => Self::NoPrice,
            RuleError::NotPurchasable => Self::NotPurchasable("this listing is not for sale"),
            RuleError::MaxPurchasesReached => Self::MaxPurchasesReached,
            RuleError::InsufficientBalance => Self::InsufficientBalance,
            RuleError::MaxBalanceExceeded(code) => Self::MaxBalanceExceeded(code),
            RuleError::NotConsumable => Self::NotConsumable,
            RuleError::InsufficientQuantity => Self::InsufficientQuantity,
            RuleError::Invalid(message) => Self::Invalid(message),
        }
    }
}
