//! Host side of `economy:plugin/history`: the user's purchase counts, as
//! the request's snapshot reads them. An id that names nothing counts 0
//! and claims nothing.

use super::bindings::economy::plugin::history::Host;
use super::state::{RequestState, storage};
use uuid::Uuid;

impl Host for RequestState {
    async fn item_purchases(&mut self, item_id: String) -> wasmtime::Result<u64> {
        self.charge_import()?;
        let Ok(item_id) = Uuid::parse_str(&item_id) else {
            return Ok(0);
        };
        Ok(u64::try_from(storage!(self.snapshot.item_purchases(item_id))).unwrap_or(0))
    }

    async fn listing_purchases(&mut self, store_id: String, item_id: String) -> wasmtime::Result<u64> {
        self.charge_import()?;
        let (Ok(store_id), Ok(item_id)) = (Uuid::parse_str(&store_id), Uuid::parse_str(&item_id)) else {
            return Ok(0);
        };
        Ok(u64::try_from(storage!(self.snapshot.listing_purchases(store_id, item_id))).unwrap_or(0))
    }

    async fn claim_listing(
        &mut self,
        store_id: String,
        item_id: String,
        quantity: u64,
        cap: u64,
    ) -> wasmtime::Result<Option<u64>> {
        self.charge_change("history.claim-listing")?;
        // A listing that does not exist, or a claim of nothing, claims nothing.
        let (Ok(store_id), Ok(item_id)) = (Uuid::parse_str(&store_id), Uuid::parse_str(&item_id)) else {
            return Ok(None);
        };
        let (Ok(quantity), Ok(cap)) = (i64::try_from(quantity), i64::try_from(cap)) else {
            return Ok(None);
        };
        if quantity < 1 || self.catalog.store_listing(store_id, item_id).is_none() {
            return Ok(None);
        }
        Ok(storage!(self.snapshot.claim_listing(store_id, item_id, quantity, cap)).map(|total| total as u64))
    }
}
