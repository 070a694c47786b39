//! Exports `economy:plugin/rules` with every function named as the world
//! names it, but `purchase` returns `result<u64, rule-error>` instead of the
//! world's `purchase-outcome` record. Its imports are a subset of the
//! world's (none), so only the export check can refuse it.

#![cfg(target_arch = "wasm32")]
#![expect(unsafe_code, reason = "wit-bindgen generates the unsafe canonical-ABI glue")]

wit_bindgen::generate!({
    inline: r#"
        package economy:plugin@0.1.0;

        interface types {
            record request-context { tenant-id: string, user-id: string, request-id: string, now-ms: s64 }
            variant rule-error {
                not-found(string), no-price, not-purchasable, max-purchases-reached, insufficient-balance,
                max-balance-exceeded(string), not-consumable, insufficient-quantity, invalid(string),
            }
        }

        interface rules {
            use types.{request-context, rule-error};
            record purchase-request { item-id: string, currency-code: string, store-id: option<string>, quantity: u64 }
            record price-quote { unit-price: s64, total: s64, purchasable: bool }
            purchase: func(ctx: request-context, request: purchase-request) -> result<u64, rule-error>;
            quote: func(ctx: request-context, request: purchase-request) -> result<price-quote, rule-error>;
            consume: func(ctx: request-context, item-id: string, quantity: u64) -> result<u64, rule-error>;
        }

        world mistyped { export rules; }
    "#,
});

use economy::plugin::types::{RequestContext, RuleError};
use exports::economy::plugin::rules::{Guest, PriceQuote, PurchaseRequest};

struct Mistyped;

impl Guest for Mistyped {
    fn purchase(_ctx: RequestContext, _request: PurchaseRequest) -> Result<u64, RuleError> {
        Ok(1)
    }

    fn quote(_ctx: RequestContext, _request: PurchaseRequest) -> Result<PriceQuote, RuleError> {
        Ok(PriceQuote { unit_price: 1, total: 1, purchasable: true })
    }

    fn consume(_ctx: RequestContext, _item_id: String, _quantity: u64) -> Result<u64, RuleError> {
        Ok(0)
    }
}

export!(Mistyped);
