//! Time-windowed sales: a percentage off an item's price while a sale runs.
//!
//! Sales are configured per item, in its `display_properties`, so a studio
//! schedules them through the admin API without uploading a new module:
//!
//! ```json
//! {"sales": [{"percent_off": 30, "starts_at_ms": 1764201600000, "ends_at_ms": 1764460800000}]}
//! ```
//!
//! A sale runs from `starts_at_ms` (inclusive) to `ends_at_ms` (exclusive),
//! judged by the request's `now`. When several run at once the deepest
//! discount wins. The discount applies to whatever price the default rules
//! resolve (store override, else catalog), rounded down; everything else
//! (caps, bundles, balance checks) is the default rules'.

use economy_core::{CatalogPrice, Context, Env, Item, Listing, PricePolicy, RuleError, pricing};
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    sales: Vec<Sale>,
}

/// One sale window.
#[derive(Deserialize)]
pub struct Sale {
    pub percent_off: u8,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
}

/// The discount (0..=100) running at `now_ms` for an item whose
/// `display_properties` are `properties`. Unreadable settings mean no sale.
pub fn percent_off(properties: &str, now_ms: i64) -> u8 {
    let Ok(settings) = serde_json::from_str::<Settings>(properties) else { return 0 };
    settings
        .sales
        .iter()
        .filter(|sale| (sale.starts_at_ms..sale.ends_at_ms).contains(&now_ms))
        .map(|sale| sale.percent_off.min(100))
        .max()
        .unwrap_or(0)
}

pub struct SalePricing;

impl PricePolicy for SalePricing {
    fn unit_price(
        env: &mut impl Env,
        ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError> {
        let price = CatalogPrice::unit_price(env, ctx, item, listing, currency_code)?;
        Ok(pricing::discounted(price, percent_off(&item.display_properties, ctx.now_ms)))
    }
}

#[cfg(target_arch = "wasm32")]
economy_core::export_rules!(SalePricing);

#[cfg(test)]
mod tests {
    use super::*;

    const SALES: &str = r#"{"sales": [
        {"percent_off": 20, "starts_at_ms": 1000, "ends_at_ms": 2000},
        {"percent_off": 50, "starts_at_ms": 1500, "ends_at_ms": 1600}
    ], "rarity": "epic"}"#;

    #[test]
    fn a_sale_applies_only_inside_its_window() {
        assert_eq!(percent_off(SALES, 999), 0);
        assert_eq!(percent_off(SALES, 1000), 20);
        assert_eq!(percent_off(SALES, 1999), 20);
        assert_eq!(percent_off(SALES, 2000), 0);
    }

    #[test]
    fn overlapping_sales_give_the_deepest_discount() {
        assert_eq!(percent_off(SALES, 1550), 50);
    }

    #[test]
    fn items_without_sales_or_with_bad_settings_are_full_price() {
        assert_eq!(percent_off("{}", 1500), 0);
        assert_eq!(percent_off(r#"{"sales": "soon"}"#, 1500), 0);
    }
}
