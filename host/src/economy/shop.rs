//! Shop items: every store listing at each of its currency prices, as one
//! flat list a game server can page through (the shape Sverse's shop API
//! has). A shop item's price is the listing's override in that currency,
//! else the catalog's: the price before the tenant's rules, which decide
//! the price a purchase is charged.

use super::error::EconomyError;
use super::{Economy, Outcome, PurchaseReceipt, PurchaseRequest};
use crate::catalog::Catalog;
use crate::domain::{CurrencyCode, IdempotencyKey, Quantity};
use crate::storage::{Listing, Store, User};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One store listing at one currency price.
#[derive(Clone, Debug)]
pub struct ShopItem {
    /// `{store id}.{item id}.{currency code}`: stable while the listing and
    /// the price in that currency exist.
    pub id: String,
    pub store_id: Uuid,
    pub item_id: Uuid,
    pub item_key: String,
    pub currency_code: String,
    pub price: i64,
    pub purchasable: bool,
    /// When the pair could first be sold: the later of the store's and the
    /// item's creation.
    pub created_at: DateTime<Utc>,
}

impl ShopItem {
    /// A purchase of `quantity` of this shop item through its store, with
    /// the caller's own `meta`.
    pub fn purchase(
        &self,
        quantity: Quantity,
        meta: Option<serde_json::Value>,
    ) -> Result<PurchaseRequest, EconomyError> {
        purchase(self.store_id, self.item_id, &self.currency_code, quantity, meta)
    }
}

fn purchase(
    store_id: Uuid,
    item_id: Uuid,
    currency_code: &str,
    quantity: Quantity,
    meta: Option<serde_json::Value>,
) -> Result<PurchaseRequest, EconomyError> {
    let currency_code = CurrencyCode::try_from(currency_code.to_owned())?;
    Ok(PurchaseRequest { meta, ..PurchaseRequest::new(item_id, currency_code, Some(store_id), quantity) })
}

/// What a shop item id names: its store, its item and the currency.
fn parse_id(id: &str) -> Option<(Uuid, Uuid, &str)> {
    let mut parts = id.splitn(3, '.');
    let (store, item, currency) = (parts.next()?, parts.next()?, parts.next()?);
    Some((Uuid::parse_str(store).ok()?, Uuid::parse_str(item).ok()?, currency))
}

impl Economy {
    /// Every shop item of the tenant, oldest first (ties by id).
    pub async fn shop_items(&self, tenant_id: Uuid) -> Result<Vec<ShopItem>, EconomyError> {
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let mut items = shop_items(&tenant.catalog);
        items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(items)
    }

    /// The shop item `id` of the tenant.
    pub async fn shop_item(&self, tenant_id: Uuid, id: &str) -> Result<ShopItem, EconomyError> {
        let not_found = || EconomyError::not_found("shop item");
        let (store_id, item_id, currency) = parse_id(id).ok_or_else(not_found)?;
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let store = tenant.catalog.store(store_id).ok_or_else(not_found)?;
        let listing = tenant.catalog.store_listing(store_id, item_id).ok_or_else(not_found)?;
        let items = shop_items_of(&tenant.catalog, store, &listing.listing);
        items.into_iter().find(|shop_item| shop_item.currency_code == currency).ok_or_else(not_found)
    }

    /// The answer to an identical retry of a purchase of shop item `id`
    /// that committed with `key` before the shop item went (its listing
    /// removed, or its price in that currency), with the item's key; none
    /// if no purchase used the key.
    pub async fn replay_shop_purchase(
        &self,
        user: &User,
        id: &str,
        quantity: Quantity,
        meta: Option<serde_json::Value>,
        key: IdempotencyKey,
    ) -> Result<Option<(String, Outcome<PurchaseReceipt>)>, EconomyError> {
        let Some((store_id, item_id, currency_code)) = parse_id(id) else { return Ok(None) };
        let request = purchase(store_id, item_id, currency_code, quantity, meta)?;
        let Some(outcome) = self.replay_purchase(user, &request, key).await? else { return Ok(None) };
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let item_key = tenant.catalog.item_by_id(item_id).map(|item| item.key.clone()).unwrap_or_default();
        Ok(Some((item_key, outcome)))
    }
}

fn shop_items(catalog: &Catalog) -> Vec<ShopItem> {
    catalog
        .stores()
        .flat_map(|store| store.listings.iter().flat_map(|listing| shop_items_of(catalog, store, listing)))
        .collect()
}

/// The shop items of one listing: one per currency it has a price in.
fn shop_items_of(catalog: &Catalog, store: &Store, listing: &Listing) -> Vec<ShopItem> {
    let Some(item) = catalog.item_by_key(&listing.item_key) else { return Vec::new() };
    let overrides = listing.override_prices.as_deref().unwrap_or_default();
    let catalog_only =
        item.prices.iter().filter(|price| !overrides.iter().any(|o| o.currency_code == price.currency_code));
    overrides
        .iter()
        .chain(catalog_only)
        .map(|price| ShopItem {
            id: format!("{}.{}.{}", store.id, item.id, price.currency_code),
            store_id: store.id,
            item_id: item.id,
            item_key: item.key.clone(),
            currency_code: price.currency_code.clone(),
            price: price.amount,
            purchasable: listing.purchasable,
            created_at: store.created_at.max(item.created_at),
        })
        .collect()
}
