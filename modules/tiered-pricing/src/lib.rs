//! Tiered (volume) pricing: the more of an item a player has already
//! bought, the less the next ones cost.
//!
//! Tiers are configured per item, in its `display_properties`:
//!
//! ```json
//! {"tiers": [{"after": 5, "percent_off": 10}, {"after": 10, "percent_off": 25}]}
//! ```
//!
//! A tier applies once the player has bought at least `after` of the item
//! before this purchase (summed over all stores, from the purchase history
//! import). The deepest applicable tier wins; the discount applies to the
//! price the default rules resolve, rounded down.

use economy_core::{CatalogPrice, Context, Env, Item, Listing, PricePolicy, RuleError, pricing};
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    tiers: Vec<Tier>,
}

/// One price tier.
#[derive(Deserialize)]
pub struct Tier {
    pub after: u64,
    pub percent_off: u8,
}

/// The discount (0..=100) for a player who already bought `bought` of an
/// item whose `display_properties` are `properties`.
pub fn percent_off(properties: &str, bought: u64) -> u8 {
    let Ok(settings) = serde_json::from_str::<Settings>(properties) else { return 0 };
    settings.tiers.iter().filter(|tier| bought >= tier.after).map(|tier| tier.percent_off.min(100)).max().unwrap_or(0)
}

pub struct TieredPricing;

impl PricePolicy for TieredPricing {
    fn unit_price(
        env: &mut impl Env,
        ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError> {
        let price = CatalogPrice::unit_price(env, ctx, item, listing, currency_code)?;
        if !item.display_properties.contains("tiers") {
            return Ok(price);
        }
        let bought = env.item_purchases(&item.id);
        Ok(pricing::discounted(price, percent_off(&item.display_properties, bought)))
    }
}

#[cfg(target_arch = "wasm32")]
economy_core::export_rules!(TieredPricing);

#[cfg(test)]
mod tests {
    use super::*;

    const TIERS: &str = r#"{"tiers": [{"after": 5, "percent_off": 10}, {"after": 10, "percent_off": 25}]}"#;

    #[test]
    fn the_deepest_reached_tier_applies() {
        assert_eq!(percent_off(TIERS, 0), 0);
        assert_eq!(percent_off(TIERS, 4), 0);
        assert_eq!(percent_off(TIERS, 5), 10);
        assert_eq!(percent_off(TIERS, 10), 25);
        assert_eq!(percent_off(TIERS, 1_000), 25);
    }

    #[test]
    fn no_tiers_means_full_price() {
        assert_eq!(percent_off("{}", 100), 0);
    }
}
