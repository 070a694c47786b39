//! What a guest did in its transaction, and the host's re-check of it before
//! commit (the rules of `economy_core::check`). A module decides prices,
//! caps and eligibility; what a purchase moves is fixed by the catalog. So a
//! buggy or hostile module cannot mint or destroy currency: a purchase must
//! debit exactly its total in its currency and grant exactly the (expanded)
//! item; a consume moves no money.

use crate::catalog::rules_item;
use crate::storage::CatalogItem;
use economy_core::check;
use std::collections::HashMap;
use uuid::Uuid;

/// Effects and reads of one call.
#[derive(Debug, Default)]
pub struct Journal {
    /// `(currency, amount)` debits, in order.
    pub debits: Vec<(String, i64)>,
    /// `(currency, amount)` credits, in order.
    pub credits: Vec<(String, i64)>,
    /// `(item, quantity)` grants, in order.
    pub grants: Vec<(Uuid, i64)>,
    /// Every catalog item the guest read, by id.
    pub items: HashMap<Uuid, CatalogItem>,
}

/// What the host asked for.
pub struct PurchaseCheck<'a> {
    pub item_id: Uuid,
    pub currency_code: &'a str,
    pub quantity: u64,
}

impl Journal {
    /// What the guest credited in `currency_code`, in all.
    pub fn credited(&self, currency_code: &str) -> i64 {
        self.credits.iter().filter(|(code, _)| code == currency_code).map(|(_, amount)| amount).sum()
    }

    /// Checks a purchase the guest reported as `(unit_price, total,
    /// balance_after)` with the rules every embedder applies
    /// ([`economy_core::check`]). The error says what was wrong, for the log.
    pub fn check_purchase(
        &self,
        asked: &PurchaseCheck<'_>,
        unit_price: i64,
        total: i64,
        balance_after: i64,
    ) -> Result<(), String> {
        let item = self.items.get(&asked.item_id).ok_or("the purchased item was never read")?;
        let by_key: HashMap<&str, &CatalogItem> = self.items.values().map(|item| (item.key.as_str(), item)).collect();
        let purchase = check::Purchase {
            item: &rules_item(item),
            currency_code: asked.currency_code,
            quantity: asked.quantity,
            unit_price,
            total,
            balance_after,
        };
        check::purchase(&purchase, &self.moved(), &mut |key| by_key.get(key).map(|item| rules_item(item)))
    }

    /// Checks a consume: items only, no money.
    pub fn check_consume(&self) -> Result<(), String> {
        check::consume(&self.moved())
    }

    fn moved(&self) -> check::Moved {
        check::Moved {
            debits: self.debits.clone(),
            credits: self.credits.clone(),
            grants: self.grants.iter().map(|(item, quantity)| (item.to_string(), *quantity)).collect(),
        }
    }
}
