//! A journal written in the committer's open write transaction (see
//! `TenantStore::commit`), under a savepoint of its own: each balance,
//! stack and listing count it changed is written only if it is still as it
//! was read, its idempotency key only if it is unused; the first that is
//! not rolls the journal back to its savepoint, and the rest of the batch
//! is unaffected.

use super::super::*;
use super::reads::collection_states;
use super::writes::{append_ledger, record_purchase};
use sqlx::SqliteConnection;

/// Writes `journal`; none, with nothing of it kept, if a guard failed.
pub(super) async fn write_journal(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    journal: &Journal,
) -> StorageResult<Option<Commit>> {
    sqlx::query("SAVEPOINT journal").execute(&mut *connection).await?;
    let written = write(connection, tenant_id, journal).await;
    if !matches!(written, Ok(Some(_))) {
        sqlx::query("ROLLBACK TO journal").execute(&mut *connection).await?;
    }
    sqlx::query("RELEASE journal").execute(&mut *connection).await?;
    written
}

async fn write(connection: &mut SqliteConnection, tenant_id: Uuid, journal: &Journal) -> StorageResult<Option<Commit>> {
    let (user_id, at) = (journal.user_id, journal.at.timestamp_micros());
    let micros = |time: Option<DateTime<Utc>>| time.map(|time| time.timestamp_micros());
    for balance in &journal.balances {
        let written = match balance.before {
            Some(before) => {
                sqlx::query(
                    "UPDATE balances SET balance = $3, recharged_at = $4, updated_at = $5
                 WHERE user_id = $1 AND currency_code = $2 AND balance = $6 AND recharged_at IS $7
                 RETURNING 1",
                )
                .bind(user_id)
                .bind(&balance.currency_code)
                .bind(balance.after.balance)
                .bind(micros(balance.after.recharged_at))
                .bind(at)
                .bind(before.balance)
                .bind(micros(before.recharged_at))
                .fetch_optional(&mut *connection)
                .await?
            }
            None => {
                sqlx::query(
                    "INSERT INTO balances (user_id, currency_code, balance, recharged_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
                )
                .bind(user_id)
                .bind(&balance.currency_code)
                .bind(balance.after.balance)
                .bind(micros(balance.after.recharged_at))
                .bind(at)
                .fetch_optional(&mut *connection)
                .await?
            }
        };
        if written.is_none() {
            return Ok(None);
        }
        for entry in &balance.entries {
            append_ledger(connection, user_id, &balance.currency_code, entry, at).await?;
        }
    }
    for write in &journal.stacks {
        match write {
            StackWrite::Grant(granted) => {
                grant(connection, tenant_id, user_id, granted, at, None).await?;
            }
            StackWrite::GrantOnto { grant: granted, before } => {
                if !grant(connection, tenant_id, user_id, granted, at, Some(before.as_ref())).await? {
                    return Ok(None);
                }
            }
            StackWrite::Take { item_id, stack, quantity, before, expires_at } => {
                let taken = sqlx::query(
                    "UPDATE inventory SET quantity = quantity - $3
                     WHERE user_id = $1 AND item_id = $2 AND collection_id = $4 AND stack_id = $5
                       AND quantity = $6 AND expires_at IS $7 AND (expires_at IS NULL OR expires_at > $8)
                     RETURNING 1",
                )
                .bind(user_id)
                .bind(item_id)
                .bind(quantity)
                .bind(&stack.collection_id)
                .bind(&stack.stack_id)
                .bind(before)
                .bind(micros(*expires_at))
                .bind(at)
                .fetch_optional(&mut *connection)
                .await?;
                if taken.is_none() {
                    return Ok(None);
                }
            }
        }
    }
    for listing in &journal.listings {
        let claimed = match listing.before {
            Some(before) => {
                sqlx::query(
                    "UPDATE listing_purchases SET purchased = $4
                 WHERE user_id = $1 AND store_id = $2 AND item_id = $3 AND purchased = $5 RETURNING 1",
                )
                .bind(user_id)
                .bind(listing.store_id)
                .bind(listing.item_id)
                .bind(listing.after)
                .bind(before)
                .fetch_optional(&mut *connection)
                .await?
            }
            None => {
                sqlx::query(
                    "INSERT INTO listing_purchases (user_id, store_id, item_id, purchased) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING RETURNING 1",
                )
                .bind(user_id)
                .bind(listing.store_id)
                .bind(listing.item_id)
                .bind(listing.after)
                .fetch_optional(&mut *connection)
                .await?
            }
        };
        if claimed.is_none() {
            return Ok(None);
        }
    }
    if let Some((record, response)) = &journal.purchase {
        let module = journal.module_sha256.as_deref();
        if !record_purchase(connection, user_id, module, record, response, at).await? {
            return Ok(None);
        }
    }
    if let Some(consume) = &journal.consume {
        sqlx::query(
            "INSERT INTO consumes (user_id, id, item_id, quantity, remaining, module_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user_id)
        .bind(consume.id)
        .bind(consume.item_id)
        .bind(consume.quantity)
        .bind(consume.remaining)
        .bind(journal.module_sha256.as_deref().unwrap_or(""))
        .bind(at)
        .execute(&mut *connection)
        .await?;
    }
    if let Some(request) = &journal.request {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_records (user_id, key, request_hash, response_body, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(user_id)
        .bind(&request.key)
        .bind(&request.request_hash)
        .bind(sqlx::types::Json(&request.response))
        .bind(at)
        .fetch_optional(&mut *connection)
        .await?;
        if claimed.is_none() {
            return Ok(None);
        }
    }
    let collection = match &journal.collection {
        Some(collection) => collection_states(&mut *connection, &[(user_id, collection)]).await?.pop(),
        None => None,
    };
    Ok(Some(Commit::Done { collection }))
}

/// Grants into its stack (see `stack_upsert!`); with `onto`, only if the
/// stack is as read (false if not).
async fn grant(
    connection: &mut SqliteConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    grant: &NewGrant,
    at: i64,
    onto: Option<Option<&StoredStack>>,
) -> StorageResult<bool> {
    let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM catalog_items WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(grant.item_id)
        .fetch_optional(&mut *connection)
        .await?;
    if known.is_none() {
        // The catalog in memory knew the item, the database does not: the
        // catalog changed during the request. Not the module's fault.
        return Err(StorageError::Busy("the catalog changed during the request".into()));
    }
    let before = onto.flatten();
    let granted = sqlx::query(concat!(
        "INSERT INTO inventory AS s (user_id, item_id, quantity, acquired_via, acquired_at, expires_at,
                                     collection_id, stack_id, display_properties, bundle_purchase_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ",
        stack_upsert!(),
        " WHERE $11 OR ($12 AND s.quantity = $13 AND s.expires_at IS $14) RETURNING 1"
    ))
    .bind(user_id)
    .bind(grant.item_id)
    .bind(grant.quantity)
    .bind(&grant.acquired_via)
    .bind(at)
    .bind(grant.duration_seconds.map(|seconds| at + seconds * 1_000_000))
    .bind(&grant.stack.collection_id)
    .bind(&grant.stack.stack_id)
    .bind(grant.display_properties.as_ref().map(serde_json::Value::to_string))
    .bind(grant.bundle_purchase_id)
    .bind(onto.is_none())
    .bind(before.is_some())
    .bind(before.map(|stack| stack.quantity))
    .bind(before.and_then(|stack| stack.expires_at).map(|time| time.timestamp_micros()))
    .fetch_optional(&mut *connection)
    .await?;
    Ok(granted.is_some())
}
