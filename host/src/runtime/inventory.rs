//! Host side of `economy:plugin/inventory`: the user's stacks. Guest input
//! is clamped here: ids must be UUIDs of the tenant's catalog, quantities
//! fit in an i64, and equal items are merged before they reach SQL.

use super::bindings::economy::plugin::inventory::{Grant, Host, InventoryError};
use super::state::RequestState;
use crate::storage::{InventoryRefusal, NewGrant};
use uuid::Uuid;

/// The longest stack lifetime a grant may set: 100 years.
const MAX_DURATION_SECONDS: u64 = 100 * 366 * 24 * 3600;
/// The longest `acquired-via` label a guest may write.
const MAX_ACQUIRED_VIA_CHARS: usize = 64;
/// The most distinct items one grant call may touch.
const MAX_GRANTS_PER_CALL: usize = 256;

impl Host for RequestState {
    async fn quantity(&mut self, item_id: String) -> wasmtime::Result<u64> {
        self.charge_import()?;
        let Ok(item_id) = Uuid::parse_str(&item_id) else {
            return Ok(0);
        };
        Ok(u64::try_from(self.tx.quantity(item_id).await?).unwrap_or(0))
    }

    async fn grant_items(&mut self, grants: Vec<Grant>) -> wasmtime::Result<Result<(), InventoryError>> {
        self.charge_import()?;
        let merged = match merge(grants) {
            Ok(merged) => merged,
            Err(error) => return Ok(Err(error)),
        };
        if merged.is_empty() {
            return Ok(Ok(()));
        }
        let granted = self.tx.grant_items(&merged).await?.map_err(to_wit_error);
        if granted.is_ok() {
            self.journal.grants.extend(merged.iter().map(|grant| (grant.item_id, grant.quantity)));
        }
        Ok(granted.map(|_| ()))
    }

    async fn consume(&mut self, item_id: String, quantity: u64) -> wasmtime::Result<Result<u64, InventoryError>> {
        self.charge_import()?;
        let Ok(item_id) = Uuid::parse_str(&item_id) else {
            return Ok(Err(InventoryError::UnknownItem));
        };
        let Some(quantity) = i64::try_from(quantity).ok().filter(|q| *q >= 1) else {
            return Ok(Err(InventoryError::InvalidQuantity));
        };
        Ok(self.tx.consume(item_id, quantity).await?.map(|left| u64::try_from(left).unwrap_or(0)).map_err(to_wit_error))
    }
}

fn merge(grants: Vec<Grant>) -> Result<Vec<NewGrant>, InventoryError> {
    let mut merged: Vec<NewGrant> = Vec::with_capacity(grants.len());
    for grant in grants {
        let item_id = Uuid::parse_str(&grant.item_id).map_err(|_| InventoryError::UnknownItem)?;
        let quantity = i64::try_from(grant.quantity).ok().filter(|q| *q >= 1).ok_or(InventoryError::InvalidQuantity)?;
        let duration_seconds = match grant.duration_seconds {
            Some(d) if d == 0 || d > MAX_DURATION_SECONDS => {
                return Err(InventoryError::InvalidQuantity);
            }
            Some(d) => Some(d as i64),
            None => None,
        };
        let acquired_via: String = grant.acquired_via.chars().take(MAX_ACQUIRED_VIA_CHARS).collect();
        if let Some(existing) = merged.iter_mut().find(|g| g.item_id == item_id) {
            existing.quantity = existing.quantity.checked_add(quantity).ok_or(InventoryError::InvalidQuantity)?;
        } else if merged.len() == MAX_GRANTS_PER_CALL {
            return Err(InventoryError::InvalidQuantity);
        } else {
            merged.push(NewGrant { item_id, quantity, acquired_via, duration_seconds });
        }
    }
    Ok(merged)
}

fn to_wit_error(refusal: InventoryRefusal) -> InventoryError {
    match refusal {
        InventoryRefusal::UnknownItem => InventoryError::UnknownItem,
        InventoryRefusal::InsufficientQuantity => InventoryError::InsufficientQuantity,
    }
}
