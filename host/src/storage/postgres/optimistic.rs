//! Optimistic purchases ([`Storage::begin_optimistic`]): the rules run
//! against the balance this host last saw, with no connection held and no
//! lock taken, and the purchase commits as one statement whose balance
//! update is guarded on that balance being unchanged. One statement in
//! autocommit is the whole transaction: when its guard fails, nothing of it
//! is written.

use super::*;
use sqlx::pool::PoolConnection;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

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

    fn forget(&self, user_id: Uuid, code: &str) {
        if let Some(balances) = self.users.lock().expect("seen balances lock").get_mut(&user_id) {
            balances.retain(|(seen, _)| seen != code);
        }
    }
}

/// Connections held out of the pool for optimistic purchases. sqlx pings a
/// connection every time it goes back to its pool: a round trip per request
/// on a path that is otherwise one. Here a connection goes back to the
/// kept set only after its statement ran to the end; one dropped
/// mid-statement (a cancelled request) or after an error goes back to the
/// pool, whose ping resynchronises or discards it. Purchases take turns
/// (first come, first served) for at most half the pool, so transactions
/// always find connections.
pub(super) struct KeptConnections {
    idle: Mutex<Vec<PoolConnection<Postgres>>>,
    turns: Semaphore,
}

/// A kept connection, and the turn that holds it.
struct Kept<'a> {
    connection: PoolConnection<Postgres>,
    _turn: SemaphorePermit<'a>,
}

impl KeptConnections {
    pub(super) fn new(pool_size: u32) -> Self {
        Self { idle: Mutex::default(), turns: Semaphore::new((pool_size as usize / 2).max(1)) }
    }

    async fn take(&self, pool: &PgPool) -> Result<Kept<'_>, sqlx::Error> {
        let turn = self.turns.acquire().await.expect("the turns semaphore is never closed");
        let kept = self.idle.lock().expect("kept connections lock").pop();
        let connection = match kept {
            Some(connection) => connection,
            None => pool.acquire().await?,
        };
        Ok(Kept { connection, _turn: turn })
    }

    fn keep(&self, kept: Kept<'_>, pool: &PgPool) {
        if !pool.is_closed() {
            self.idle.lock().expect("kept connections lock").push(kept.connection);
        }
    }

    /// Gives every kept connection back to the pool.
    pub(super) fn release(&self) {
        self.idle.lock().expect("kept connections lock").clear();
    }
}

/// The one balance change an optimistic purchase makes.
struct Debit {
    delta: i64,
    reason: LedgerReason,
    reference: Option<String>,
}

/// What the purchase record statement writes besides the debit.
struct Record {
    purchase: PurchaseRecord,
    grants: Vec<NewGrant>,
    response: StoredResponse,
}

pub(super) struct OptimisticTx {
    /// The pool, the kept connections and the remembered balances.
    storage: PgStorage,
    tenant_id: Uuid,
    user_id: Uuid,
    module_sha256: Option<String>,
    /// The one currency the guest looked at, with its balance before the debit.
    balance: Option<(String, i64)>,
    debit: Option<Debit>,
    record: Option<Record>,
    unconfirmed: bool,
}

impl OptimisticTx {
    pub(super) fn new(storage: &PgStorage, tenant_id: Uuid, user_id: Uuid, module_sha256: Option<&str>) -> Self {
        Self {
            storage: storage.clone(),
            tenant_id,
            user_id,
            module_sha256: module_sha256.map(str::to_owned),
            balance: None,
            debit: None,
            record: None,
            unconfirmed: false,
        }
    }

    /// Gives up: the request needs more than one guarded statement covers.
    fn abandon(&mut self) -> StorageError {
        self.unconfirmed = true;
        StorageError::Stale
    }

    /// The balance of `code` before this transaction's debit: remembered,
    /// or read (without a lock) on first use. Only one currency is covered.
    async fn balance_before(&mut self, code: &str) -> StorageResult<i64> {
        self.unconfirmed = true;
        match &self.balance {
            Some((seen, balance)) if seen == code => return Ok(*balance),
            Some(_) => return Err(StorageError::Stale),
            None => {}
        }
        let balance = match self.storage.seen.get(self.user_id, code) {
            Some(balance) => balance,
            // No row yet (or no such currency): the locking path opens it.
            None => sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1 AND currency_code = $2")
                .bind(self.user_id)
                .bind(code)
                .fetch_optional(&self.storage.pool)
                .await?
                .ok_or(StorageError::Stale)?,
        };
        self.balance = Some((code.to_owned(), balance));
        Ok(balance)
    }

