//! Store pages: each listing with the prices the tenant's rules quote now.

use super::Economy;
use super::error::EconomyError;
use crate::runtime;
use crate::storage::{ItemType, Price, User};
use serde::Serialize;
use uuid::Uuid;

/// A store as a player sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StorePage {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub listings: Vec<ListingView>,
}

/// One listing, priced by the rules module (not the catalog).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ListingView {
    pub item_id: Uuid,
    pub item_key: String,
    pub name: String,
    pub icon_url: Option<String>,
    pub item_type: ItemType,
    pub category: Option<String>,
    /// One price per currency the rules price the item in.
    pub prices: Vec<Price>,
    pub purchasable: bool,
    pub max_purchases_per_user: Option<u64>,
}

impl Economy {
    /// The store `key` as `user` sees it now: one quote per listing and
    /// currency, all on one snapshot of the player (each value read once,
    /// without a lock; nothing is written).
    pub async fn store_page(&self, user: &User, key: &str) -> Result<StorePage, EconomyError> {
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let store = tenant.catalog.store_by_key(key).ok_or_else(|| EconomyError::not_found("store"))?;
        let storage = self.tenant_store(user.tenant_id).await?;
        let mut snapshot = self.snapshot(&storage, &tenant, user, true, true);
        let sha256 = &tenant.module.sha256;
        let mut listings = Vec::with_capacity(store.listings.len());
        let mut failure = None;
        'listings: for listing in &store.listings {
            let Some(item) = tenant.catalog.item_by_key(&listing.item_key) else { continue };
            let mut currencies: Vec<&str> = item.prices.iter().map(|price| price.currency_code.as_str()).collect();
            for price in listing.override_prices.iter().flatten() {
                if !currencies.contains(&price.currency_code.as_str()) {
                    currencies.push(&price.currency_code);
                }
            }
            let mut prices = Vec::new();
            let mut purchasable = listing.purchasable;
            for currency_code in currencies {
                let request = runtime::PurchaseRequest {
                    item_id: item.id.to_string(),
                    currency_code: currency_code.to_owned(),
                    store_id: Some(store.id.to_string()),
                    quantity: 1,
                };
                let call = tenant.call(user, Uuid::now_v7());
                let invocation = self.rules.runtime().quote(call, snapshot, request).await;
                snapshot = invocation.snapshot;
                match self.module_answer(user.tenant_id, sha256, "quote", invocation.result) {
                    Ok(quote) if quote.unit_price >= 0 => {
                        purchasable &= quote.purchasable;
                        prices.push(Price { currency_code: currency_code.to_owned(), amount: quote.unit_price });
                    }
                    Ok(quote) => {
                        let reason = format!("quoted {}", quote.unit_price);
                        failure = Some(self.module_misbehaved(user.tenant_id, sha256, "quote", &reason));
                        break 'listings;
                    }
                    // A currency the rules do not price is left out.
                    Err(EconomyError::NoPrice | EconomyError::NotPurchasable(_)) => {}
                    Err(error) => {
                        failure = Some(error);
                        break 'listings;
                    }
                }
            }
            listings.push(ListingView {
                item_id: item.id,
                item_key: item.key.clone(),
                name: item.name.clone(),
                icon_url: item.icon_url.clone(),
                item_type: item.item_type,
                category: item.category.clone(),
                prices,
                purchasable,
                max_purchases_per_user: listing.max_purchases_per_user,
            });
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(StorePage { id: store.id, key: store.key.clone(), name: store.name.clone(), listings }),
        }
    }
}
