//! Price resolution: which unit price a purchase pays, and the total.

use crate::{Item, Listing, Price, RuleError};

/// The price of one `item` in `currency_code`, bought through `listing` if
/// there is one: the listing's override price for that currency, else the
/// catalog price. A listing that is not for sale is `NotPurchasable`; no
/// price in that currency is `NoPrice`.
pub fn unit_price(item: &Item, listing: Option<&Listing>, currency_code: &str) -> Result<i64, RuleError> {
    if let Some(listing) = listing {
        if !listing.purchasable {
            return Err(RuleError::NotPurchasable);
        }
        if let Some(amount) = find(&listing.override_prices, currency_code) {
            return Ok(amount);
        }
    }
    find(&item.prices, currency_code).ok_or(RuleError::NoPrice)
}

/// `unit_price` times `quantity`, refusing totals that do not fit in an i64.
pub fn total(unit_price: i64, quantity: u64) -> Result<i64, RuleError> {
    i64::try_from(quantity)
        .ok()
        .and_then(|quantity| unit_price.checked_mul(quantity))
        .ok_or_else(|| RuleError::Invalid("total price out of range".into()))
}

/// `price` less `percent` percent (capped at 100), rounded down: the
/// discount custom rules apply to the resolved price.
pub fn discounted(price: i64, percent: u8) -> i64 {
    let kept = i128::from(100 - percent.min(100));
    i64::try_from(i128::from(price) * kept / 100).unwrap_or(price)
}

fn find(prices: &[Price], currency_code: &str) -> Option<i64> {
    prices.iter().find(|price| price.currency_code == currency_code).map(|price| price.amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ItemType;

    fn price(code: &str, amount: i64) -> Price {
        Price { currency_code: code.into(), amount }
    }

    fn sword() -> Item {
        Item {
            id: "i".into(),
            key: "sword".into(),
            item_type: ItemType::Durable,
            prices: vec![price("gems", 100), price("gold", 5000)],
            contents: vec![],
            duration_seconds: None,
            display_properties: "{}".into(),
        }
    }

    #[test]
    fn catalog_price_applies_without_a_store() {
        assert_eq!(unit_price(&sword(), None, "gems"), Ok(100));
        assert_eq!(unit_price(&sword(), None, "gold"), Ok(5000));
    }

    #[test]
    fn store_override_beats_the_catalog_price_for_its_currency_only() {
        let listing = Listing { override_prices: vec![price("gems", 80)], purchasable: true, ..Listing::default() };
        assert_eq!(unit_price(&sword(), Some(&listing), "gems"), Ok(80));
        assert_eq!(unit_price(&sword(), Some(&listing), "gold"), Ok(5000));
    }

    #[test]
    fn a_currency_without_any_price_is_no_price() {
        assert_eq!(unit_price(&sword(), None, "coins"), Err(RuleError::NoPrice));
        let listing = Listing { purchasable: true, ..Listing::default() };
        assert_eq!(unit_price(&sword(), Some(&listing), "coins"), Err(RuleError::NoPrice));
    }

    #[test]
    fn a_listing_not_for_sale_is_not_purchasable() {
        let listing = Listing { override_prices: vec![price("gems", 1)], purchasable: false, ..Listing::default() };
        assert_eq!(unit_price(&sword(), Some(&listing), "gems"), Err(RuleError::NotPurchasable));
    }

    #[test]
    fn discounts_round_down_and_never_overflow() {
        assert_eq!(discounted(99, 50), 49);
        assert_eq!(discounted(100, 0), 100);
        assert_eq!(discounted(100, 100), 0);
        assert_eq!(discounted(100, 250), 0);
        assert_eq!(discounted(i64::MAX, 10), i64::MAX / 10 * 9 + 6);
    }

    #[test]
    fn totals_that_overflow_are_refused() {
        assert_eq!(total(100, 3), Ok(300));
        assert!(matches!(total(i64::MAX, 2), Err(RuleError::Invalid(_))));
        assert!(matches!(total(1, u64::MAX), Err(RuleError::Invalid(_))));
    }
}
