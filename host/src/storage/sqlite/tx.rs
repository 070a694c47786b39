//! One request's transaction in SQLite, for one player, and the writes it
//! shares with the committer and the catalog: opening and settling
//! balances, granting, recording a purchase. Each runs inside a write
//! transaction, which has the file to itself.

use super::super::seen::SeenBalances;
use super::super::*;
use super::reads::collection_states;
use super::rows::stack_from_row;
use super::{SqliteTenant, Writing, now};
use sqlx::types::Json;
use sqlx::{Row, SqliteConnection};
use std::sync::Arc;

const MICROS: i64 = 1_000_000;

pub(super) struct SqliteTx {
    write: Writing,
    tenant_id: Uuid,
    scope: TxScope,
    seen: Arc<SeenBalances>,
    /// Balances this transaction left, remembered once it commits.
    balances_after: Vec<(String, i64)>,
}

impl SqliteTenant {
    pub(super) async fn begin_sqlite(&self, scope: TxScope) -> StorageResult<SqliteTx> {
        let write = self.db.write().await?;
        Ok(SqliteTx { write, tenant_id: self.tenant_id, scope, seen: self.db.seen.clone(), balances_after: Vec::new() })
    }
}

/// A regenerating balance as stored, with its currency's recharge.
struct Regenerating {
    balance: i64,
    recharged_at: Option<i64>,
    amount: i64,
    period_seconds: i64,
    max: i64,
    since: i64,
}

/// A settled regenerating balance: what to store, and what it gained.
#[derive(Debug, PartialEq, Eq)]
struct Settled {
    balance: i64,
    recharged_at: Option<i64>,
    gained: i64,
}

impl Regenerating {
    /// The balance settled at `now`: below its max it gains `amount` for
    /// each whole period its clock ran (up to the max); the clock advances
    /// by those periods and stops (`None`) at the max. A clock starts no
    /// earlier than the recharge's `since`. `None` if nothing changes.
    fn settle(&self, now: i64) -> Option<Settled> {
        let start = self.recharged_at.unwrap_or(self.since).max(self.since);
        let periods = if self.balance >= self.max {
            0
        } else {
            let elapsed = ((now - start) / (self.period_seconds * MICROS)).max(0);
            elapsed.min((self.max - self.balance + self.amount - 1) / self.amount)
        };
        let reached = self.balance + periods * self.amount;
        let clock = (reached < self.max).then(|| start + periods * self.period_seconds * MICROS);
        let stopped = (self.balance < self.max).then_some(start);
        if periods == 0 && self.recharged_at == stopped {
            return None;
        }
        let balance = reached.min(self.max.max(self.balance));
        Some(Settled { balance, recharged_at: clock, gained: balance - self.balance })
    }
}

/// Settles the user's balance of `code` if its currency regenerates;
/// false if the user holds no such balance (nothing done).
pub(super) async fn settle(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    code: &str,
) -> StorageResult<bool> {
    let row = sqlx::query(
        "SELECT b.balance, b.recharged_at, c.recharge_amount, c.recharge_period_seconds, c.recharge_max, c.recharge_since
         FROM balances b JOIN currencies c ON c.tenant_id = $1 AND c.code = b.currency_code
         WHERE b.user_id = $2 AND b.currency_code = $3 AND c.recharge_amount IS NOT NULL",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(code)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let regenerating = Regenerating {
        balance: row.try_get("balance")?,
        recharged_at: row.try_get("recharged_at")?,
        amount: row.try_get("recharge_amount")?,
        period_seconds: row.try_get("recharge_period_seconds")?,
        max: row.try_get("recharge_max")?,
        since: row.try_get("recharge_since")?,
    };
    let now = now();
    let Some(settled) = regenerating.settle(now) else { return Ok(true) };
    sqlx::query(
        "UPDATE balances SET balance = $3, recharged_at = $4, updated_at = $5 WHERE user_id = $1 AND currency_code = $2",
    )
    .bind(user_id)
    .bind(code)
    .bind(settled.balance)
    .bind(settled.recharged_at)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    if settled.gained > 0 {
        append_ledger(connection, user_id, code, settled.gained, settled.balance, "recharge", None, None).await?;
    }
    Ok(true)
}

/// Settles the user's balance of `code` if its currency regenerates,
/// opening it first if the user never held it. Every read and change of a
/// regenerating balance calls it first.
pub(super) async fn settle_opening(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    code: &str,
) -> StorageResult<()> {
    if !settle(connection, tenant_id, user_id, code).await? {
        open_balance(connection, tenant_id, user_id, code).await?;
        settle(connection, tenant_id, user_id, code).await?;
    }
    Ok(())
}

