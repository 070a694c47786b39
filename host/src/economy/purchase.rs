//! Purchases: at most once per idempotency key, all or nothing.
//!
//! The rules run against a snapshot of the player (on a first attempt, the
//! balances this host remembers), with no connection, lock or writer held,
//! and what they did commits at once, guarded on what they changed being as
//! it was read (most purchases share one statement with the others waiting
//! to commit). A stale attempt, or a refusal that rested on a remembered
//! balance, runs again on fresh reads. The key is claimed by the commit
//! that records the purchase.

use super::catalog::check_storable;
use super::collections::version_of;
use super::error::EconomyError;
use super::idempotency::{self, Attempt, Ended, Keyed};
use super::{Economy, Outcome};
use crate::domain::{CurrencyCode, IdempotencyKey, Quantity};
use crate::rules::TenantContext;
use crate::runtime::{self, Invocation, Placement, PurchaseCheck};
use crate::storage::{Commit, Held, ItemType, PurchaseRecord, RecordKind, StoredResponse, TenantStore, User};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// What a purchase's idempotency key is hashed with (since the first release).
const OPERATION: &str = "client/inventory/purchase";

/// A purchase as a player asks for it.
#[derive(Clone, Debug)]
pub struct PurchaseRequest {
    pub item_id: Uuid,
    pub currency_code: CurrencyCode,
    /// The store to buy through: its listing's price, cap and sale flag apply.
    pub store_id: Option<Uuid>,
    pub quantity: Quantity,
    /// The caller's own data, kept with the purchase (in its receipt) and
    /// part of what a retry must repeat.
    pub meta: Option<serde_json::Value>,
    /// Where the purchased items land.
    pub placement: Placement,
    /// The unit price the caller agreed to: a purchase the rules price
    /// otherwise is refused (`PriceChanged`).
    pub expected_unit_price: Option<i64>,
    /// The version (ETag) of the placement's collection the caller last
    /// read: if it changed since, the purchase is refused
    /// (`CollectionChanged`). A precondition, not part of the request a
    /// retry must repeat.
    pub if_match: Option<String>,
    /// Whether the commit also answers with the state it left the
    /// placement's collection in (see [`Economy::purchase_versioned`]).
    /// Not part of the request a retry must repeat.
    pub(crate) answer_state: bool,
}

/// What a purchase did; also what a retry with its key replays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PurchaseReceipt {
    pub purchase_id: Uuid,
    pub item_id: Uuid,
    pub store_id: Option<Uuid>,
    pub quantity: u64,
    pub currency_code: String,
    pub unit_price: i64,
    /// What was charged: `unit_price` times `quantity`.
    pub total: i64,
    /// The balance in `currency_code` after the whole purchase (including
    /// any of that currency a bundle credited).
    pub balance_after: i64,
    /// The balance in `currency_code` before the purchase (absent from
    /// receipts recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_before: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

impl PurchaseRequest {
    /// A purchase into the default stack, at whatever price the rules set.
    pub fn new(item_id: Uuid, currency_code: CurrencyCode, store_id: Option<Uuid>, quantity: Quantity) -> Self {
        Self {
            item_id,
            currency_code,
            store_id,
            quantity,
            meta: None,
            placement: Placement::default(),
            expected_unit_price: None,
            if_match: None,
            answer_state: false,
        }
    }

    /// What a retry must repeat to be the same request: every field but the
    /// idempotency key, with defaults filled in.
    fn canonical(&self) -> serde_json::Value {
        let mut canonical = json!({
            "catalog_item_id": self.item_id,
            "currency_code": self.currency_code.as_str(),
            "store_id": self.store_id,
            "quantity": self.quantity.get(),
        });
        // Each only when given: the hash of a request without them is unchanged.
        if let Some(meta) = &self.meta {
            canonical["meta"] = meta.clone();
        }
        if self.placement != Placement::default() {
            let Placement { stack, display_properties, max_duration_seconds, .. } = &self.placement;
            canonical["placement"] = json!({
                "collection_id": stack.collection_id,
                "stack_id": stack.stack_id,
                "display_properties": display_properties,
                "max_duration_seconds": max_duration_seconds,
            });
        }
        if let Some(price) = self.expected_unit_price {
            canonical["expected_unit_price"] = json!(price);
        }
        canonical
    }

