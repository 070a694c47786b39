//! What an embedder checks after a rules call returns, before it commits.
//!
//! A rules module decides prices, caps and eligibility; what a purchase
//! moves is fixed by the catalog. So an embedder keeps a journal of the
//! balance changes and grants the guest made through the imports and
//! commits only if they are exactly what the catalog says, whatever the
//! module: a buggy or hostile module then cannot mint or destroy currency.
//! These are the rules of that re-check, shared by every embedder.

use crate::{Item, bundle};
use std::collections::HashMap;

/// What a call moved through the imports, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// `(currency, amount)` debits.
    pub debits: Vec<(String, i64)>,
    /// `(currency, amount)` credits.
    pub credits: Vec<(String, i64)>,
    /// `(item id, quantity)` grants.
    pub grants: Vec<(String, i64)>,
}

/// A purchase as the embedder asked for it, and what the guest answered.
pub struct Purchase<'a> {
    pub item: &'a Item,
    pub currency_code: &'a str,
    pub quantity: u64,
    pub unit_price: i64,
    pub total: i64,
    pub balance_after: i64,
}

/// Checks a purchase: a unit price and a balance of at least zero, a total
/// of exactly unit price × quantity, exactly one debit of the total in the
/// purchase's currency (none for a free purchase), and grants and credits
/// that sum to exactly the item's expansion (a bundle's contents, nested
/// bundles expanded, times the quantity). `lookup` finds a content item by
/// key. The error says what was wrong, for the embedder's log.
pub fn purchase(
    asked: &Purchase<'_>,
    moved: &Moved,
    lookup: &mut impl FnMut(&str) -> Option<Item>,
) -> Result<(), String> {
    let Purchase { item, currency_code, quantity, unit_price, total, balance_after } = *asked;
    if unit_price < 0 || balance_after < 0 {
        return Err(format!("negative unit price {unit_price} or balance {balance_after}"));
    }
    if i64::try_from(quantity).ok().and_then(|q| unit_price.checked_mul(q)) != Some(total) {
        return Err(format!("total {total} is not {unit_price} × {quantity}"));
    }
    let expected_debits = if total > 0 { vec![(currency_code.to_owned(), total)] } else { vec![] };
    if moved.debits != expected_debits {
        return Err(format!("debited {:?}, expected {expected_debits:?}", moved.debits));
    }
    let expansion =
        bundle::expand(item, quantity, lookup).map_err(|error| format!("the catalog does not expand: {error:?}"))?;
    let expected_grants = expansion
        .items
        .iter()
        .map(|grant| {
            let quantity = i64::try_from(grant.quantity).map_err(|_| "a granted quantity out of range")?;
            Ok((grant.item_id.clone(), quantity))
        })
        .collect::<Result<HashMap<String, i64>, String>>()?;
    if sum_by(&moved.grants)? != expected_grants {
        return Err(format!("granted {:?}, the catalog grants {expected_grants:?}", moved.grants));
    }
    let expected_credits: HashMap<String, i64> = expansion.currencies.into_iter().collect();
    if sum_by(&moved.credits)? != expected_credits {
        return Err(format!("credited {:?}, the catalog credits {expected_credits:?}", moved.credits));
    }
    Ok(())
}

/// Checks a consume: it moves items only, never money, and grants nothing.
pub fn consume(moved: &Moved) -> Result<(), String> {
    if moved.debits.is_empty() && moved.credits.is_empty() && moved.grants.is_empty() {
        Ok(())
    } else {
        Err(format!("a consume moved {:?} {:?} {:?}", moved.debits, moved.credits, moved.grants))
    }
}

/// Sums amounts by key; amounts come from the guest, so a sum that would
/// overflow is an error, never a wrapped value.
fn sum_by(entries: &[(String, i64)]) -> Result<HashMap<String, i64>, String> {
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
    use crate::ItemType;

    fn potion() -> Item {
        Item {
            id: "potion-id".into(),
            key: "potion".into(),
            item_type: ItemType::Consumable,
            prices: vec![],
            contents: vec![],
            duration_seconds: None,
            display_properties: String::new(),
        }
    }

    #[test]
    fn sums_that_overflow_are_refused_not_wrapped() {
        // i64::MAX + i64::MAX + 2 wraps to 0 in a release build.
        let entries = [("a".to_owned(), i64::MAX), ("a".to_owned(), i64::MAX), ("a".to_owned(), 2)];
        assert!(sum_by(&entries).is_err());
        assert_eq!(sum_by(&[("a".to_owned(), 2), ("a".to_owned(), 3)]).unwrap()["a"], 5);
    }

    #[test]
    fn a_purchase_moves_exactly_its_total_and_its_item() {
        let item = potion();
        let asked =
            Purchase { item: &item, currency_code: "gems", quantity: 2, unit_price: 5, total: 10, balance_after: 90 };
        let honest = Moved {
            debits: vec![("gems".into(), 10)],
            credits: vec![],
            grants: vec![("potion-id".into(), 1), ("potion-id".into(), 1)],
        };
        assert_eq!(purchase(&asked, &honest, &mut |_| None), Ok(()));
        let skim = Moved { debits: vec![("gems".into(), 11)], ..honest.clone() };
        assert!(purchase(&asked, &skim, &mut |_| None).is_err());
        let mint = Moved { credits: vec![("gems".into(), 1)], ..honest.clone() };
        assert!(purchase(&asked, &mint, &mut |_| None).is_err());
        let extra = Moved { grants: vec![("potion-id".into(), 3)], ..honest.clone() };
        assert!(purchase(&asked, &extra, &mut |_| None).is_err());
        let wrong_total = Purchase { total: 9, ..asked };
        assert!(purchase(&wrong_total, &honest, &mut |_| None).is_err());
        assert!(consume(&Moved::default()).is_ok() && consume(&honest).is_err());
    }
}
