//! The purchase and quote operations, in the order the README documents: find the
//! item and listing, resolve the price, enforce the cap, debit, grant.

use crate::{Context, Env, Item, Listing, PricePolicy, RuleError, bundle, pricing};

/// A purchase as the host passes it in.
#[derive(Clone, Debug)]
pub struct Request {
    pub item_id: String,
    pub currency_code: String,
    pub store_id: Option<String>,
    pub quantity: u64,
}

/// What a successful purchase did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub unit_price: i64,
    pub total: i64,
    pub balance_after: i64,
}

/// A price quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    pub unit_price: i64,
    pub total: i64,
    pub purchasable: bool,
}

/// Buys `request.quantity` of the item for the request's user, priced by
/// `P`. Every ledger entry it writes names the request id.
pub fn purchase<P: PricePolicy>(env: &mut impl Env, ctx: &Context, request: &Request) -> Result<Outcome, RuleError> {
    let reference = ctx.request_id.as_str();
    if request.quantity == 0 {
        return Err(RuleError::Invalid("quantity must be at least 1".into()));
    }
    let (item, listing) = find(env, request)?;
    let unit_price = P::unit_price(env, ctx, &item, listing.as_ref(), &request.currency_code)?;
    let total = pricing::total(unit_price, request.quantity)?;
    let grants = bundle::expand(&item, request.quantity, &mut |key| env.item_by_key(key))?;

    let cap = listing.as_ref().and_then(|l| l.max_purchases_per_user);
    if let (Some(store_id), Some(cap)) = (&request.store_id, cap)
        && (request.quantity > cap || env.claim_listing(store_id, &item.id, request.quantity, cap).is_none())
    {
        return Err(RuleError::MaxPurchasesReached);
    }

    let code = &request.currency_code;
    let mut balance_after = if total > 0 {
        env.debit(code, total, reference).map_err(|e| e.into_rule_error(code))?
    } else {
        env.balance(code).ok_or_else(|| RuleError::NotFound(format!("currency {code}")))?
    };
    for (currency, amount) in &grants.currencies {
        if *amount == 0 {
            continue;
        }
        let after = env.credit(currency, *amount, reference).map_err(|e| e.into_rule_error(currency))?;
        if currency == code {
            balance_after = after;
        }
    }
    if !grants.items.is_empty() {
        env.grant_items(&grants.items)?;
    }
    Ok(Outcome { unit_price, total, balance_after })
}

/// What `purchase` would charge now, changing nothing.
pub fn quote<P: PricePolicy>(env: &mut impl Env, ctx: &Context, request: &Request) -> Result<Quote, RuleError> {
    let (item, listing) = find(env, request)?;
    let purchasable = listing.as_ref().is_none_or(|listing| listing.purchasable);
    // A listing that is not for sale still shows its price.
    let shown = listing.map(|listing| Listing { purchasable: true, ..listing });
    let unit_price = P::unit_price(env, ctx, &item, shown.as_ref(), &request.currency_code)?;
    let total = pricing::total(unit_price, request.quantity.max(1))?;
    Ok(Quote { unit_price, total, purchasable })
}

fn find(env: &mut impl Env, request: &Request) -> Result<(Item, Option<Listing>), RuleError> {
    let item = env.item_by_id(&request.item_id).ok_or_else(|| RuleError::NotFound("item".into()))?;
    let listing = match &request.store_id {
        Some(store_id) => {
            Some(env.listing(store_id, &item.id).ok_or_else(|| RuleError::NotFound("store listing".into()))?)
        }
        None => None,
    };
    Ok((item, listing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeEnv;
    use crate::{CatalogPrice, Content, ItemType, Price};

    fn ctx(request_id: &str) -> Context {
        Context { request_id: request_id.into(), ..Context::default() }
    }

    fn request(item_id: &str, quantity: u64) -> Request {
        Request { item_id: item_id.into(), currency_code: "gems".into(), store_id: None, quantity }
    }

    #[test]
    fn a_purchase_debits_the_total_and_grants_the_item() {
        let mut env = FakeEnv::new().with_balance("gems", 1000).with_item("sword", ItemType::Durable, 100);
        let outcome = purchase::<CatalogPrice>(&mut env, &ctx("ref"), &request("id-sword", 3)).unwrap();
        assert_eq!(outcome, Outcome { unit_price: 100, total: 300, balance_after: 700 });
        assert_eq!(env.quantity("id-sword"), 3);
    }

    #[test]
    fn an_unaffordable_purchase_grants_nothing() {
        let mut env = FakeEnv::new().with_balance("gems", 50).with_item("sword", ItemType::Durable, 100);
        assert_eq!(
            purchase::<CatalogPrice>(&mut env, &ctx("ref"), &request("id-sword", 1)),
            Err(RuleError::InsufficientBalance)
        );
        assert_eq!(env.quantity("id-sword"), 0);
    }

    #[test]
    fn a_bundle_credits_its_currency_into_the_reported_balance() {
        let mut env = FakeEnv::new().with_balance("gems", 100).with_item("potion", ItemType::Consumable, 1);
        env.add_bundle(
            "pack",
            60,
            vec![
                Content::Item { item_key: "potion".into(), quantity: 2 },
                Content::Currency(Price { currency_code: "gems".into(), amount: 25 }),
            ],
        );
        let outcome = purchase::<CatalogPrice>(&mut env, &ctx("ref"), &request("id-pack", 1)).unwrap();
        assert_eq!(outcome.balance_after, 65);
        assert_eq!(env.quantity("id-potion"), 2);
        assert_eq!(env.quantity("id-pack"), 0);
    }

    #[test]
    fn the_cap_counts_quantities() {
        let mut env = FakeEnv::new().with_balance("gems", 1000).with_item("sword", ItemType::Durable, 10);
        env.add_listing(
            "store",
            "id-sword",
            Listing { max_purchases_per_user: Some(3), purchasable: true, ..Listing::default() },
        );
        let mut capped = request("id-sword", 2);
        capped.store_id = Some("store".into());
        assert!(purchase::<CatalogPrice>(&mut env, &ctx("r1"), &capped).is_ok());
        assert_eq!(purchase::<CatalogPrice>(&mut env, &ctx("r2"), &capped), Err(RuleError::MaxPurchasesReached));
        capped.quantity = 1;
        assert!(purchase::<CatalogPrice>(&mut env, &ctx("r3"), &capped).is_ok());
        assert_eq!(purchase::<CatalogPrice>(&mut env, &ctx("r4"), &capped), Err(RuleError::MaxPurchasesReached));
    }

    #[test]
    fn an_item_missing_from_the_store_is_not_found() {
        let mut env = FakeEnv::new().with_item("sword", ItemType::Durable, 10);
        let mut req = request("id-sword", 1);
        req.store_id = Some("store".into());
        assert!(matches!(purchase::<CatalogPrice>(&mut env, &ctx("r"), &req), Err(RuleError::NotFound(_))));
    }

    #[test]
    fn a_quote_of_a_listing_not_for_sale_still_shows_its_price() {
        let mut env = FakeEnv::new().with_item("sword", ItemType::Durable, 10);
        let override_prices = vec![Price { currency_code: "gems".into(), amount: 7 }];
        env.add_listing("store", "id-sword", Listing { override_prices, purchasable: false, ..Listing::default() });
        let mut req = request("id-sword", 2);
        req.store_id = Some("store".into());
        assert_eq!(
            quote::<CatalogPrice>(&mut env, &ctx("q"), &req),
            Ok(Quote { unit_price: 7, total: 14, purchasable: false })
        );
    }
}
