//! Bundle expansion: what a purchase of `quantity` of an item grants.

use crate::{Content, Grant, Item, ItemType, RuleError};

/// How deep bundles may nest. The catalog refuses cycles when it is written;
/// this bound keeps a corrupted catalog from looping the guest.
pub const MAX_BUNDLE_DEPTH: usize = 8;

/// What a purchase grants, with equal items and currencies merged, in the
/// order they first appear.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    pub items: Vec<Grant>,
    /// `(currency_code, amount)` credits.
    pub currencies: Vec<(String, i64)>,
}

/// Expands `quantity` of `item`: a plain item grants itself; a bundle grants
/// its contents (recursively), each multiplied by `quantity`. `lookup` finds
/// a content item by key; an unknown key is `NotFound`.
pub fn expand(
    item: &Item,
    quantity: u64,
    lookup: &mut impl FnMut(&str) -> Option<Item>,
) -> Result<Expansion, RuleError> {
    let mut expansion = Expansion::default();
    add(item, quantity, lookup, &mut expansion, 0)?;
    Ok(expansion)
}

fn add(
    item: &Item,
    quantity: u64,
    lookup: &mut impl FnMut(&str) -> Option<Item>,
    expansion: &mut Expansion,
    depth: usize,
) -> Result<(), RuleError> {
    if item.item_type != ItemType::Bundle {
        return merge_item(expansion, item, quantity);
    }
    if depth >= MAX_BUNDLE_DEPTH {
        return Err(RuleError::Invalid(format!("bundles nest deeper than {MAX_BUNDLE_DEPTH}")));
    }
    for content in &item.contents {
        match content {
            Content::Item { item_key, quantity: each } => {
                let inner = lookup(item_key).ok_or_else(|| RuleError::NotFound(format!("item {item_key}")))?;
                add(&inner, multiply(*each, quantity)?, lookup, expansion, depth + 1)?;
            }
            Content::Currency(price) => {
                let each = u64::try_from(price.amount).map_err(|_| out_of_range())?;
                let amount = i64::try_from(multiply(each, quantity)?).map_err(|_| out_of_range())?;
                merge_currency(expansion, &price.currency_code, amount)?;
            }
        }
    }
    Ok(())
}

fn merge_item(expansion: &mut Expansion, item: &Item, quantity: u64) -> Result<(), RuleError> {
    match expansion.items.iter_mut().find(|grant| grant.item_id == item.id) {
        Some(grant) => grant.quantity = grant.quantity.checked_add(quantity).ok_or_else(out_of_range)?,
        None => {
            expansion.items.push(Grant { item_id: item.id.clone(), quantity, duration_seconds: item.duration_seconds })
        }
    }
    Ok(())
}

fn merge_currency(expansion: &mut Expansion, code: &str, amount: i64) -> Result<(), RuleError> {
    match expansion.currencies.iter_mut().find(|(existing, _)| existing == code) {
        Some((_, total)) => *total = total.checked_add(amount).ok_or_else(out_of_range)?,
        None => expansion.currencies.push((code.to_owned(), amount)),
    }
    Ok(())
}

fn multiply(a: u64, b: u64) -> Result<u64, RuleError> {
    a.checked_mul(b).ok_or_else(out_of_range)
}

fn out_of_range() -> RuleError {
    RuleError::Invalid("bundle quantities out of range".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Price;
    use std::collections::HashMap;

    fn item(key: &str, item_type: ItemType, contents: Vec<Content>) -> Item {
        Item {
            id: format!("id-{key}"),
            key: key.into(),
            item_type,
            prices: vec![],
            contents,
            duration_seconds: None,
            display_properties: "{}".into(),
        }
    }

    fn of(key: &str, quantity: u64) -> Content {
        Content::Item { item_key: key.into(), quantity }
    }

    fn gems(amount: i64) -> Content {
        Content::Currency(Price { currency_code: "gems".into(), amount })
    }

    fn catalog(items: Vec<Item>) -> HashMap<String, Item> {
        items.into_iter().map(|item| (item.key.clone(), item)).collect()
    }

    #[test]
    fn a_plain_item_grants_itself() {
        let potion = item("potion", ItemType::Consumable, vec![]);
        let expansion = expand(&potion, 3, &mut |_| None).unwrap();
        assert_eq!(expansion.items, vec![Grant { item_id: "id-potion".into(), quantity: 3, duration_seconds: None }]);
        assert!(expansion.currencies.is_empty());
    }

    #[test]
    fn nested_bundles_multiply_and_merge_their_contents() {
        let items = catalog(vec![
            item("potion", ItemType::Consumable, vec![]),
            item("small", ItemType::Bundle, vec![of("potion", 2), gems(10)]),
        ]);
        let big = item("big", ItemType::Bundle, vec![of("small", 3), of("potion", 1), gems(5)]);
        let expansion = expand(&big, 2, &mut |key| items.get(key).cloned()).unwrap();
        // 2 × (3 × 2 + 1) potions, 2 × (3 × 10 + 5) gems.
        assert_eq!(expansion.items, vec![Grant { item_id: "id-potion".into(), quantity: 14, duration_seconds: None }]);
        assert_eq!(expansion.currencies, vec![("gems".to_owned(), 70)]);
    }

    #[test]
    fn an_unknown_content_is_not_found() {
        let bundle = item("b", ItemType::Bundle, vec![of("ghost", 1)]);
        assert_eq!(expand(&bundle, 1, &mut |_| None), Err(RuleError::NotFound("item ghost".into())));
    }

    #[test]
    fn a_cycle_stops_at_the_depth_limit() {
        let items = catalog(vec![item("loop", ItemType::Bundle, vec![of("loop", 1)])]);
        let result = expand(&items["loop"], 1, &mut |key| items.get(key).cloned());
        assert!(matches!(result, Err(RuleError::Invalid(_))));
    }

    #[test]
    fn quantities_that_overflow_are_refused() {
        let items = catalog(vec![item("potion", ItemType::Consumable, vec![])]);
        let bundle = item("b", ItemType::Bundle, vec![of("potion", u64::MAX / 2)]);
        let result = expand(&bundle, 3, &mut |key| items.get(key).cloned());
        assert!(matches!(result, Err(RuleError::Invalid(_))));
    }
}
