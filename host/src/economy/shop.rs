//! Shop items: every store listing at each of its currency prices, as one
//! flat list a game server can page through (the shape Sverse's shop API
//! has). A shop item's price is the listing's override in that currency,
//! else the catalog's: the price before the tenant's rules, which decide
//! the price a purchase is charged.

use super::Economy;
use super::error::EconomyError;
use crate::catalog::Catalog;
use crate::storage::{Listing, Store};
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
        let mut parts = id.splitn(3, '.');
        let (Some(store), Some(item), Some(currency)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(not_found());
        };
        let (Ok(store_id), Ok(item_id)) = (Uuid::parse_str(store), Uuid::parse_str(item)) else {
            return Err(not_found());
        };
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let store = tenant.catalog.store(store_id).ok_or_else(not_found)?;
        let listing = tenant.catalog.store_listing(store_id, item_id).ok_or_else(not_found)?;
        let items = shop_items_of(&tenant.catalog, store, &listing.listing);
        items.into_iter().find(|shop_item| shop_item.currency_code == currency).ok_or_else(not_found)
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
