//! The component shell: converts between the WIT bindings and the plain
//! types of this crate, and implements [`Env`] with the storage imports.
//! No decision is made here.

wit_bindgen::generate!({
    world: "economy",
    path: "wit",
    pub_export_macro: true,
    default_bindings_module: "economy_core::component",
    // Modules get the bindings' runtime through this crate: they need no
    // `wit-bindgen` dependency of their own.
    runtime_path: "economy_core::component::wit_bindgen::rt",
});

#[doc(hidden)]
pub use wit_bindgen;

use crate::{
    Content, Context, Env, Grant, InventoryError, Item, ItemType, Listing, Price, PricePolicy, RuleError, WalletError,
    purchase,
};
use economy::plugin::{catalog, history, inventory, player, settings, types, wallet};
use exports::economy::plugin::rules::{PriceQuote, PurchaseOutcome, PurchaseRequest};

/// Exports the economy world with `purchase`, `quote` and `consume` as this
/// crate implements them, priced by the given [`PricePolicy`]:
/// `economy_core::export_rules!(MyPricing);` is a whole rules module.
#[macro_export]
macro_rules! export_rules {
    ($policy:ty) => {
        // The generated export glue is unsafe canonical-ABI code; it is
        // wit-bindgen's, not the module author's.
        #[allow(unsafe_code, reason = "wit-bindgen's export glue")]
        mod economy_rules_export {
            use super::*;
            use $crate::component::economy::plugin::types::{RequestContext, RuleError};
            use $crate::component::exports::economy::plugin::rules::{Guest, PriceQuote, PurchaseOutcome, PurchaseRequest};

            struct EconomyRules;

            impl Guest for EconomyRules {
                fn purchase(ctx: RequestContext, request: PurchaseRequest) -> Result<PurchaseOutcome, RuleError> {
                    $crate::component::purchase::<$policy>(ctx, request)
                }

                fn quote(ctx: RequestContext, request: PurchaseRequest) -> Result<PriceQuote, RuleError> {
                    $crate::component::quote::<$policy>(ctx, request)
                }

                fn consume(ctx: RequestContext, item_id: String, quantity: u64) -> Result<u64, RuleError> {
                    $crate::component::consume(ctx, item_id, quantity)
                }
            }

            $crate::component::export!(EconomyRules with_types_in $crate::component);
        }
    };
}

/// The `purchase` export, priced by `P`.
pub fn purchase<P: PricePolicy>(
    ctx: types::RequestContext,
    request: PurchaseRequest,
) -> Result<PurchaseOutcome, types::RuleError> {
    let outcome = purchase::purchase::<P>(&mut Imports, &context(ctx), &request.into()).map_err(to_wit)?;
    Ok(PurchaseOutcome { unit_price: outcome.unit_price, total: outcome.total, balance_after: outcome.balance_after })
}

/// The `quote` export, priced by `P`.
pub fn quote<P: PricePolicy>(
    ctx: types::RequestContext,
    request: PurchaseRequest,
) -> Result<PriceQuote, types::RuleError> {
    let quote = purchase::quote::<P>(&mut Imports, &context(ctx), &request.into()).map_err(to_wit)?;
    Ok(PriceQuote { unit_price: quote.unit_price, total: quote.total, purchasable: quote.purchasable })
}

/// The `consume` export.
pub fn consume(_ctx: types::RequestContext, item_id: String, quantity: u64) -> Result<u64, types::RuleError> {
    crate::consume::consume(&mut Imports, &item_id, quantity).map_err(to_wit)
}

fn context(ctx: types::RequestContext) -> Context {
    Context { user_id: ctx.user_id, request_id: ctx.request_id, now_ms: ctx.now_ms }
}

impl From<PurchaseRequest> for purchase::Request {
    fn from(r: PurchaseRequest) -> Self {
        Self { item_id: r.item_id, currency_code: r.currency_code, store_id: r.store_id, quantity: r.quantity }
    }
}

/// [`Env`] over the storage imports.
pub struct Imports;

impl Env for Imports {
    fn item_by_id(&mut self, id: &str) -> Option<Item> {
        catalog::item_by_id(id).map(from_wit_item)
    }

    fn item_by_key(&mut self, key: &str) -> Option<Item> {
        catalog::item_by_key(key).map(from_wit_item)
    }

    fn listing(&mut self, store_id: &str, item_id: &str) -> Option<Listing> {
        catalog::store_listing(store_id, item_id).map(|l| Listing {
            override_prices: l.override_prices.into_iter().map(from_wit_price).collect(),
            max_purchases_per_user: l.max_purchases_per_user,
            purchasable: l.purchasable,
        })
    }

