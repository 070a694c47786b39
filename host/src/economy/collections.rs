//! Inventory collections, the way economies with collections and stacks
//! (PlayFab's Economy v2) see a player: a collection's stacks, the wallet
//! in the default collection, a version of it all (an ETag) for optimistic
//! concurrency, and the trusted server's direct changes to one stack.

use super::catalog::check_storable;
use super::error::EconomyError;
use super::grant::{self, Changing};
use super::idempotency::{self, Keyed};
use super::{Economy, Outcome};
use crate::catalog::Catalog;
use crate::commit::Snapshot;
use crate::domain::{CurrencyCode, IdempotencyKey, MAX_AMOUNT};
use crate::runtime::Placement;
use crate::storage::{
    DEFAULT_STACK, Held, InventoryEntry, InventoryRefusal, LedgerReason, RecordKind, User, WalletEntry,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a stack change's idempotency key is hashed with.
const OPERATION: &str = "inventory/change";

/// One collection of a player's inventory, and its version.
#[derive(Clone, Debug)]
pub struct Collection {
    /// Its unexpired, non-empty stacks, by item id then stack id.
    pub stacks: Vec<InventoryEntry>,
    /// The player's balances: currencies are held in the default
    /// collection (empty for any other).
    pub balances: Vec<WalletEntry>,
    /// Changes whenever a stack or balance of the collection does.
    pub etag: String,
}

/// What a server's stack change moves: a currency, or an item.
#[derive(Clone, Debug)]
pub enum Holding {
    Currency(CurrencyCode),
    Item(Uuid),
}

/// A trusted server's change to one stack: it adds or takes `amount`.
#[derive(Clone, Debug)]
pub struct StackChange {
    pub holding: Holding,
    /// Positive: added; negative: taken.
    pub amount: i64,
    /// Where items are added (a currency has one balance per player).
    pub placement: Placement,
    /// The collection's version the server last read, if it wants the
    /// change to depend on it.
    pub if_match: Option<String>,
}

/// What a stack change did; also what a retry with its key replays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StackChanged {
    pub transaction_id: Uuid,
}

impl StackChange {
    fn canonical(&self) -> serde_json::Value {
        let Placement { stack, display_properties, max_duration_seconds, .. } = &self.placement;
        let holding = match &self.holding {
            Holding::Currency(code) => json!({ "currency_code": code.as_str() }),
            Holding::Item(id) => json!({ "item_id": id }),
        };
        json!({
            "holding": holding,
            "amount": self.amount,
            "collection_id": stack.collection_id,
            "stack_id": stack.stack_id,
            "display_properties": display_properties,
            "max_duration_seconds": max_duration_seconds,
        })
    }
}

impl Economy {
    /// What an id or a friendly id names in the tenant's catalog: an item
    /// (by its id, or its key), or a currency (by its code, either way).
    pub async fn holding(&self, tenant_id: Uuid, id: Option<&str>, key: Option<&str>) -> Result<Holding, EconomyError> {
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let catalog = &tenant.catalog;
        let item = match (id, key) {
            (Some(id), _) => Uuid::parse_str(id).ok().and_then(|id| catalog.item_by_id(id)),
            (None, Some(key)) => catalog.item_by_key(key),
            (None, None) => return Err(EconomyError::invalid("an item id or friendly id is required")),
        };
        if let Some(item) = item {
            return Ok(Holding::Item(item.id));
        }
        match catalog.currency(id.or(key).unwrap_or_default()) {
            Some(currency) => Ok(Holding::Currency(CurrencyCode::try_from(currency.code.clone())?)),
            None => Err(EconomyError::not_found("item")),
        }
    }

    /// The collection `collection_id` of the player, with its version.
    pub async fn collection(&self, user: &User, collection_id: &str) -> Result<Collection, EconomyError> {
        let (mut stacks, balances, etag) = match collection_id == DEFAULT_STACK {
            true => {
                tokio::try_join!(self.inventory(user), self.wallet(user), self.collection_version(user, collection_id))?
            }
            false => {
                let (stacks, etag) =
                    tokio::try_join!(self.inventory(user), self.collection_version(user, collection_id))?;
                (stacks, Vec::new(), etag)
            }
        };
        stacks.retain(|stack| stack.collection_id == collection_id);
        stacks.sort_by(|a, b| (a.catalog_item_id, &a.stack_id).cmp(&(b.catalog_item_id, &b.stack_id)));
        Ok(Collection { stacks, balances, etag })
    }

