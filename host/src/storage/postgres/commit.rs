//! A journal committed in a transaction of its own (see
//! `TenantStore::commit`), for every shape the group commit does not take:
//! each balance, stack and listing count it changed is written only if it
//! is still as it was read, its idempotency key only if it is unused; the
//! first that is not rolls it all back. Every statement names the player,
//! so on Citus the transaction stays in the player's shard.

use super::super::*;
use super::reads::collection_states;
use super::rows::{GrantColumns, IdempotencyColumns};
use super::{PgTenant, begin};
use sqlx::{PgConnection, PgPool};

impl PgTenant {
    /// Commits `journal` in a transaction of its own, in a task of its own:
    /// a request dropped mid-commit leaves no transaction open.
    pub(super) async fn commit_alone(&self, journal: Journal) -> StorageResult<Commit> {
        let (pool, tenant_id) = (self.db.pool.clone(), self.tenant_id);
        let committed = tokio::spawn(async move { commit(&pool, tenant_id, &journal).await }).await;
        committed.map_err(|error| StorageError::Backend(format!("a commit's task failed: {error}")))?
    }
}

async fn commit(pool: &PgPool, tenant_id: Uuid, journal: &Journal) -> StorageResult<Commit> {
    let mut tx = begin(pool).await?;
    match write(&mut tx, tenant_id, journal).await? {
        Some(done) => {
            tx.commit().await?;
            Ok(done)
        }
        None => {
            tx.rollback().await?;
            Ok(Commit::Stale)
        }
    }
}

