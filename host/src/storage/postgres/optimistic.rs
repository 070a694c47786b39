//! Optimistic purchases ([`Storage::begin_optimistic`]): the rules run
//! against the balance this host last saw, with no connection held and no
//! lock taken, and the purchase commits in one statement (with the others
//! waiting, see [`super::batch`]) whose balance update is guarded on that
//! balance being unchanged. When its guard fails, nothing of it is written.

use super::batch::{BatchedPurchase, Debit, Record};
use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// Users whose balances are remembered; past it the memo starts over.
const REMEMBERED_USERS: usize = 100_000;

/// The balances this host last saw committed, by user and currency. A hint
/// only: a stale one fails its guard, and the purchase runs again under
/// locks.
#[derive(Default)]
pub(super) struct SeenBalances {
    users: Mutex<HashMap<Uuid, Vec<(String, i64)>>>,
}

impl SeenBalances {
    fn get(&self, user_id: Uuid, code: &str) -> Option<i64> {
        let users = self.users.lock().expect("seen balances lock");
        users.get(&user_id)?.iter().find(|(seen, _)| seen == code).map(|(_, balance)| *balance)
    }

    pub(super) fn set(&self, user_id: Uuid, code: &str, balance: i64) {
        let mut users = self.users.lock().expect("seen balances lock");
        if users.len() >= REMEMBERED_USERS && !users.contains_key(&user_id) {
            users.clear();
        }
        let balances = users.entry(user_id).or_default();
        match balances.iter_mut().find(|(seen, _)| seen == code) {
            Some(entry) => entry.1 = balance,
            None => balances.push((code.to_owned(), balance)),
        }
    }

    pub(super) fn forget(&self, user_id: Uuid, code: &str) {
        if let Some(balances) = self.users.lock().expect("seen balances lock").get_mut(&user_id) {
            balances.retain(|(seen, _)| seen != code);
        }
    }
}

pub(super) struct OptimisticTx {
    /// The pool, the committers and the remembered balances.
    storage: PgStorage,
    scope: TxScope,
    /// The one currency the guest looked at, with its balance before the debit.
    balance: Option<(String, i64)>,
    debit: Option<Debit>,
    record: Option<Record>,
    unconfirmed: bool,
}

impl OptimisticTx {
    pub(super) fn new(storage: &PgStorage, scope: TxScope) -> Self {
        Self { storage: storage.clone(), scope, balance: None, debit: None, record: None, unconfirmed: false }
    }

    /// Gives up: the request needs more than one guarded statement covers.
    fn abandon(&mut self) -> StorageError {
        self.unconfirmed = true;
        StorageError::Stale
    }

    /// The balance of `code` before this transaction's debit: remembered,
    /// or read (without a lock) on first use. Only one currency is covered,
    /// and not a regenerating one (it must be settled under a lock).
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
        let balance = match self.storage.seen.get(self.scope.user_id, code) {
            Some(balance) => balance,
            // No row yet (or no such currency): the locking path opens it.
            None => sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1 AND currency_code = $2")
                .bind(self.scope.user_id)
                .bind(code)
                .fetch_optional(&self.storage.pool)
                .await?
                .ok_or(StorageError::Stale)?,
        };
        self.balance = Some((code.to_owned(), balance));
        Ok(balance)
    }
}

#[async_trait]
impl Tx for OptimisticTx {
    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        let before = self.balance_before(code).await?;
        Ok(Some(before + self.debit.as_ref().map_or(0, |debit| debit.delta)))
    }

    async fn change_balance(
        &mut self,
        code: &str,
        delta: i64,
        reason: LedgerReason,
        reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>> {
        if delta >= 0 || self.debit.is_some() {
            return Err(self.abandon());
        }
        let before = self.balance_before(code).await?;
        // A refusal here is unconfirmed: the caller repeats it under locks.
        let Some(after) = before.checked_add(delta).filter(|after| *after >= 0) else {
            return Ok(Err(WalletRefusal::InsufficientBalance));
        };
        self.debit = Some(Debit { delta, reason, reference: reference.map(str::to_owned) });
        Ok(Ok(after))
    }

    async fn quantity(&mut self, _item_id: Uuid) -> StorageResult<i64> {
        Err(self.abandon())
    }

    async fn grant_items(&mut self, _grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
        Err(self.abandon())
    }

    async fn consume(&mut self, _item_id: Uuid, _quantity: i64) -> StorageResult<Result<i64, InventoryRefusal>> {
        Err(self.abandon())
    }

    async fn item_purchases(&mut self, _item_id: Uuid) -> StorageResult<i64> {
        Err(self.abandon())
    }

    async fn listing_purchases(&mut self, _store_id: Uuid, _item_id: Uuid) -> StorageResult<i64> {
        Err(self.abandon())
    }

    async fn claim_listing(
        &mut self,
        _store_id: Uuid,
        _item_id: Uuid,
        _quantity: i64,
        _cap: i64,
    ) -> StorageResult<Option<i64>> {
        Err(self.abandon())
    }

    async fn record_purchase(
        &mut self,
        purchase: &PurchaseRecord,
        grants: &[NewGrant],
        response: &StoredResponse,
    ) -> StorageResult<Recorded> {
        // Without a debit (a free item) `commit` gives up, and the purchase
        // runs again under locks.
        self.record = Some(Record { purchase: purchase.clone(), grants: grants.to_vec(), response: response.clone() });
        Ok(Recorded::Done)
    }

    async fn record_request(&mut self, _key: &str, _hash: &[u8], _response: &StoredResponse) -> StorageResult<bool> {
        Err(self.abandon())
    }

    async fn record_consume(&mut self, _id: Uuid, _item: Uuid, _quantity: i64, _remaining: i64) -> StorageResult<()> {
        Err(self.abandon())
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        let Self { storage, scope, balance, debit, record, .. } = *self;
        let (Some((currency_code, before)), Some(debit), Some(record)) = (balance, debit, record) else {
            return Err(StorageError::Stale);
        };
        let TxScope { tenant_id, user_id, module_sha256, .. } = scope;
        let purchase = BatchedPurchase { tenant_id, user_id, module_sha256, currency_code, before, debit, record };
        match storage.committers.commit(purchase).await? {
            true => Ok(()),
            false => Err(StorageError::Stale),
        }
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        Ok(())
    }

    fn unconfirmed(&self) -> bool {
        self.unconfirmed
    }
}