    fn balance(&mut self, currency_code: &str) -> Option<i64> {
        wallet::balance(currency_code)
    }

    fn debit(&mut self, currency_code: &str, amount: i64, reference: &str) -> Result<i64, WalletError> {
        wallet::debit(currency_code, amount, types::LedgerReason::Purchase, reference).map_err(from_wallet_error)
    }

    fn credit(&mut self, currency_code: &str, amount: i64, reference: &str) -> Result<i64, WalletError> {
        wallet::credit(currency_code, amount, types::LedgerReason::Purchase, reference).map_err(from_wallet_error)
    }

    fn grant_items(&mut self, grants: &[Grant]) -> Result<(), InventoryError> {
        let grants: Vec<_> = grants
            .iter()
            .map(|g| inventory::Grant {
                item_id: g.item_id.clone(),
                quantity: g.quantity,
                acquired_via: "store_purchase".into(),
                duration_seconds: g.duration_seconds,
            })
            .collect();
        inventory::grant_items(&grants).map_err(from_inventory_error)
    }

    fn consume(&mut self, item_id: &str, quantity: u64) -> Result<u64, InventoryError> {
        inventory::consume(item_id, quantity).map_err(from_inventory_error)
    }

    fn held(&mut self, item_id: &str) -> u64 {
        inventory::quantity(item_id)
    }

    fn item_purchases(&mut self, item_id: &str) -> u64 {
        history::item_purchases(item_id)
    }

    fn listing_purchases(&mut self, store_id: &str, item_id: &str) -> u64 {
        history::listing_purchases(store_id, item_id)
    }

    fn claim_listing(&mut self, store_id: &str, item_id: &str, quantity: u64, cap: u64) -> Option<u64> {
        history::claim_listing(store_id, item_id, quantity, cap)
    }

    fn identity(&mut self) -> String {
        player::identity()
    }

    fn attribute(&mut self, name: &str) -> Option<String> {
        player::attribute(name)
    }

    fn setting(&mut self, name: &str) -> Option<String> {
        settings::setting(name)
    }
}

fn from_wit_price(p: types::Price) -> Price {
    Price { currency_code: p.currency_code, amount: p.amount }
}

fn from_wit_item(item: types::Item) -> Item {
    Item {
        id: item.id,
        key: item.key,
        item_type: match item.item_type {
            types::ItemType::Consumable => ItemType::Consumable,
            types::ItemType::Durable => ItemType::Durable,
            types::ItemType::Bundle => ItemType::Bundle,
        },
        prices: item.prices.into_iter().map(from_wit_price).collect(),
        contents: item
            .contents
            .into_iter()
            .map(|content| match content {
                types::Content::Item(q) => Content::Item { item_key: q.item_key, quantity: q.quantity },
                types::Content::Currency(p) => Content::Currency(from_wit_price(p)),
            })
            .collect(),
        duration_seconds: item.duration_seconds,
        display_properties: item.display_properties,
    }
}

fn from_wallet_error(error: wallet::WalletError) -> WalletError {
    match error {
        wallet::WalletError::UnknownCurrency => WalletError::UnknownCurrency,
        wallet::WalletError::InvalidAmount => WalletError::InvalidAmount,
        wallet::WalletError::InsufficientBalance => WalletError::InsufficientBalance,
        wallet::WalletError::MaxBalanceExceeded => WalletError::MaxBalanceExceeded,
    }
}

fn from_inventory_error(error: inventory::InventoryError) -> InventoryError {
    match error {
        inventory::InventoryError::UnknownItem => InventoryError::UnknownItem,
        inventory::InventoryError::InvalidQuantity => InventoryError::InvalidQuantity,
        inventory::InventoryError::InsufficientQuantity => InventoryError::InsufficientQuantity,
    }
}

fn to_wit(error: RuleError) -> types::RuleError {
    match error {
        RuleError::NotFound(what) => types::RuleError::NotFound(what),
        RuleError::NoPrice => types::RuleError::NoPrice,
        RuleError::NotPurchasable => types::RuleError::NotPurchasable,
        RuleError::MaxPurchasesReached => types::RuleError::MaxPurchasesReached,
        RuleError::InsufficientBalance => types::RuleError::InsufficientBalance,
        RuleError::MaxBalanceExceeded(code) => types::RuleError::MaxBalanceExceeded(code),
        RuleError::NotConsumable => types::RuleError::NotConsumable,
        RuleError::InsufficientQuantity => types::RuleError::InsufficientQuantity,
        RuleError::Invalid(message) => types::RuleError::Invalid(message),
    }
}