    /// The purchase in one statement. The debit is guarded on the balance
    /// the rules saw and on every granted item being in the tenant's
    /// catalog; everything else is written only if the debit was.
    async fn commit_purchase(&self, code: &str, before: i64, debit: &Debit, record: &Record) -> StorageResult<()> {
        let grants = GrantColumns::new(&record.grants);
        let p = &record.purchase;
        let mut kept = self.storage.connections.take(&self.storage.pool).await?;
        let row = sqlx::query(concat!(
            "WITH changed AS (
                UPDATE balances SET balance = balance + $8, updated_at = now()
                WHERE user_id = $2 AND currency_code = $7 AND balance = $9
                  AND (SELECT count(*) FROM catalog_items WHERE tenant_id = $1 AND id = ANY($3)) = cardinality($3)
                RETURNING balance
             ), entry AS (
                INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256)
                SELECT $2, $10, $7, $8, balance, $11, $12, $13 FROM changed
             ), claimed AS (
                INSERT INTO idempotency_keys (user_id, key, request_hash, response_status, response_body)
                SELECT $2, $14, $15, $16, $17 FROM changed WHERE $14::text IS NOT NULL
             ), granted AS (",
            grant_statement!("WHERE EXISTS (SELECT 1 FROM changed)"),
            " RETURNING 1
             ), recorded AS (
                INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
                                       idempotency_key, module_sha256)
                SELECT $2, $18, $19, $20, $21, $22, $23, $24, $14, $13 FROM changed
             )
             SELECT (SELECT balance FROM changed) AS after,
                    (SELECT balance FROM balances WHERE user_id = $2 AND currency_code = $7) AS current"
        ))
        .bind(self.tenant_id)
        .bind(self.user_id)
        .bind(&grants.ids)
        .bind(&grants.quantities)
        .bind(&grants.vias)
        .bind(&grants.durations)
        .bind(code)
        .bind(debit.delta)
        .bind(before)
        .bind(Uuid::now_v7())
        .bind(debit.reason.as_str())
        .bind(&debit.reference)
        .bind(&self.module_sha256)
        .bind(&p.idempotency_key)
        .bind(&p.request_hash)
        .bind(i16::try_from(record.response.status).unwrap_or(200))
        .bind(&record.response.body)
        .bind(p.id)
        .bind(p.item_id)
        .bind(p.store_id)
        .bind(p.quantity)
        .bind(&p.currency_code)
        .bind(p.unit_price)
        .bind(p.total)
        .fetch_one(&mut *kept.connection)
        .await
        .map_err(conflict("idempotency key"))?;
        self.storage.connections.keep(kept, &self.storage.pool);
        if let Some(after) = row.try_get::<Option<i64>, _>("after")? {
            self.storage.seen.set(self.user_id, code, after);
            return Ok(());
        }
        // The balance moved under the rules (another host, a grant): the
        // next request starts from what it is now.
        match row.try_get::<Option<i64>, _>("current")? {
            Some(current) => self.storage.seen.set(self.user_id, code, current),
            None => self.storage.seen.forget(self.user_id, code),
        }
        Err(StorageError::Stale)
    }
}

#[async_trait]
impl Tx for OptimisticTx {
    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        let before = self.balance_before(code).await?;
        Ok(Some(before + self.debit.as_ref().map_or(0, |debit| debit.delta)))
    }

    async fn settle_recharge(&mut self, _code: &str) -> StorageResult<()> {
        Err(self.abandon())
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

    async fn record_consume(&mut self, _id: Uuid, _item: Uuid, _quantity: i64, _remaining: i64) -> StorageResult<()> {
        Err(self.abandon())
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        match (&self.balance, &self.debit, &self.record) {
            (Some((code, before)), Some(debit), Some(record)) => {
                self.commit_purchase(code, *before, debit, record).await
            }
            (_, None, None) => Ok(()),
            _ => Err(StorageError::Stale),
        }
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        Ok(())
    }

    fn unconfirmed(&self) -> bool {
        self.unconfirmed
    }
}
