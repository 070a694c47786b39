//! One request's transaction in PostgreSQL, for one player: balances
//! (settled first when they regenerate), stacks, purchase history, and the
//! records of what the request did.

use super::super::*;
use super::{PgTenant, begin};

use super::super::seen::SeenBalances;
use super::players::{attributes, open_balance};
use super::reads::collection_states;
use super::rows::{GrantColumns, IdempotencyColumns, stack_from_row};
use sqlx::{Postgres, Row, Transaction};
use std::sync::Arc;

/// How often a balance change retries after its row appeared or changed
/// between the fast path and the check of why it did not apply.
const BALANCE_ATTEMPTS: usize = 3;

pub(super) struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    tenant_id: Uuid,
    scope: TxScope,
    seen: Arc<SeenBalances>,
    /// Balances this transaction left, remembered once it commits.
    balances_after: Vec<(String, i64)>,
}

impl PgTenant {
    pub(super) async fn begin_pg(&self, scope: TxScope) -> StorageResult<PgTx> {
        let tx = begin(&self.db.pool).await?;
        Ok(PgTx { tx, tenant_id: self.tenant_id, scope, seen: self.db.seen.clone(), balances_after: Vec::new() })
    }

    /// A guarded purchase in a transaction of its own: the debit only if
    /// the balance is still the one the rules saw, then the record. Stale
    /// (nothing written) when the balance moved or the key was taken.
    pub(super) async fn commit_guarded_alone(&self, purchase: GuardedPurchase) -> StorageResult<Guarded> {
        let scope = TxScope {
            user_id: purchase.user_id,
            module_sha256: purchase.module_sha256.clone(),
            recharging: Arc::from(Vec::<String>::new()),
            collection: purchase.collection.clone(),
        };
        let mut tx = self.begin_pg(scope).await?;
        let after: Option<i64> = sqlx::query_scalar(
            "WITH changed AS (
                UPDATE balances SET balance = balance + $3, updated_at = now()
                WHERE user_id = $1 AND currency_code = $2 AND balance = $4
                RETURNING balance
             ), entry AS (
                INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256)
                SELECT $1, $5, $2, $3, balance, $6, $7, $8 FROM changed
             )
             SELECT balance FROM changed",
        )
        .bind(purchase.user_id)
        .bind(&purchase.currency_code)
        .bind(purchase.delta)
        .bind(purchase.before)
        .bind(Uuid::now_v7())
        .bind(purchase.reason.as_str())
        .bind(&purchase.reference)
        .bind(&purchase.module_sha256)
        .fetch_optional(&mut *tx.tx)
        .await?;
        let recorded = match after {
            Some(_) => tx.record_purchase(&purchase.record, &purchase.grants, &purchase.response).await?,
            None => Recorded::KeyTaken,
        };
        match (after, recorded) {
            (Some(balance_after), Recorded::Done) => {
                tx.balances_after.push((purchase.currency_code, balance_after));
                let collection = Box::new(tx).commit().await?;
                Ok(Guarded::Committed { balance_after, collection })
            }
            _ => {
                tx.tx.rollback().await?;
                self.db.seen.forget(purchase.user_id, &purchase.currency_code);
                Ok(Guarded::Stale)
            }
        }
    }
}

