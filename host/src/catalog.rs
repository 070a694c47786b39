//! A tenant's catalog in memory: items, stores and currencies, indexed for
//! the lookups a purchase makes. Loaded whole (catalogs are small and
//! read-mostly) and replaced whole when the tenant's `catalog_version`
//! moves: at once on the host that made the change, within a refresh
//! interval on the others.

use crate::storage::{CatalogItem, Content, Currency, ItemType, Store, StoreListing};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct Catalog {
    items: HashMap<Uuid, CatalogItem>,
    item_ids: HashMap<String, Uuid>,
    stores: HashMap<Uuid, Store>,
    store_ids: HashMap<String, Uuid>,
    currencies: HashMap<String, Currency>,
    /// The codes of the regenerating currencies.
    recharging: Arc<[String]>,
}

impl Catalog {
    pub fn new(items: Vec<CatalogItem>, stores: Vec<Store>, currencies: Vec<Currency>) -> Self {
        Self {
            item_ids: items.iter().map(|item| (item.key.clone(), item.id)).collect(),
            items: items.into_iter().map(|item| (item.id, item)).collect(),
            store_ids: stores.iter().map(|store| (store.key.clone(), store.id)).collect(),
            stores: stores.into_iter().map(|store| (store.id, store)).collect(),
            recharging: currencies.iter().filter(|c| c.recharge.is_some()).map(|c| c.code.clone()).collect(),
            currencies: currencies.into_iter().map(|currency| (currency.code.clone(), currency)).collect(),
        }
    }

    pub fn item_by_id(&self, id: Uuid) -> Option<&CatalogItem> {
        self.items.get(&id)
    }

    pub fn item_by_key(&self, key: &str) -> Option<&CatalogItem> {
        self.item_ids.get(key).and_then(|id| self.items.get(id))
    }

    /// The listing of an item in a store, or none if either is unknown or
    /// the store does not list the item.
    pub fn store_listing(&self, store_id: Uuid, item_id: Uuid) -> Option<StoreListing> {
        let item = self.items.get(&item_id)?;
        let store = self.stores.get(&store_id)?;
        let listing = store.listings.iter().find(|listing| listing.item_key == item.key)?;
        Some(StoreListing { store_id, store_key: store.key.clone(), listing: listing.clone() })
    }

    pub fn items(&self) -> impl Iterator<Item = &CatalogItem> {
        self.items.values()
    }

    pub fn store(&self, id: Uuid) -> Option<&Store> {
        self.stores.get(&id)
    }

    pub fn stores(&self) -> impl Iterator<Item = &Store> {
        self.stores.values()
    }

    pub fn store_by_key(&self, key: &str) -> Option<&Store> {
        self.store_ids.get(key).and_then(|id| self.stores.get(id))
    }

    pub fn currency(&self, code: &str) -> Option<&Currency> {
        self.currencies.get(code)
    }

    /// Whether `code` is a regenerating currency, whose balances are settled
    /// before they are read or changed.
    pub fn recharges(&self, code: &str) -> bool {
        self.recharging.iter().any(|recharging| recharging == code)
    }

    /// The codes of the regenerating currencies.
    pub fn recharging(&self) -> &Arc<[String]> {
        &self.recharging
    }
}

/// The rules' view of a catalog item, for expanding it as the default rules do.
pub fn rules_item(item: &CatalogItem) -> economy_core::Item {
    economy_core::Item {
        id: item.id.to_string(),
        key: item.key.clone(),
        item_type: rules_item_type(item.item_type),
        prices: vec![],
        contents: rules_contents(&item.contents),
        duration_seconds: None,
        display_properties: String::new(),
    }
}

pub fn rules_item_type(item_type: ItemType) -> economy_core::ItemType {
    match item_type {
        ItemType::Consumable => economy_core::ItemType::Consumable,
        ItemType::Durable => economy_core::ItemType::Durable,
        ItemType::Bundle => economy_core::ItemType::Bundle,
    }
}

pub fn rules_contents(contents: &[Content]) -> Vec<economy_core::Content> {
    contents
        .iter()
        .map(|content| match content {
            Content::Item { item_key, quantity } => {
                economy_core::Content::Item { item_key: item_key.clone(), quantity: *quantity }
            }
            Content::Currency { currency_code, amount } => economy_core::Content::Currency(economy_core::Price {
                currency_code: currency_code.clone(),
                amount: *amount,
            }),
        })
        .collect()
}
