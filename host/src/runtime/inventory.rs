//! Host side of `economy:plugin/inventory`: the user's stacks. Guest input
//! is clamped here: an id that names no item of the tenant's catalog holds
//! 0 and changes nothing (`unknown-item`), quantities stay within a stack's
//! maximum, and equal items are merged before they reach SQL.
//!
//! Grants and consumes are recorded in the request's snapshot and written
//! when it commits; its reads count them, so the guest always sees its own.

use super::bindings::economy::plugin::inventory::{Grant, Host, InventoryError};
use super::state::{RequestState, storage};
use crate::domain::{MAX_DURATION_SECONDS, MAX_GRANTED_ITEMS};
use crate::storage::{InventoryRefusal, MAX_STACK_QUANTITY, NewGrant, StackKey};
use uuid::Uuid;

/// The longest `acquired-via` label a guest may write.
const MAX_ACQUIRED_VIA_CHARS: usize = 64;

impl Host for RequestState {
    async fn quantity(&mut self, item_id: String) -> wasmtime::Result<u64> {
        self.charge_import()?;
        let Ok(item_id) = Uuid::parse_str(&item_id) else { return Ok(0) };
        Ok(u64::try_from(storage!(self.snapshot.quantity(item_id))).unwrap_or(0))
    }

    async fn grant_items(&mut self, grants: Vec<Grant>) -> wasmtime::Result<Result<(), InventoryError>> {
        self.charge_change("inventory.grant-items")?;
        let mut granted = self.granted.clone();
        let mut grants_now = Vec::with_capacity(grants.len());
        for grant in grants {
            match self.add_grant(&mut granted, grant) {
                Ok(grant) => grants_now.push(grant),
                Err(error) => return Ok(Err(error)),
            }
        }
        self.granted = granted;
        self.snapshot.grant_items(grants_now);
        Ok(Ok(()))
    }

    async fn consume(&mut self, item_id: String, quantity: u64) -> wasmtime::Result<Result<u64, InventoryError>> {
        self.charge_change("inventory.consume")?;
        let Some(item_id) = Uuid::parse_str(&item_id).ok().filter(|id| self.catalog.item_by_id(*id).is_some()) else {
            return Ok(Err(InventoryError::UnknownItem));
        };
        let Some(quantity) = i64::try_from(quantity).ok().filter(|q| *q >= 1) else {
            return Ok(Err(InventoryError::InvalidQuantity));
        };
        Ok(storage!(self.snapshot.take(item_id, &StackKey::default(), quantity))
            .map(|left| u64::try_from(left).unwrap_or(0))
            .map_err(to_wit_error))
    }
}

impl RequestState {
    /// Checks one guest grant and merges it into `granted` (the call's
    /// grants so far); the grant to record.
    fn add_grant(&self, granted: &mut Vec<NewGrant>, grant: Grant) -> Result<NewGrant, InventoryError> {
        let item_id = Uuid::parse_str(&grant.item_id).map_err(|_| InventoryError::UnknownItem)?;
        if self.catalog.item_by_id(item_id).is_none() {
            return Err(InventoryError::UnknownItem);
        }
        let quantity = i64::try_from(grant.quantity)
            .ok()
            .filter(|q| (1..=MAX_STACK_QUANTITY).contains(q))
            .ok_or(InventoryError::InvalidQuantity)?;
        let duration_seconds = match grant.duration_seconds {
            Some(d) if d == 0 || d > MAX_DURATION_SECONDS as u64 => return Err(InventoryError::InvalidQuantity),
            other => other.map(|d| d as i64),
        };

        let acquired_via = grant.acquired_via.chars().take(MAX_ACQUIRED_VIA_CHARS).collect();
        let recorded = self.placement.grant(item_id, quantity, acquired_via, duration_seconds);
        if let Some(existing) = granted.iter_mut().find(|g| g.item_id == item_id) {
            existing.quantity = existing
                .quantity
                .checked_add(quantity)
                .filter(|q| *q <= MAX_STACK_QUANTITY)
                .ok_or(InventoryError::InvalidQuantity)?;
        } else if granted.len() == MAX_GRANTED_ITEMS {
            return Err(InventoryError::InvalidQuantity);
        } else {
            granted.push(recorded.clone());
        }
        Ok(recorded)
    }
}

fn to_wit_error(refusal: InventoryRefusal) -> InventoryError {
    match refusal {
        InventoryRefusal::UnknownItem => InventoryError::UnknownItem,
        InventoryRefusal::InsufficientQuantity => InventoryError::InsufficientQuantity,
    }
}
