//! Host side of `economy:plugin/catalog`: reads of the tenant's catalog,
//! served from the in-memory copy the request started with.

use super::bindings::economy::plugin::catalog::Host;
use super::bindings::types;
use super::state::RequestState;
use crate::storage::{CatalogItem, Content, ItemType, Price};
use uuid::Uuid;

impl Host for RequestState {
    async fn item_by_id(&mut self, id: String) -> wasmtime::Result<Option<types::Item>> {
        self.charge_import()?;
        let Ok(id) = Uuid::parse_str(&id) else {
            return Ok(None);
        };
        let item = self.catalog.item_by_id(id).cloned();
        Ok(item.map(|item| self.serve(item)))
    }

    async fn item_by_key(&mut self, key: String) -> wasmtime::Result<Option<types::Item>> {
        self.charge_import()?;
        let item = self.catalog.item_by_key(&key).cloned();
        Ok(item.map(|item| self.serve(item)))
    }

    async fn store_listing(&mut self, store_id: String, item_id: String) -> wasmtime::Result<Option<types::Listing>> {
        self.charge_import()?;
        let (Ok(store_id), Ok(item_id)) = (Uuid::parse_str(&store_id), Uuid::parse_str(&item_id)) else {
            return Ok(None);
        };
        Ok(self.catalog.store_listing(store_id, item_id).map(|found| types::Listing {
            store_id: found.store_id.to_string(),
            store_key: found.store_key,
            item_id: item_id.to_string(),
            override_prices: found.listing.override_prices.unwrap_or_default().into_iter().map(to_wit_price).collect(),
            max_purchases_per_user: found.listing.max_purchases_per_user,
            purchasable: found.listing.purchasable,
        }))
    }

    async fn currency_by_code(&mut self, code: String) -> wasmtime::Result<Option<types::Currency>> {
        self.charge_import()?;
        Ok(self.catalog.currency(&code).map(|c| types::Currency {
            code: c.code.clone(),
            name: c.name.clone(),
            initial_balance: c.initial_balance,
            max_balance: c.max_balance,
        }))
    }
}

impl RequestState {
    /// Hands an item to the guest, remembering it for the host's re-check.
    fn serve(&mut self, item: CatalogItem) -> types::Item {
        self.journal.items.insert(item.id, item.clone());
        to_wit_item(item)
    }
}

fn to_wit_price(price: Price) -> types::Price {
    types::Price { currency_code: price.currency_code, amount: price.amount }
}

fn to_wit_item(item: CatalogItem) -> types::Item {
    types::Item {
        id: item.id.to_string(),
        key: item.key,
        name: item.name,
        item_type: match item.item_type {
            ItemType::Consumable => types::ItemType::Consumable,
            ItemType::Durable => types::ItemType::Durable,
            ItemType::Bundle => types::ItemType::Bundle,
        },
        category: item.category,
        prices: item.prices.into_iter().map(to_wit_price).collect(),
        contents: item
            .contents
            .into_iter()
            .map(|content| match content {
                Content::Item { item_key, quantity } => {
                    types::Content::Item(types::ItemQuantity { item_key, quantity })
                }
                Content::Currency { currency_code, amount } => {
                    types::Content::Currency(types::Price { currency_code, amount })
                }
            })
            .collect(),
        duration_seconds: item.duration_seconds.and_then(|d| u64::try_from(d).ok()),
        display_properties: item.display_properties.to_string(),
    }
}
