//! {{name}}: the economy's rules, with the price decided here.
//!
//! `export_rules!` exports `purchase`, `quote` and `consume` exactly as the
//! built-in rules do them (store listings, caps, debit, bundle expansion,
//! grants); only the unit price is this module's.

use economy_core::{CatalogPrice, Context, Env, Item, Listing, PricePolicy, RuleError};

pub struct Pricing;

impl PricePolicy for Pricing {
    fn unit_price(
        env: &mut impl Env,
        ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError> {
        // The price the built-in rules would charge: the store's override,
        // else the catalog's.
        let price = CatalogPrice::unit_price(env, ctx, item, listing, currency_code)?;
        // Everything at half price; a player who already holds the item
        // pays the full price.
        match env.held(&item.id) {
            0 => Ok(price / 2),
            _ => Ok(price),
        }
    }
}

#[cfg(target_arch = "wasm32")]
economy_core::export_rules!(Pricing);
