//! The writes several files share, each inside a write transaction (which
//! has the file to itself): opening a balance, settling one when its
//! recharge changes, appending to the ledger, and recording a purchase.

use super::super::recharge;
use super::super::*;
use super::at;
use sqlx::types::Json;
use sqlx::{Row, SqliteConnection};

/// Settles the player's balance of `code` at `now_micros` if its currency
/// regenerates, with a `recharge` ledger entry for what accrued; false if
/// the player holds no such balance (nothing done).
pub(super) async fn settle(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    code: &str,
    now_micros: i64,
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
    let stored = BalanceRow {
        balance: row.try_get("balance")?,
        recharged_at: row.try_get::<Option<i64>, _>("recharged_at")?.map(at),
    };
    let terms = RechargeTerms {
        amount: row.try_get("recharge_amount")?,
        period_seconds: row.try_get("recharge_period_seconds")?,
        max: row.try_get("recharge_max")?,
        since: at(row.try_get("recharge_since")?),
    };
    let Some(settled) = recharge::settle(stored, &terms, at(now_micros)) else { return Ok(true) };
    sqlx::query(
        "UPDATE balances SET balance = $3, recharged_at = $4, updated_at = $5 WHERE user_id = $1 AND currency_code = $2",
    )
    .bind(user_id)
    .bind(code)
    .bind(settled.row.balance)
    .bind(settled.row.recharged_at.map(|clock| clock.timestamp_micros()))
    .bind(now_micros)
    .execute(&mut *connection)
    .await?;
    if settled.gained > 0 {
        let entry = LedgerLine {
            id: Uuid::now_v7(),
            delta: settled.gained,
            balance_after: settled.row.balance,
            reason: LedgerReason::Recharge,
            reference: None,
            module_sha256: None,
        };
        append_ledger(connection, user_id, code, &entry, now_micros).await?;
    }
    Ok(true)
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
    .bind(super::now())
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(balance) = opened.filter(|balance| *balance > 0) {
        let entry = LedgerLine {
            id: Uuid::now_v7(),
            delta: balance,
            balance_after: balance,
            reason: LedgerReason::Grant,
            reference: Some("initial_balance".into()),
            module_sha256: None,
        };
        append_ledger(connection, user_id, code, &entry, super::now()).await?;
    }
    Ok(())
}

/// Appends a ledger entry.
pub(super) async fn append_ledger(
    connection: &mut SqliteConnection,
    user_id: Uuid,
    code: &str,
    entry: &LedgerLine,
    at_micros: i64,
) -> StorageResult<()> {
    sqlx::query(
        "INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(user_id)
    .bind(entry.id)
    .bind(code)
    .bind(entry.delta)
    .bind(entry.balance_after)
    .bind(entry.reason.as_str())
    .bind(&entry.reference)
    .bind(&entry.module_sha256)
    .bind(at_micros)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records the purchase (with its idempotency key, request hash and
/// answer); false if the key was taken meanwhile.
pub(super) async fn record_purchase(
    connection: &mut SqliteConnection,
    user_id: Uuid,
    module_sha256: Option<&str>,
    p: &PurchaseRecord,
    response: &StoredResponse,
    now: i64,
) -> StorageResult<bool> {
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
    .bind(now)
    .fetch_optional(connection)
    .await?;
    Ok(recorded.is_some())
}