/// The attributes of the tenant's player `user_id` (empty if none).
pub(super) async fn attributes<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<Attributes, sqlx::Error> {
    let found: Option<Json<Attributes>> =
        sqlx::query_scalar("SELECT attributes FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(executor)
            .await?;
    Ok(found.map(|Json(attributes)| attributes).unwrap_or_default())
}

/// Creates the user's balance row for `code` at the currency's initial
/// balance, with its ledger entry. Does nothing if the row exists or the
/// currency does not. A regenerating balance opened below its max accrues
/// from when the user, or the currency's recharge, came to be.
pub(super) async fn open_balance(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    code: &str,
) -> StorageResult<()> {
    let opened: Option<i64> = sqlx::query_scalar(
        "INSERT INTO balances (user_id, currency_code, balance, recharged_at, updated_at)
         SELECT $2, c.code, c.initial_balance,
                CASE WHEN c.initial_balance < c.recharge_max THEN max(c.recharge_since, u.created_at) END, $4
         FROM currencies c JOIN users u ON u.id = $2 AND u.tenant_id = $1
         WHERE c.tenant_id = $1 AND c.code = $3
         ON CONFLICT DO NOTHING
         RETURNING balance",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(code)
    .bind(now())
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(balance) = opened.filter(|balance| *balance > 0) {
        append_ledger(connection, user_id, code, balance, balance, "grant", Some("initial_balance"), None).await?;
    }
    Ok(())
}

/// Appends a ledger entry.
#[allow(clippy::too_many_arguments)]
pub(super) async fn append_ledger(
    connection: &mut SqliteConnection,
    user_id: Uuid,
    code: &str,
    delta: i64,
    balance_after: i64,
    reason: &str,
    reference: Option<&str>,
    module_sha256: Option<&str>,
) -> StorageResult<()> {
    sqlx::query(
        "INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(user_id)
    .bind(Uuid::now_v7())
    .bind(code)
    .bind(delta)
    .bind(balance_after)
    .bind(reason)
    .bind(reference)
    .bind(module_sha256)
    .bind(now())
    .execute(connection)
    .await?;
    Ok(())
}

/// Grants into their stacks (see `stack_upsert!`): all, or (an item
/// not in the tenant's catalog) none.
pub(super) async fn grant(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    grants: &[NewGrant],
) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
    for grant in grants {
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM catalog_items WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(grant.item_id)
            .fetch_optional(&mut *connection)
            .await?;
        if known.is_none() {
            return Ok(Err(InventoryRefusal::UnknownItem));
        }
    }
    let now = now();
    let mut stacks = Vec::with_capacity(grants.len());
    for grant in grants {
        let expires_at = grant.duration_seconds.map(|seconds| now + seconds * MICROS);
        let row = sqlx::query(concat!(
            "INSERT INTO inventory AS s (user_id, item_id, quantity, acquired_via, acquired_at, expires_at,
                                         collection_id, stack_id, display_properties, bundle_purchase_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ",
            stack_upsert!(),
            " RETURNING ",
            stack_columns!()
        ))
        .bind(user_id)
        .bind(grant.item_id)
        .bind(grant.quantity)
        .bind(&grant.acquired_via)
        .bind(now)
        .bind(expires_at)
        .bind(&grant.stack.collection_id)
        .bind(&grant.stack.stack_id)
        .bind(grant.display_properties.as_ref().map(serde_json::Value::to_string))
        .bind(grant.bundle_purchase_id)
        .fetch_one(&mut *connection)
        .await?;
        stacks.push(stack_from_row(&row)?);
    }
    Ok(Ok(stacks))
}

/// Applies `grants` and records the purchase (with its idempotency key,
/// request hash and answer).
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_purchase(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    module_sha256: Option<&str>,
    p: &PurchaseRecord,
    grants: &[NewGrant],
    response: &StoredResponse,
) -> StorageResult<Recorded> {
    if grant(connection, tenant_id, user_id, grants).await?.is_err() {
        return Ok(Recorded::UnknownItem);
    }
    let keyed = p.idempotency_key.is_some();
    let recorded = sqlx::query(
        "INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
                                idempotency_key, request_hash, response_status, response_body, module_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING 1",
    )
    .bind(user_id)
    .bind(p.id)
    .bind(p.item_id)
    .bind(p.store_id)
    .bind(p.quantity)
    .bind(&p.currency_code)
    .bind(p.unit_price)
    .bind(p.total)
    .bind(&p.idempotency_key)
    .bind(keyed.then_some(p.request_hash.as_slice()))
    .bind(keyed.then_some(i64::from(response.status)))
    .bind(keyed.then_some(sqlx::types::Json(&response.body)))
    .bind(module_sha256)
    .bind(now())
    .fetch_optional(connection)
    .await?;
    Ok(if recorded.is_some() { Recorded::Done } else { Recorded::KeyTaken })
}

impl SqliteTx {
    fn connection(&mut self) -> &mut SqliteConnection {
        self.write.connection()
    }

    /// Settles the user's balance of `code` if the tenant's currency
    /// regenerates.
    async fn settle(&mut self, code: &str) -> StorageResult<()> {
        if !self.scope.recharging.iter().any(|recharging| recharging == code) {
            return Ok(());
        }
        let (tenant_id, user_id) = (self.tenant_id, self.scope.user_id);
        settle_opening(self.write.connection(), tenant_id, user_id, code).await
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        self.settle(code).await?;
        let (tenant_id, user_id) = (self.tenant_id, self.scope.user_id);
        let balance = sqlx::query_scalar(
            "SELECT COALESCE(b.balance, c.initial_balance) FROM currencies c
             LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
             WHERE c.tenant_id = $1 AND c.code = $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(code)
        .fetch_optional(self.connection())
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
        let (tenant_id, user_id) = (self.tenant_id, self.scope.user_id);
        for _ in 0..2 {
            let row = sqlx::query(
                "SELECT c.max_balance, c.recharge_amount, c.recharge_max, b.balance, b.recharged_at
                 FROM currencies c LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
                 WHERE c.tenant_id = $1 AND c.code = $3",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(code)
            .fetch_optional(self.connection())
            .await?;
            let Some(row) = row else { return Ok(Err(WalletRefusal::UnknownCurrency)) };
            let Some(balance) = row.try_get::<Option<i64>, _>("balance")? else {
                open_balance(self.connection(), tenant_id, user_id, code).await?;
                continue;
            };
            let max_balance: Option<i64> = row.try_get("max_balance")?;
            let after = balance.checked_add(delta);
            let Some(after) = after.filter(|after| *after >= 0) else {
                return Ok(Err(match delta < 0 {
                    true => WalletRefusal::InsufficientBalance,
                    false => WalletRefusal::MaxBalanceExceeded,
                }));
            };
            if delta > 0 && max_balance.is_some_and(|max| after > max) {
                return Ok(Err(WalletRefusal::MaxBalanceExceeded));
            }
            // A regenerating balance's clock runs only below its max (the
            // balance was settled just before this).
            let recharge_max: Option<i64> = row.try_get("recharge_max")?;
            let clock = match (row.try_get::<Option<i64>, _>("recharge_amount")?, recharge_max) {
                (Some(_), Some(max)) if after < max => {
                    Some(row.try_get::<Option<i64>, _>("recharged_at")?.unwrap_or(now()))
                }
                _ => None,
            };
            sqlx::query(
                "UPDATE balances SET balance = $3, recharged_at = $4, updated_at = $5
                 WHERE user_id = $1 AND currency_code = $2",
            )
            .bind(user_id)
            .bind(code)
            .bind(after)
            .bind(clock)
            .bind(now())
            .execute(self.connection())
            .await?;
            let module = self.scope.module_sha256.clone();
            append_ledger(
                self.connection(),
                user_id,
                code,
                delta,
                after,
                reason.as_str(),
                reference,
                module.as_deref(),
            )
            .await?;
            self.balances_after.retain(|(changed, _)| changed != code);
            self.balances_after.push((code.to_owned(), after));
            return Ok(Ok(after));
        }
        Err(StorageError::Backend("a balance could not be opened".into()))
    }

    async fn attributes(&mut self) -> StorageResult<Attributes> {
        let (tenant_id, user_id) = (self.tenant_id, self.scope.user_id);
        Ok(attributes(self.connection(), tenant_id, user_id).await?)
    }

    async fn quantity(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let user_id = self.scope.user_id;
        let quantity = sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0) FROM inventory
             WHERE user_id = $1 AND item_id = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(user_id)
        .bind(item_id)
        .bind(now())
        .fetch_one(self.connection())
        .await?;
        Ok(quantity)
    }

    async fn grant_items(&mut self, grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
        let (tenant_id, user_id) = (self.tenant_id, self.scope.user_id);
        grant(self.connection(), tenant_id, user_id, grants).await
    }

    async fn consume(
        &mut self,
        item_id: Uuid,
        stack: &StackKey,
        quantity: i64,
    ) -> StorageResult<Result<i64, InventoryRefusal>> {
        let user_id = self.scope.user_id;
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE inventory SET quantity = quantity - $3
             WHERE user_id = $1 AND item_id = $2 AND collection_id = $5 AND stack_id = $6
               AND quantity >= $3 AND (expires_at IS NULL OR expires_at > $4)
             RETURNING quantity",
        )
        .bind(user_id)
        .bind(item_id)
        .bind(quantity)
        .bind(now())
        .bind(&stack.collection_id)
        .bind(&stack.stack_id)
        .fetch_optional(self.connection())
        .await?;
        Ok(left.ok_or(InventoryRefusal::InsufficientQuantity))
    }

    async fn item_purchases(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let user_id = self.scope.user_id;
        let count =
            sqlx::query_scalar("SELECT COALESCE(sum(quantity), 0) FROM purchases WHERE user_id = $1 AND item_id = $2")
                .bind(user_id)
                .bind(item_id)
                .fetch_one(self.connection())
                .await?;
        Ok(count)
    }

    async fn listing_purchases(&mut self, store_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        let user_id = self.scope.user_id;
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT purchased FROM listing_purchases WHERE user_id = $1 AND store_id = $2 AND item_id = $3",
        )
        .bind(user_id)
        .bind(store_id)
        .bind(item_id)
        .fetch_optional(self.connection())
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
        let user_id = self.scope.user_id;
        let total = sqlx::query_scalar(
            "INSERT INTO listing_purchases AS l (user_id, store_id, item_id, purchased) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, store_id, item_id) DO UPDATE SET purchased = l.purchased + excluded.purchased
             WHERE l.purchased + excluded.purchased <= $5
             RETURNING purchased",
        )
        .bind(user_id)
        .bind(store_id)
        .bind(item_id)
        .bind(quantity)
        .bind(cap)
        .fetch_optional(self.connection())
        .await?;
        Ok(total)
    }

    async fn record_purchase(
        &mut self,
        purchase: &PurchaseRecord,
        grants: &[NewGrant],
        response: &StoredResponse,
    ) -> StorageResult<Recorded> {
        let (tenant_id, user_id) = (self.tenant_id, self.scope.user_id);
        let module = self.scope.module_sha256.clone();
        record_purchase(self.connection(), tenant_id, user_id, module.as_deref(), purchase, grants, response).await
    }

    async fn record_request(
        &mut self,
        key: &str,
        request_hash: &[u8],
        response: &StoredResponse,
    ) -> StorageResult<bool> {
        let user_id = self.scope.user_id;
        let claimed = sqlx::query(
            "INSERT INTO idempotency_records (user_id, key, request_hash, response_body, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(user_id)
        .bind(key)
        .bind(request_hash)
        .bind(sqlx::types::Json(&response.body))
        .bind(now())
        .fetch_optional(self.connection())
        .await?;
        Ok(claimed.is_some())
    }

    async fn record_consume(&mut self, id: Uuid, item_id: Uuid, quantity: i64, remaining: i64) -> StorageResult<()> {
        let user_id = self.scope.user_id;
        let module = self.scope.module_sha256.clone().unwrap_or_default();
        sqlx::query(
            "INSERT INTO consumes (user_id, id, item_id, quantity, remaining, module_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user_id)
        .bind(id)
        .bind(item_id)
        .bind(quantity)
        .bind(remaining)
        .bind(module)
        .bind(now())
        .execute(self.connection())
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StorageResult<Option<Vec<Held>>> {
        let Self { mut write, scope, seen, balances_after, .. } = *self;
        let collection = match scope.collection.as_deref() {
            Some(collection) => collection_states(write.connection(), &[(scope.user_id, collection)]).await?.pop(),
            None => None,
        };
        write.commit().await?;
        for (code, balance) in &balances_after {
            seen.set(scope.user_id, code, *balance);
        }
        Ok(collection)
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        self.write.rollback().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn energy(balance: i64, recharged_at: Option<i64>) -> Regenerating {
        Regenerating { balance, recharged_at, amount: 2, period_seconds: 10, max: 5, since: 0 }
    }

    #[test]
    fn a_balance_gains_whole_periods_up_to_its_max_and_its_clock_stops_there() {
        // 25 s: two whole periods, +4, and the clock moves on by 20 s.
        assert_eq!(
            energy(0, Some(0)).settle(25 * MICROS),
            Some(Settled { balance: 4, recharged_at: Some(20 * MICROS), gained: 4 })
        );
        // The max is reached: the clock stops, and the balance stays at max.
        assert_eq!(
            energy(4, Some(0)).settle(100 * MICROS),
            Some(Settled { balance: 5, recharged_at: None, gained: 1 })
        );
        // Less than a period: nothing changes.
        assert_eq!(energy(1, Some(0)).settle(9 * MICROS), None);
        // At or above max, a running clock stops without a gain.
        assert_eq!(
            energy(7, Some(0)).settle(100 * MICROS),
            Some(Settled { balance: 7, recharged_at: None, gained: 0 })
        );
        // A stopped clock below max starts at the recharge's `since`.
        let since = Regenerating { since: 50 * MICROS, ..energy(0, None) };
        assert_eq!(since.settle(55 * MICROS), Some(Settled { balance: 0, recharged_at: Some(50 * MICROS), gained: 0 }));
    }
}
