//! A component built against `economy:plugin@0.1.0`, the contract's first
//! version, as a module uploaded before 0.1.1 was: every durable item is
//! free. It reads the item, grants what is bought and answers the balance,
//! so it passes the host's re-check. Hosts of any later 0.1 version must
//! accept and run it.

#![cfg(target_arch = "wasm32")]
#![expect(unsafe_code, reason = "wit-bindgen generates the unsafe canonical-ABI glue")]

wit_bindgen::generate!({
    inline: r#"
        package economy:plugin@0.1.0;

        interface types {
            record request-context { tenant-id: string, user-id: string, request-id: string, now-ms: s64 }
            enum item-type { consumable, durable, bundle }
            record price { currency-code: string, amount: s64 }
            record item-quantity { item-key: string, quantity: u64 }
            variant content { item(item-quantity), currency(price) }
            record item {
                id: string, key: string, name: string, item-type: item-type, category: option<string>,
                prices: list<price>, contents: list<content>, duration-seconds: option<u64>, display-properties: string,
            }
            variant rule-error {
                not-found(string), no-price, not-purchasable, max-purchases-reached, insufficient-balance,
                max-balance-exceeded(string), not-consumable, insufficient-quantity, invalid(string),
            }
        }

        interface catalog {
            use types.{item};
            item-by-id: func(id: string) -> option<item>;
        }

        interface wallet {
            balance: func(currency-code: string) -> option<s64>;
        }

        interface inventory {
            record grant { item-id: string, quantity: u64, acquired-via: string, duration-seconds: option<u64> }
            enum inventory-error { unknown-item, invalid-quantity, insufficient-quantity }
            grant-items: func(grants: list<grant>) -> result<_, inventory-error>;
        }

        interface rules {
            use types.{request-context, rule-error};
            record purchase-request { item-id: string, currency-code: string, store-id: option<string>, quantity: u64 }
            record purchase-outcome { unit-price: s64, total: s64, balance-after: s64 }
            record price-quote { unit-price: s64, total: s64, purchasable: bool }
            purchase: func(ctx: request-context, request: purchase-request) -> result<purchase-outcome, rule-error>;
            quote: func(ctx: request-context, request: purchase-request) -> result<price-quote, rule-error>;
            consume: func(ctx: request-context, item-id: string, quantity: u64) -> result<u64, rule-error>;
        }

        world legacy {
            import catalog;
            import wallet;
            import inventory;
            export rules;
        }
    "#,
});

use economy::plugin::catalog;
use economy::plugin::inventory::{self, Grant};
use economy::plugin::types::{RequestContext, RuleError};
use economy::plugin::wallet;
use exports::economy::plugin::rules::{Guest, PriceQuote, PurchaseOutcome, PurchaseRequest};

struct Free;

impl Guest for Free {
    fn purchase(_ctx: RequestContext, request: PurchaseRequest) -> Result<PurchaseOutcome, RuleError> {
        let item = catalog::item_by_id(&request.item_id).ok_or(RuleError::NotFound("item".into()))?;
        if item.item_type != economy::plugin::types::ItemType::Durable {
            return Err(RuleError::Invalid("only durable items are free".into()));
        }
        let balance = wallet::balance(&request.currency_code).ok_or(RuleError::NotFound("currency".into()))?;
        let grant = Grant {
            item_id: request.item_id,
            quantity: request.quantity,
            acquired_via: "store_purchase".into(),
            duration_seconds: None,
        };
        inventory::grant_items(&[grant]).map_err(|_| RuleError::NotFound("item".into()))?;
        Ok(PurchaseOutcome { unit_price: 0, total: 0, balance_after: balance })
    }

    fn quote(_ctx: RequestContext, _request: PurchaseRequest) -> Result<PriceQuote, RuleError> {
        Ok(PriceQuote { unit_price: 0, total: 0, purchasable: true })
    }

    fn consume(_ctx: RequestContext, _item_id: String, _quantity: u64) -> Result<u64, RuleError> {
        Err(RuleError::NotConsumable)
    }
}

export!(Free);
