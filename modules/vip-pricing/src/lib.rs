//! VIP pricing: VIP players pay less. Who is a VIP is the game's to say,
//! by the player's identity or by an attribute its server sets; how much
//! less is the tenant admin's, in the module settings.
//!
//! - A player whose attribute `vip` is `true` is a VIP; `false` is not,
//!   whatever the identity. Without the attribute, a player whose identity
//!   starts with the setting `vip_prefix` (default `"vip-"`) is a VIP.
//! - VIPs get the setting `vip_percent_off` (0 to 100, default 20) off the
//!   price the default rules resolve, rounded down.
//!
//! ```json
//! PUT /admin/settings                 {"module_settings": {"vip_prefix": "gold-", "vip_percent_off": 30}}
//! PUT /server/users/ann/attributes    {"vip": true}
//! ```

use economy_core::{CatalogPrice, Context, Env, Item, Listing, PricePolicy, RuleError, pricing};

/// The prefix of VIP identities when the tenant sets none.
pub const DEFAULT_PREFIX: &str = "vip-";
/// The VIP discount when the tenant sets none.
pub const DEFAULT_PERCENT_OFF: u8 = 20;

/// Whether the player is a VIP, given the `vip` attribute (JSON text) and
/// the `vip_prefix` setting (JSON text). Unreadable values count as unset.
pub fn is_vip(identity: &str, vip_attribute: Option<&str>, prefix_setting: Option<&str>) -> bool {
    if let Some(vip) = vip_attribute.and_then(|text| serde_json::from_str::<bool>(text).ok()) {
        return vip;
    }
    let prefix = prefix_setting.and_then(|text| serde_json::from_str::<String>(text).ok());
    identity.starts_with(prefix.as_deref().unwrap_or(DEFAULT_PREFIX))
}

/// The VIP discount (0..=100), given the `vip_percent_off` setting.
pub fn percent_off(setting: Option<&str>) -> u8 {
    setting.and_then(|text| serde_json::from_str::<u8>(text).ok()).map_or(DEFAULT_PERCENT_OFF, |p| p.min(100))
}

pub struct VipPricing;

impl PricePolicy for VipPricing {
    fn unit_price(
        env: &mut impl Env,
        ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError> {
        let price = CatalogPrice::unit_price(env, ctx, item, listing, currency_code)?;
        let identity = env.identity();
        let vip = is_vip(&identity, env.attribute("vip").as_deref(), env.setting("vip_prefix").as_deref());
        Ok(if vip { pricing::discounted(price, percent_off(env.setting("vip_percent_off").as_deref())) } else { price })
    }
}

#[cfg(target_arch = "wasm32")]
economy_core::export_rules!(VipPricing);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_decides_and_the_identity_prefix_stands_in_for_it() {
        assert!(is_vip("vip-1", None, None));
        assert!(!is_vip("ann", None, None));
        assert!(is_vip("ann", Some("true"), None));
        assert!(!is_vip("vip-1", Some("false"), None));
        assert!(is_vip("gold-1", None, Some(r#""gold-""#)));
        assert!(!is_vip("vip-1", None, Some(r#""gold-""#)));
        assert!(is_vip("vip-1", Some(r#""yes""#), Some("7")), "unreadable values count as unset");
    }

    #[test]
    fn the_discount_is_the_setting_within_0_to_100() {
        assert_eq!(percent_off(None), 20);
        assert_eq!(percent_off(Some("35")), 35);
        assert_eq!(percent_off(Some("300")), 20, "not a u8: unset");
        assert_eq!(percent_off(Some("250")), 100);
        assert_eq!(percent_off(Some(r#""half""#)), 20);
    }
}
