//! The optimistic attempt at a purchase: the rules run against the balance
//! this host last saw ([`TenantStore::remembered_balance`]), with no
//! connection held and no lock taken, and what they did commits in one
//! guarded statement ([`TenantStore::commit_guarded`]), shared with the
//! other purchases waiting to commit. It covers what most purchases do: one
//! debit of one currency that does not regenerate, and the purchase record
//! with its grants. When the rules ask for anything else, this transaction
//! answers [`StorageError::Stale`] (the guest is trapped with it, nothing is
//! written) and the purchase runs again under row locks; so does a refusal
//! that rested on the remembered balance.

use crate::storage::{
    Attributes, Guarded, GuardedPurchase, Held, InventoryRefusal, LedgerReason, NewGrant, PurchaseRecord, Recorded,
    Stack, StackKey, StorageError, StorageResult, StoredResponse, TenantStore, Tx, TxScope, WalletRefusal,
};
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

pub struct OptimisticTx {
    store: Arc<dyn TenantStore>,
    scope: TxScope,
    /// The one currency the guest looked at, with its balance before the debit.
    balance: Option<(String, i64)>,
    /// The one debit: `(delta, reason, reference)`.
    debit: Option<(i64, LedgerReason, Option<String>)>,
    record: Option<(PurchaseRecord, Vec<NewGrant>, StoredResponse)>,
    unconfirmed: bool,
}

impl OptimisticTx {
    pub fn new(store: Arc<dyn TenantStore>, scope: TxScope) -> Self {
        Self { store, scope, balance: None, debit: None, record: None, unconfirmed: false }
    }

    /// Gives up: the request needs more than one guarded statement covers.
    fn stale(&mut self) -> StorageError {
        self.unconfirmed = true;
        StorageError::Stale
    }

    /// The balance of `code` before this attempt's debit: remembered, or
    /// read without a lock on first use. Only one currency is covered, and
    /// not a regenerating one (it is settled under a lock).
    async fn balance_before(&mut self, code: &str) -> StorageResult<i64> {
        self.unconfirmed = true;
        if self.scope.recharging.iter().any(|recharging| recharging == code) {
            return Err(StorageError::Stale);
        }
        match &self.balance {
            Some((seen, balance)) if seen == code => return Ok(*balance),
            Some(_) => return Err(StorageError::Stale),
            None => {}
        }
        // No balance yet (or no such currency): the locking path opens it.
        let balance = self.store.remembered_balance(self.scope.user_id, code).await?.ok_or(StorageError::Stale)?;
        self.balance = Some((code.to_owned(), balance));
        Ok(balance)
    }
}

#[async_trait]
impl Tx for OptimisticTx {
    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        let before = self.balance_before(code).await?;
        Ok(Some(before + self.debit.as_ref().map_or(0, |(delta, _, _)| *delta)))
    }

    async fn change_balance(
        &mut self,
        code: &str,
        delta: i64,
        reason: LedgerReason,
        reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>> {
        if delta >= 0 || self.debit.is_some() {
            return Err(self.stale());
        }
        let before = self.balance_before(code).await?;
        // A refusal here is unconfirmed: the caller repeats it under locks.
        let Some(after) = before.checked_add(delta).filter(|after| *after >= 0) else {
            return Ok(Err(WalletRefusal::InsufficientBalance));
        };
        self.debit = Some((delta, reason, reference.map(str::to_owned)));
        Ok(Ok(after))
    }

    /// Read as the locking path reads them: attributes are never locked.
    async fn attributes(&mut self) -> StorageResult<Attributes> {
        self.store.attributes(self.scope.user_id).await
    }

    async fn quantity(&mut self, _item_id: Uuid) -> StorageResult<i64> {
        Err(self.stale())
    }

    async fn grant_items(&mut self, _grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
        Err(self.stale())
    }

    async fn consume(&mut self, _: Uuid, _: &StackKey, _: i64) -> StorageResult<Result<i64, InventoryRefusal>> {
        Err(self.stale())
    }

    async fn item_purchases(&mut self, _item_id: Uuid) -> StorageResult<i64> {
        Err(self.stale())
    }

    async fn listing_purchases(&mut self, _store_id: Uuid, _item_id: Uuid) -> StorageResult<i64> {
        Err(self.stale())
    }

    async fn claim_listing(
        &mut self,
        _store_id: Uuid,
        _item_id: Uuid,
        _quantity: i64,
        _cap: i64,
    ) -> StorageResult<Option<i64>> {
        Err(self.stale())
    }

    async fn record_purchase(
        &mut self,
        purchase: &PurchaseRecord,
        grants: &[NewGrant],
        response: &StoredResponse,
    ) -> StorageResult<Recorded> {
        // Without a debit (a free item) `commit` gives up, and the purchase
        // runs again under locks.
        self.record = Some((purchase.clone(), grants.to_vec(), response.clone()));
        Ok(Recorded::Done)
    }

    async fn record_request(&mut self, _key: &str, _hash: &[u8], _response: &StoredResponse) -> StorageResult<bool> {
        Err(self.stale())
    }

    async fn record_consume(&mut self, _id: Uuid, _item: Uuid, _quantity: i64, _remaining: i64) -> StorageResult<()> {
        Err(self.stale())
    }

    async fn commit(self: Box<Self>) -> StorageResult<Option<Vec<Held>>> {
        let Self { store, scope, balance, debit, record, .. } = *self;
        let (Some((currency_code, before)), Some((delta, reason, reference)), Some((record, grants, response))) =
            (balance, debit, record)
        else {
            return Err(StorageError::Stale);
        };
        let purchase = GuardedPurchase {
            user_id: scope.user_id,
            module_sha256: scope.module_sha256,
            currency_code,
            before,
            delta,
            reason,
            reference,
            record,
            grants,
            response,
            collection: scope.collection,
        };
        match store.commit_guarded(purchase).await? {
            Guarded::Committed { collection, .. } => Ok(collection),
            Guarded::Stale => Err(StorageError::Stale),
        }
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        Ok(())
    }

    fn unconfirmed(&self) -> bool {
        self.unconfirmed
    }
}
