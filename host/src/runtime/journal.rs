//! What a guest did in its transaction, and the host's re-check of it before
//! commit. A module decides prices, caps and eligibility; what a purchase
//! moves is fixed by the catalog. So a buggy or hostile module cannot mint
//! or destroy currency: a purchase must debit exactly its total in its
//! currency and grant exactly the (expanded) item; a consume moves no money.

use crate::catalog::rules_item;
use crate::storage::CatalogItem;
use economy_core::bundle;
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
    /// balance_after)`. The error says what was wrong, for the log.
    pub fn check_purchase(
        &self,
        asked: &PurchaseCheck<'_>,
        unit_price: i64,
        total: i64,
        balance_after: i64,
    ) -> Result<(), String> {
        if unit_price < 0 || balance_after < 0 {
            return Err(format!("negative unit price {unit_price} or balance {balance_after}"));
        }
        if i64::try_from(asked.quantity).ok().and_then(|q| unit_price.checked_mul(q)) != Some(total) {
            return Err(format!("total {total} is not {unit_price} × {}", asked.quantity));
        }
        let expected_debits = if total > 0 { vec![(asked.currency_code.to_owned(), total)] } else { vec![] };
        if self.debits != expected_debits {
            return Err(format!("debited {:?}, expected {expected_debits:?}", self.debits));
        }
        let item = self.items.get(&asked.item_id).ok_or("the purchased item was never read")?;
        let by_key: HashMap<&str, &CatalogItem> = self.items.values().map(|item| (item.key.as_str(), item)).collect();
        let expansion =
            bundle::expand(&rules_item(item), asked.quantity, &mut |key| by_key.get(key).map(|item| rules_item(item)))
                .map_err(|error| format!("the catalog does not expand: {error:?}"))?;
        let expected_grants = expansion
            .items
            .iter()
            .map(|grant| {
                let quantity = i64::try_from(grant.quantity).map_err(|_| "a granted quantity out of range")?;
                Ok((Uuid::parse_str(&grant.item_id).unwrap_or_default(), quantity))
            })
            .collect::<Result<HashMap<Uuid, i64>, String>>()?;
        if sum_by(&self.grants)? != expected_grants {
            return Err(format!("granted {:?}, the catalog grants {expected_grants:?}", self.grants));
        }
        let expected_credits: HashMap<String, i64> = expansion.currencies.into_iter().collect();
        if sum_by(&self.credits)? != expected_credits {
            return Err(format!("credited {:?}, the catalog credits {expected_credits:?}", self.credits));
        }
        Ok(())
    }

    /// Checks a consume: items only, no money.
    pub fn check_consume(&self) -> Result<(), String> {
        if self.debits.is_empty() && self.credits.is_empty() && self.grants.is_empty() {
            Ok(())
        } else {
            Err(format!("a consume moved {:?} {:?} {:?}", self.debits, self.credits, self.grants))
        }
    }
}

/// Sums amounts by key; amounts come from the guest, so a sum that would
/// overflow is an error, never a wrapped value.
fn sum_by<K: Clone + Eq + std::hash::Hash + std::fmt::Debug>(entries: &[(K, i64)]) -> Result<HashMap<K, i64>, String> {
    let mut sums = HashMap::new();
    for (key, amount) in entries {
        let sum = sums.entry(key.clone()).or_insert(0i64);
        *sum = sum.checked_add(*amount).ok_or_else(|| format!("the amounts of {key:?} overflow"))?;
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_that_overflow_are_refused_not_wrapped() {
        let item = Uuid::now_v7();
        // i64::MAX + i64::MAX + 2 wraps to 0 in a release build.
        let entries = [(item, i64::MAX), (item, i64::MAX), (item, 2)];
        assert!(sum_by(&entries).is_err());
        assert_eq!(sum_by(&[(item, 2), (item, 3)]).unwrap()[&item], 5);
    }
}