    /// What the host re-checks the guest's effects against.
    fn check(&self) -> PurchaseCheck<'_> {
        PurchaseCheck {
            item_id: self.item_id,
            currency_code: self.currency_code.as_str(),
            quantity: self.quantity.get(),
        }
    }
}

/// A purchase that committed, with the state of the collection it asked
/// for.
type Bought = (PurchaseReceipt, Option<Vec<Held>>);

impl Economy {
    /// Buys an item for `user`: at most once per idempotency key, all or
    /// nothing. The tenant's rules decide the price, cap and eligibility;
    /// the host re-checks what they did before anything commits.
    pub async fn purchase(
        &self,
        user: &User,
        request: &PurchaseRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<Outcome<PurchaseReceipt>, EconomyError> {
        Ok(self.purchase_answering(user, request, key).await?.0)
    }

    /// A purchase answered also with the version (ETag) of the collection
    /// its items went to, as the purchase left it: taken from the
    /// purchase's own commit, read afresh only for a replay.
    pub async fn purchase_versioned(
        &self,
        user: &User,
        request: &PurchaseRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<(Outcome<PurchaseReceipt>, String), EconomyError> {
        let request = PurchaseRequest { answer_state: true, ..request.clone() };
        let (outcome, state) = self.purchase_answering(user, &request, key).await?;
        let version = match state {
            Some(state) => version_of(state),
            None => self.collection_version(user, &request.placement.stack.collection_id).await?,
        };
        Ok((outcome, version))
    }

    /// A purchase; also, if the request asks, the state its commit left the
    /// placement's collection in.
    async fn purchase_answering(
        &self,
        user: &User,
        request: &PurchaseRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<(Outcome<PurchaseReceipt>, Option<Vec<Held>>), EconomyError> {
        self.admit_write(user).await?;
        let keyed = key.map(|key| Keyed::new(key, OPERATION, request.canonical()));
        let store = self.tenant_store(user.tenant_id).await?;
        match self.checked_purchase(&store, user, request, keyed.as_ref()).await {
            Ok(Ended::Committed((receipt, state))) => Ok((Outcome { value: receipt, replayed: false }, state)),
            Ok(Ended::Replayed(outcome)) => Ok((outcome, None)),
            // Whatever refused it, an identical retry of a purchase that
            // committed gets the first answer: the item may have become
            // store-only since, or its store may be gone.
            Err(error) => {
                let outcome =
                    idempotency::after_failure(store.as_ref(), user.id, RecordKind::Purchase, keyed.as_ref(), error)
                        .await?;
                Ok((outcome, None))
            }
        }
    }

    /// The checks a purchase must pass before the rules run, then the
    /// purchase, in the player's turn.
    async fn checked_purchase(
        &self,
        store: &Arc<dyn TenantStore>,
        user: &User,
        request: &PurchaseRequest,
        keyed: Option<&Keyed>,
    ) -> Result<Ended<Bought, PurchaseReceipt>, EconomyError> {
        if let Some(meta) = &request.meta {
            check_storable("meta", meta)?;
        }
        if let Some(properties) = &request.placement.display_properties {
            check_storable("display_properties", properties)?;
        }
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        if request.store_id.is_some_and(|store| tenant.catalog.store(store).is_none()) {
            return Err(EconomyError::not_found("store"));
        }
        let store_only = tenant.catalog.item_by_id(request.item_id).is_some_and(|item| item.store_only);
        let listed =
            request.store_id.is_some_and(|store| tenant.catalog.store_listing(store, request.item_id).is_some());
        if store_only && !listed {
            return Err(EconomyError::NotPurchasable("this item is sold only through a store that lists it"));
        }
        let _turn = self.user_queue.turn(user.id).await;
        self.still_at(user, &request.placement.stack.collection_id, request.if_match.as_deref()).await?;
        let tenant = &tenant;
        let attempt = move |trust| Box::pin(self.buy(store, user, tenant, request, keyed, trust)) as _;
        idempotency::until_committed(store.as_ref(), user.id, RecordKind::Purchase, keyed, attempt).await
    }

    /// The answer of the purchase that committed with `key`, if it was this
    /// same request (none if no purchase used the key): what a retry gets
    /// when what it names is gone.
    pub async fn replay_purchase(
        &self,
        user: &User,
        request: &PurchaseRequest,
        key: IdempotencyKey,
    ) -> Result<Option<Outcome<PurchaseReceipt>>, EconomyError> {
        let keyed = Keyed::new(key, OPERATION, request.canonical());
        let store = self.tenant_store(user.tenant_id).await?;
        match store.idempotency_record(user.id, RecordKind::Purchase, keyed.key.as_str()).await? {
            Some(earlier) => keyed.replay(earlier).map(Some),
            None => Ok(None),
        }
    }

    /// One attempt at a purchase: the rules run on a snapshot of the
    /// player, the host re-checks what they did, and it all commits, or
    /// nothing does.
    async fn buy(
        &self,
        store: &Arc<dyn TenantStore>,
        user: &User,
        tenant: &TenantContext,
        request: &PurchaseRequest,
        keyed: Option<&Keyed>,
        trust_remembered: bool,
    ) -> Result<Attempt<Bought>, EconomyError> {
        let mut snapshot = self.snapshot(store, tenant, user, true, trust_remembered);
        snapshot.answer_collection(request.answer_state.then(|| request.placement.stack.collection_id.clone()));
        let purchase_id = Uuid::now_v7();
        let guest_request = runtime::PurchaseRequest {
            item_id: request.item_id.to_string(),
            currency_code: request.currency_code.to_string(),
            store_id: request.store_id.map(|id| id.to_string()),
            quantity: request.quantity.get(),
        };
        // A bundle's contents remember the purchase they came from.
        let bundle = tenant.catalog.item_by_id(request.item_id).is_some_and(|item| item.item_type == ItemType::Bundle);
        let placement = Placement { bundle_purchase_id: bundle.then_some(purchase_id), ..request.placement.clone() };
        let call = tenant.call(user, purchase_id).placed(placement);
        let Invocation { mut snapshot, journal, result, .. } =
            self.rules.runtime().purchase(call, snapshot, guest_request).await;
        if snapshot.used_remembered() && matches!(result, Ok(Err(_))) {
            return Ok(Attempt::Unconfirmed);
        }
        let sha256 = &tenant.module.sha256;
        let outcome = self.module_answer(user.tenant_id, sha256, "purchase", result)?;
        if request.expected_unit_price.is_some_and(|price| price != outcome.unit_price) {
            return Err(EconomyError::PriceChanged(outcome.unit_price));
        }
        if let Err(reason) =
            journal.check_purchase(&request.check(), outcome.unit_price, outcome.total, outcome.balance_after)
        {
            return Err(self.module_misbehaved(user.tenant_id, sha256, "purchase", &reason));
        }
        let credited = journal.credited(request.currency_code.as_str());
        let receipt = PurchaseReceipt {
            purchase_id,
            item_id: request.item_id,
            store_id: request.store_id,
            quantity: request.quantity.get(),
            currency_code: request.currency_code.to_string(),
            unit_price: outcome.unit_price,
            total: outcome.total,
            balance_after: outcome.balance_after,
            balance_before: Some(outcome.balance_after - credited + outcome.total),
            meta: request.meta.clone(),
        };
        let (record, response) = record(keyed, &receipt)?;
        snapshot.record_purchase(record, response);
        Ok(match snapshot.commit().await? {
            Commit::Done { collection } => Attempt::Done((receipt, collection)),
            Commit::Stale => Attempt::Stale,
        })
    }
}

/// The purchase's record and (with a key) its receipt to replay, for its
/// commit.
fn record(keyed: Option<&Keyed>, receipt: &PurchaseReceipt) -> Result<(PurchaseRecord, StoredResponse), EconomyError> {
    let record = PurchaseRecord {
        id: receipt.purchase_id,
        item_id: receipt.item_id,
        store_id: receipt.store_id,
        quantity: i64::try_from(receipt.quantity).map_err(EconomyError::internal)?,
        currency_code: receipt.currency_code.clone(),
        unit_price: receipt.unit_price,
        total: receipt.total,
        idempotency_key: keyed.map(|keyed| keyed.key.to_string()),
        request_hash: keyed.map(|keyed| keyed.request_hash.clone()).unwrap_or_default(),
    };
    let response = StoredResponse { status: 200, body: serde_json::to_value(receipt).map_err(EconomyError::internal)? };
    Ok((record, response))
}