impl PgTx {
    /// Settles the user's balance of `code` if the currency regenerates,
    /// opening it first if the user never held it. The only place that
    /// settles one user: every read and change of a balance calls it.
    pub(super) async fn settle(&mut self, code: &str) -> StorageResult<()> {
        if !self.scope.recharging.iter().any(|recharging| recharging == code) {
            return Ok(());
        }
        for _ in 0..2 {
            let found: i64 = sqlx::query_scalar(settle_statement!("balances b", "b.user_id = $2", "$5::uuid"))
                .bind(self.tenant_id)
                .bind(self.scope.user_id)
                .bind(code)
                .bind(Utc::now())
                .bind(Uuid::now_v7())
                .fetch_one(&mut *self.tx)
                .await?;
            if found > 0 {
                return Ok(());
            }
            open_balance(&mut self.tx, self.tenant_id, self.scope.user_id, code).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn attributes(&mut self) -> StorageResult<Attributes> {
        Ok(attributes(&mut *self.tx, self.tenant_id, self.scope.user_id).await?)
    }

    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        self.settle(code).await?;
        let balance = sqlx::query_scalar(
            "SELECT COALESCE(b.balance, c.initial_balance) FROM currencies c
             LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
             WHERE c.tenant_id = $1 AND c.code = $3",
        )
        .bind(self.tenant_id)
        .bind(self.scope.user_id)
        .bind(code)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(balance)
    }

    async fn change_balance(
        &mut self,
        code: &str,
        delta: i64,
        reason: LedgerReason,
        reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>> {
        self.settle(code).await?;
        let now = Utc::now();
        // Fast path: one statement locks the row, checks both bounds (the
        // WHERE clause is re-checked on the latest row version after a lock
        // wait), updates it and appends the ledger entry.
        for _ in 0..BALANCE_ATTEMPTS {
            let after: Option<i64> = sqlx::query_scalar(
                "WITH changed AS (
                    UPDATE balances b SET balance = b.balance + $3, updated_at = $9,
                      -- A regenerating balance's clock runs only below its max
                      -- (the balance was settled just before this).
                      recharged_at = CASE WHEN c.recharge_amount IS NULL OR b.balance + $3 >= c.recharge_max THEN NULL
                                          ELSE COALESCE(b.recharged_at, $9) END
                    FROM currencies c
                    WHERE b.user_id = $2 AND b.currency_code = $4 AND c.tenant_id = $1 AND c.code = $4
                      AND CASE WHEN $3 < 0 THEN b.balance >= -$3
                               ELSE b.balance <= 9223372036854775807 - $3 AND (c.max_balance IS NULL OR b.balance <= c.max_balance - $3) END
                    RETURNING b.balance
                 ), entry AS (
                    INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256)
                    SELECT $2, $5, $4, $3, balance, $6, $7, $8 FROM changed
                 )
                 SELECT balance FROM changed",
            )
            .bind(self.tenant_id)
            .bind(self.scope.user_id)
            .bind(delta)
            .bind(code)
            .bind(Uuid::now_v7())
            .bind(reason.as_str())
            .bind(reference)
            .bind(&self.scope.module_sha256)
            .bind(now)
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(after) = after {
                self.balances_after.retain(|(changed, _)| changed != code);
                self.balances_after.push((code.to_owned(), after));
                return Ok(Ok(after));
            }
            // Slow path: find out why, opening the balance row on first use.
            let row = sqlx::query(
                "SELECT c.max_balance, b.balance FROM currencies c
                 LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
                 WHERE c.tenant_id = $1 AND c.code = $3",
            )
            .bind(self.tenant_id)
            .bind(self.scope.user_id)
            .bind(code)
            .fetch_optional(&mut *self.tx)
            .await?;
            let Some(row) = row else {
                return Ok(Err(WalletRefusal::UnknownCurrency));
            };
            let max_balance: Option<i64> = row.try_get("max_balance")?;
            let Some(balance) = row.try_get::<Option<i64>, _>("balance")? else {
                open_balance(&mut self.tx, self.tenant_id, self.scope.user_id, code).await?;
                continue;
            };
            let after = balance.checked_add(delta);
            if delta < 0 && after.is_none_or(|after| after < 0) {
                return Ok(Err(WalletRefusal::InsufficientBalance));
            }
            if delta > 0 && after.is_none_or(|after| max_balance.is_some_and(|max| after > max)) {
                return Ok(Err(WalletRefusal::MaxBalanceExceeded));
            }
            // Otherwise a concurrent change made room in between: try again.
        }
        Err(StorageError::Busy("the balance row kept changing".into()))
    }