    /// The version (ETag) of the player's collection: a digest of what it
    /// holds as stored, so it changes exactly when a stack or balance of it
    /// does (a balance that regenerates changes when it is settled), and is
    /// the same on every host and after restarts.
    pub async fn collection_version(&self, user: &User, collection_id: &str) -> Result<String, EconomyError> {
        let store = self.tenant_store(user.tenant_id).await?;
        Ok(version_of(self.versions.read(store, user, collection_id).await?))
    }

    /// `CollectionChanged` unless the collection is still at the version
    /// the caller read (no version given: no condition). Callers hold the
    /// player's turn, so no write of theirs on this host runs between this
    /// check and their own.
    pub(super) async fn still_at(
        &self,
        user: &User,
        collection_id: &str,
        if_match: Option<&str>,
    ) -> Result<(), EconomyError> {
        match if_match {
            Some(etag) if etag != self.collection_version(user, collection_id).await? => {
                Err(EconomyError::CollectionChanged)
            }
            _ => Ok(()),
        }
    }

    /// Applies a trusted server's change to one of the player's stacks:
    /// at most once per idempotency key, and only if the collection is
    /// still at `if_match`.
    pub async fn change_stack(
        &self,
        user: &User,
        change: &StackChange,
        key: Option<IdempotencyKey>,
    ) -> Result<Outcome<StackChanged>, EconomyError> {
        if change.amount == 0 || !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&change.amount) {
            return Err(EconomyError::Invalid(format!("the amount must be from 1 to {MAX_AMOUNT}")));
        }
        if let Some(properties) = &change.placement.display_properties {
            check_storable("display_properties", properties)?;
        }
        self.admit_write(user).await?;
        let keyed = key.map(|key| Keyed::new(key, OPERATION, change.canonical()));
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let store = self.tenant_store(user.tenant_id).await?;
        let _turn = self.user_queue.turn(user.id).await;
        let collection_id = &change.placement.stack.collection_id;
        if let Err(changed) = self.still_at(user, collection_id, change.if_match.as_deref()).await {
            return idempotency::after_failure(store.as_ref(), user.id, RecordKind::Request, keyed.as_ref(), changed)
                .await;
        }
        let catalog = &tenant.catalog;
        let write = move |mut snapshot: Snapshot| -> Changing<'_, StackChanged> {
            Box::pin(async move {
                let changed = apply(&mut snapshot, catalog, change).await;
                (snapshot, changed)
            })
        };
        self.write_trusted(&store, &tenant, user, keyed.as_ref(), &write).await
    }
}

/// The version (ETag) of a collection that holds `held`, as stored (see
/// [`Economy::collection_version`]).
pub(super) fn version_of(mut held: Vec<Held>) -> String {
    held.sort();
    let mut digest = Sha256::new();
    for holding in &held {
        digest.update(format!("{holding:?}\n"));
    }
    hex::encode(&digest.finalize()[..12])
}

async fn apply(snapshot: &mut Snapshot, catalog: &Catalog, change: &StackChange) -> Result<StackChanged, EconomyError> {
    match &change.holding {
        Holding::Currency(code) => {
            grant::change_balance(snapshot, code, change.amount, LedgerReason::Grant).await?;
        }
        Holding::Item(item_id) => {
            let item = catalog.item_by_id(*item_id).ok_or_else(|| EconomyError::not_found("item"))?;
            if change.amount > 0 {
                snapshot.grant_items(vec![grant::item_grant(item, change.amount, &change.placement)?]);
            } else {
                match snapshot.take(item.id, &change.placement.stack, -change.amount).await? {
                    Ok(_) => {}
                    Err(InventoryRefusal::InsufficientQuantity) => return Err(EconomyError::InsufficientQuantity),
                    Err(InventoryRefusal::UnknownItem) => return Err(EconomyError::not_found("item")),
                }
            }
        }
    }
    Ok(StackChanged { transaction_id: Uuid::now_v7() })
}