/// Writes the journal in the open transaction; none as soon as a guard
/// fails (the caller rolls back).
async fn write(tx: &mut PgConnection, tenant_id: Uuid, journal: &Journal) -> StorageResult<Option<Commit>> {
    for balance in &journal.balances {
        if !write_balance(tx, journal, balance).await? {
            return Ok(None);
        }
    }
    let mut writes = journal.stacks.iter().peekable();
    while let Some(write) = writes.next() {
        match write {
            StackWrite::Grant(grant) => {
                // The grants that follow, up to the next other write, in one
                // statement.
                let mut run = vec![grant.clone()];
                while let Some(StackWrite::Grant(next)) = writes.peek() {
                    run.push(next.clone());
                    writes.next();
                }
                grant_items(tx, tenant_id, journal, &merged(run)).await?;
            }
            StackWrite::GrantOnto { grant, before } => {
                let columns = GrantColumns::new(std::slice::from_ref(grant));
                let granted = sqlx::query(concat!(
                    grant_statement!(),
                    " WHERE $12 AND s.quantity = $13 AND s.expires_at IS NOT DISTINCT FROM $14 RETURNING 1"
                ))
                .bind(tenant_id)
                .bind(journal.user_id)
                .bind(&columns.ids)
                .bind(&columns.quantities)
                .bind(&columns.vias)
                .bind(&columns.durations)
                .bind(&columns.collections)
                .bind(&columns.stacks)
                .bind(&columns.displays)
                .bind(&columns.bundles)
                .bind(journal.at)
                .bind(before.is_some())
                .bind(before.as_ref().map(|stack| stack.quantity))
                .bind(before.as_ref().and_then(|stack| stack.expires_at))
                .fetch_optional(&mut *tx)
                .await?;
                if granted.is_none() {
                    return Ok(None);
                }
            }
            StackWrite::Take { item_id, stack, quantity, before, expires_at } => {
                let taken = sqlx::query(
                    "UPDATE inventory SET quantity = quantity - $3
                     WHERE user_id = $1 AND item_id = $2 AND collection_id = $4 AND stack_id = $5
                       AND quantity = $6 AND expires_at IS NOT DISTINCT FROM $7 AND (expires_at IS NULL OR expires_at > $8)
                     RETURNING 1",
                )
                .bind(journal.user_id)
                .bind(item_id)
                .bind(quantity)
                .bind(&stack.collection_id)
                .bind(&stack.stack_id)
                .bind(before)
                .bind(expires_at)
                .bind(journal.at)
                .fetch_optional(&mut *tx)
                .await?;
                if taken.is_none() {
                    return Ok(None);
                }
            }
        }
    }
    for listing in &journal.listings {
        if !claim_listing(tx, journal, listing).await? {
            return Ok(None);
        }
    }
    if let Some((record, response)) = &journal.purchase
        && !record_purchase(tx, journal, record, response).await?
    {
        return Ok(None);
    }
    if let Some(consume) = &journal.consume {
        sqlx::query(
            "INSERT INTO consumes (user_id, id, item_id, quantity, remaining, module_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(journal.user_id)
        .bind(consume.id)
        .bind(consume.item_id)
        .bind(consume.quantity)
        .bind(consume.remaining)
        .bind(journal.module_sha256.as_deref().unwrap_or(""))
        .bind(journal.at)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(request) = &journal.request {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_records (user_id, key, request_hash, response_body, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(journal.user_id)
        .bind(&request.key)
        .bind(&request.request_hash)
        .bind(&request.response)
        .bind(journal.at)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            return Ok(None);
        }
    }
    let collection = match &journal.collection {
        Some(collection) => collection_states(&mut *tx, &[(journal.user_id, collection)]).await?.pop(),
        None => None,
    };
    Ok(Some(Commit::Done { collection }))
}

/// Writes a balance if its row is as it was read (or, read absent, still
/// absent), with its ledger entries; false if it was not.
async fn write_balance(tx: &mut PgConnection, journal: &Journal, balance: &BalanceChange) -> StorageResult<bool> {
    let written = match balance.before {
        Some(before) => {
            sqlx::query(
                "UPDATE balances SET balance = $3, recharged_at = $4, updated_at = $5
             WHERE user_id = $1 AND currency_code = $2 AND balance = $6 AND recharged_at IS NOT DISTINCT FROM $7
             RETURNING 1",
            )
            .bind(journal.user_id)
            .bind(&balance.currency_code)
            .bind(balance.after.balance)
            .bind(balance.after.recharged_at)
            .bind(journal.at)
            .bind(before.balance)
            .bind(before.recharged_at)
            .fetch_optional(&mut *tx)
            .await?
        }
        None => {
            sqlx::query(
                "INSERT INTO balances (user_id, currency_code, balance, recharged_at, updated_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(journal.user_id)
            .bind(&balance.currency_code)
            .bind(balance.after.balance)
            .bind(balance.after.recharged_at)
            .bind(journal.at)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    if written.is_none() {
        return Ok(false);
    }
    let entries = &balance.entries;
    sqlx::query(
        "INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256, created_at)
         SELECT $1, e.id, $2, e.delta, e.balance_after, e.reason, e.reference, e.module_sha256, $3
         FROM unnest($4::uuid[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[])
           AS e(id, delta, balance_after, reason, reference, module_sha256)",
    )
    .bind(journal.user_id)
    .bind(&balance.currency_code)
    .bind(journal.at)
    .bind(entries.iter().map(|entry| entry.id).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.delta).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.balance_after).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.reason.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.reference.as_deref()).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.module_sha256.as_deref()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

/// Grants into their stacks (each stack once).
async fn grant_items(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    journal: &Journal,
    grants: &[NewGrant],
) -> StorageResult<()> {
    let columns = GrantColumns::new(grants);
    let granted = sqlx::query(concat!(grant_statement!(), " RETURNING 1"))
        .bind(tenant_id)
        .bind(journal.user_id)
        .bind(&columns.ids)
        .bind(&columns.quantities)
        .bind(&columns.vias)
        .bind(&columns.durations)
        .bind(&columns.collections)
        .bind(&columns.stacks)
        .bind(&columns.displays)
        .bind(&columns.bundles)
        .bind(journal.at)
        .execute(&mut *tx)
        .await?;
    if granted.rows_affected() != grants.len() as u64 {
        // The catalog in memory knew the item, the database does not: the
        // catalog changed during the request. Not the module's fault.
        return Err(StorageError::Busy("the catalog changed during the request".into()));
    }
    Ok(())
}

/// Moves a listing's count if it is still as it was read; false if not.
async fn claim_listing(tx: &mut PgConnection, journal: &Journal, listing: &ListingClaim) -> StorageResult<bool> {
    let claimed = match listing.before {
        Some(before) => {
            sqlx::query(
                "UPDATE listing_purchases SET purchased = $4
             WHERE user_id = $1 AND store_id = $2 AND item_id = $3 AND purchased = $5 RETURNING 1",
            )
            .bind(journal.user_id)
            .bind(listing.store_id)
            .bind(listing.item_id)
            .bind(listing.after)
            .bind(before)
            .fetch_optional(&mut *tx)
            .await?
        }
        None => {
            sqlx::query(
                "INSERT INTO listing_purchases (user_id, store_id, item_id, purchased) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(journal.user_id)
            .bind(listing.store_id)
            .bind(listing.item_id)
            .bind(listing.after)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    Ok(claimed.is_some())
}

/// Records the purchase and, with a key, its answer; false if the key was
/// taken meanwhile.
async fn record_purchase(
    tx: &mut PgConnection,
    journal: &Journal,
    p: &PurchaseRecord,
    response: &StoredResponse,
) -> StorageResult<bool> {
    let idempotency = IdempotencyColumns::new(p, response);
    let recorded = sqlx::query(
        "INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
                               idempotency_key, request_hash, response_status, response_body, module_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING 1",
    )
    .bind(journal.user_id)
    .bind(p.id)
    .bind(p.item_id)
    .bind(p.store_id)
    .bind(p.quantity)
    .bind(&p.currency_code)
    .bind(p.unit_price)
    .bind(p.total)
    .bind(&p.idempotency_key)
    .bind(idempotency.request_hash)
    .bind(idempotency.status)
    .bind(idempotency.body)
    .bind(&journal.module_sha256)
    .bind(journal.at)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(recorded.is_some())
}