    async fn quantity(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let quantity = sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0)::bigint FROM inventory
             WHERE user_id = $1 AND item_id = $2 AND (expires_at IS NULL OR expires_at > now())",
        )
        .bind(self.scope.user_id)
        .bind(item_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(quantity)
    }

    async fn grant_items(&mut self, grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
        let columns = GrantColumns::new(grants);
        // Only items of this tenant's catalog are granted; a short count
        // means an unknown item, and the caller rolls the transaction back.
        let rows = sqlx::query(concat!(
            grant_statement!(),
            " RETURNING item_id, collection_id, stack_id, quantity, acquired_via, acquired_at, expires_at"
        ))
        .bind(self.tenant_id)
        .bind(self.scope.user_id)
        .bind(&columns.ids)
        .bind(&columns.quantities)
        .bind(&columns.vias)
        .bind(&columns.durations)
        .bind(&columns.collections)
        .bind(&columns.stacks)
        .bind(&columns.displays)
        .bind(&columns.bundles)
        .fetch_all(&mut *self.tx)
        .await?;
        if rows.len() != grants.len() {
            return Ok(Err(InventoryRefusal::UnknownItem));
        }
        Ok(Ok(rows.iter().map(stack_from_row).collect::<Result<_, _>>()?))
    }

    async fn consume(
        &mut self,
        item_id: Uuid,
        stack: &StackKey,
        quantity: i64,
    ) -> StorageResult<Result<i64, InventoryRefusal>> {
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE inventory SET quantity = quantity - $3
             WHERE user_id = $1 AND item_id = $2 AND collection_id = $4 AND stack_id = $5
               AND quantity >= $3 AND (expires_at IS NULL OR expires_at > now())
             RETURNING quantity",
        )
        .bind(self.scope.user_id)
        .bind(item_id)
        .bind(quantity)
        .bind(&stack.collection_id)
        .bind(&stack.stack_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(left.ok_or(InventoryRefusal::InsufficientQuantity))
    }

    async fn item_purchases(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let count = sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0)::bigint FROM purchases WHERE user_id = $1 AND item_id = $2",
        )
        .bind(self.scope.user_id)
        .bind(item_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(count)
    }

    async fn listing_purchases(&mut self, store_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT purchased FROM listing_purchases WHERE user_id = $1 AND store_id = $2 AND item_id = $3",
        )
        .bind(self.scope.user_id)
        .bind(store_id)
        .bind(item_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(count.unwrap_or(0))
    }

    async fn claim_listing(
        &mut self,
        store_id: Uuid,
        item_id: Uuid,
        quantity: i64,
        cap: i64,
    ) -> StorageResult<Option<i64>> {
        if quantity > cap {
            return Ok(None);
        }
        // On conflict the WHERE clause is evaluated on the locked, latest
        // row, so concurrent claims never pass the cap together.
        let total = sqlx::query_scalar(
            "INSERT INTO listing_purchases AS l (user_id, store_id, item_id, purchased) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, store_id, item_id) DO UPDATE SET purchased = l.purchased + excluded.purchased
             WHERE l.purchased + excluded.purchased <= $5
             RETURNING purchased",
        )
        .bind(self.scope.user_id)
        .bind(store_id)
        .bind(item_id)
        .bind(quantity)
        .bind(cap)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(total)
    }

    async fn record_purchase(
        &mut self,
        p: &PurchaseRecord,
        grants: &[NewGrant],
        response: &StoredResponse,
    ) -> StorageResult<Recorded> {
        let grants = GrantColumns::new(grants);
        let idempotency = IdempotencyColumns::new(p, response);
        let row = sqlx::query(concat!(
            "WITH granted AS (",
            grant_statement!(),
            " RETURNING 1
             ), recorded AS (
                INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
                                       idempotency_key, request_hash, response_status, response_body, module_sha256)
                VALUES ($2, $11, $12, $13, $14, $15, $16, $21, $17, $18, $19, $20, $22)
                ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING 1
             )
             SELECT (SELECT count(*) FROM granted) AS granted, (SELECT count(*) FROM recorded) AS recorded"
        ))
        .bind(self.tenant_id)
        .bind(self.scope.user_id)
        .bind(&grants.ids)
        .bind(&grants.quantities)
        .bind(&grants.vias)
        .bind(&grants.durations)
        .bind(&grants.collections)
        .bind(&grants.stacks)
        .bind(&grants.displays)
        .bind(&grants.bundles)
        .bind(p.id)
        .bind(p.item_id)
        .bind(p.store_id)
        .bind(p.quantity)
        .bind(&p.currency_code)
        .bind(p.unit_price)
        .bind(&p.idempotency_key)
        .bind(idempotency.request_hash)
        .bind(idempotency.status)
        .bind(idempotency.body)
        .bind(p.total)
        .bind(&self.scope.module_sha256)
        .fetch_one(&mut *self.tx)
        .await?;
        let granted: i64 = row.try_get("granted")?;
        let recorded: i64 = row.try_get("recorded")?;
        Ok(if granted != grants.ids.len() as i64 {
            Recorded::UnknownItem
        } else if recorded == 0 {
            Recorded::KeyTaken
        } else {
            Recorded::Done
        })
    }

    async fn record_request(
        &mut self,
        key: &str,
        request_hash: &[u8],
        response: &StoredResponse,
    ) -> StorageResult<bool> {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_records (user_id, key, request_hash, response_body) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(self.scope.user_id)
        .bind(key)
        .bind(request_hash)
        .bind(&response.body)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(claimed.is_some())
    }

    async fn record_consume(&mut self, id: Uuid, item_id: Uuid, quantity: i64, remaining: i64) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO consumes (user_id, id, item_id, quantity, remaining, module_sha256) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.scope.user_id)
        .bind(id)
        .bind(item_id)
        .bind(quantity)
        .bind(remaining)
        .bind(self.scope.module_sha256.as_deref().unwrap_or(""))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> StorageResult<Option<Vec<Held>>> {
        let collection = match self.scope.collection.as_deref() {
            Some(collection) => {
                let wanted = [(self.scope.user_id, collection)];
                collection_states(&mut *self.tx, &wanted).await?.pop()
            }
            None => None,
        };
        self.tx.commit().await?;
        for (code, balance) in &self.balances_after {
            self.seen.set(self.scope.user_id, code, *balance);
        }
        Ok(collection)
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
