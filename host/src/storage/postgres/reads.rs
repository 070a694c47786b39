//! A tenant's reads in PostgreSQL: wallets, inventories, ledgers and
//! idempotency records.

use super::super::*;
use super::PgTenant;
use super::rows::{balance_read_from_row, currency_from_row, held_from_row, paid_price_from_row, stack_from_row};
use sqlx::Row;

#[async_trait]
impl ReadStore for PgTenant {
    async fn wallet(&self, user: &User) -> StorageResult<Vec<WalletEntry>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            currency_columns!(),
            ", COALESCE(b.balance, c.initial_balance) AS balance,
                CASE WHEN COALESCE(b.balance, c.initial_balance) < c.recharge_max
                     THEN GREATEST(COALESCE(b.recharged_at, c.recharge_since), c.recharge_since)
                          + make_interval(secs => c.recharge_period_seconds::double precision)
                END AS next_recharge_at
             FROM currencies c LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
             WHERE c.tenant_id = $1 ORDER BY c.code"
        ))
        .bind(self.tenant_id)
        .bind(user.id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let currency = currency_from_row(row)?;
                Ok(WalletEntry {
                    currency_code: currency.code,
                    balance: row.try_get("balance")?,
                    recharge: currency.recharge,
                    next_recharge_at: row.try_get("next_recharge_at")?,
                })
            })
            .collect()
    }

    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT s.item_id, s.collection_id, s.stack_id, s.quantity, s.acquired_via, s.acquired_at, s.expires_at,
                    s.display_properties, s.bundle_purchase_id, i.key, i.name, i.icon_url, i.item_type, i.category
             FROM inventory s JOIN catalog_items i ON i.id = s.item_id AND i.tenant_id = $1
             WHERE s.user_id = $2 AND s.quantity > 0 AND (s.expires_at IS NULL OR s.expires_at > now())
             ORDER BY s.acquired_at, s.item_id",
        )
        .bind(self.tenant_id)
        .bind(user.id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let summary = ItemSummary {
                    key: row.try_get("key")?,
                    name: row.try_get("name")?,
                    icon_url: row.try_get("icon_url")?,
                    item_type: ItemType::parse(row.try_get("item_type")?),
                    category: row.try_get("category")?,
                };
                let entry = InventoryEntry::new(user.id, stack_from_row(row)?, summary);
                let (display_properties, bundle_purchase_id) =
                    (row.try_get("display_properties")?, row.try_get("bundle_purchase_id")?);
                Ok(InventoryEntry { display_properties, bundle_purchase_id, ..entry })
            })
            .collect()
    }

    async fn collection_states(&self, wanted: &[(User, String)]) -> StorageResult<Vec<Vec<Held>>> {
        for (user, _) in wanted {
            own(self.tenant_id, user)?;
        }
        let wanted: Vec<_> = wanted.iter().map(|(user, collection)| (user.id, collection.as_str())).collect();
        Ok(collection_states(&self.db.pool, &wanted).await?)
    }

    async fn bundle_purchases(&self, user: &User) -> StorageResult<Vec<BundlePurchase>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT p.id, p.item_id, p.currency_code, p.unit_price, p.created_at FROM purchases p
             JOIN catalog_items i ON i.tenant_id = $1 AND i.id = p.item_id AND i.item_type = 'bundle'
             WHERE p.user_id = $2 ORDER BY p.id",
        )
        .bind(self.tenant_id)
        .bind(user.id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BundlePurchase {
                    id: row.try_get("id")?,
                    item_id: row.try_get("item_id")?,
                    currency_code: row.try_get("currency_code")?,
                    unit_price: row.try_get("unit_price")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn paid_prices(&self, user: &User) -> StorageResult<Vec<PaidPrice>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT DISTINCT ON (item_id) item_id, currency_code, unit_price FROM purchases
             WHERE user_id = $1 ORDER BY item_id, id DESC",
        )
        .bind(user.id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(paid_price_from_row).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>> {
        let statement = match kind {
            RecordKind::Purchase => {
                "SELECT request_hash, response_status, response_body FROM purchases WHERE user_id = $1 AND idempotency_key = $2"
            }
            RecordKind::Request => {
                "SELECT request_hash, 200::smallint AS response_status, response_body FROM idempotency_records
                 WHERE user_id = $1 AND key = $2"
            }
        };
        let row = sqlx::query(statement).bind(user_id).bind(key).fetch_optional(&self.db.pool).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(IdempotencyRecord {
            request_hash: row.try_get("request_hash")?,
            response: StoredResponse {
                status: row
                    .try_get::<i16, _>("response_status")
                    .ok()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(200),
                body: row.try_get("response_body")?,
            },
        }))
    }

    async fn balance_read(&self, user_id: Uuid, code: &str) -> StorageResult<Option<BalanceRead>> {
        let row = sqlx::query(
            "SELECT b.balance, b.recharged_at, c.initial_balance, c.max_balance, c.recharge_amount,
                    c.recharge_period_seconds, c.recharge_max, c.recharge_since, u.created_at AS player_since
             FROM currencies c LEFT JOIN users u ON u.tenant_id = $1 AND u.id = $2
             LEFT JOIN balances b ON b.user_id = u.id AND b.currency_code = c.code
             WHERE c.tenant_id = $1 AND c.code = $3",
        )
        .bind(self.tenant_id)
        .bind(user_id)
        .bind(code)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(balance_read_from_row).transpose()?)
    }

    async fn stacks(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<Vec<StoredStack>> {
        let rows = sqlx::query(
            "SELECT collection_id, stack_id, quantity, expires_at, acquired_via, acquired_at FROM inventory
             WHERE user_id = $1 AND item_id = $2",
        )
        .bind(user_id)
        .bind(item_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredStack {
                    stack: StackKey {
                        collection_id: row.try_get("collection_id")?,
                        stack_id: row.try_get("stack_id")?,
                    },
                    quantity: row.try_get("quantity")?,
                    expires_at: row.try_get("expires_at")?,
                    acquired_via: row.try_get("acquired_via")?,
                    acquired_at: row.try_get("acquired_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn item_purchases(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        let count = sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0)::bigint FROM purchases WHERE user_id = $1 AND item_id = $2",
        )
        .bind(user_id)
        .bind(item_id)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(count)
    }

    async fn listing_purchases(&self, user_id: Uuid, store_id: Uuid, item_id: Uuid) -> StorageResult<Option<i64>> {
        let count = sqlx::query_scalar(
            "SELECT purchased FROM listing_purchases WHERE user_id = $1 AND store_id = $2 AND item_id = $3",
        )
        .bind(user_id)
        .bind(store_id)
        .bind(item_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(count)
    }

    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT id, currency_code, delta, balance_after, reason, reference, module_sha256, created_at FROM ledger
             WHERE user_id = $1 AND ($2::text IS NULL OR currency_code = $2) AND ($3::uuid IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(user.id)
        .bind(&query.currency_code)
        .bind(query.cursor)
        .bind(query.limit)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LedgerEntry {
                    id: row.try_get("id")?,
                    currency_code: row.try_get("currency_code")?,
                    delta: row.try_get("delta")?,
                    balance_after: row.try_get("balance_after")?,
                    reason: row.try_get("reason")?,
                    reference: row.try_get("reference")?,
                    module_sha256: row.try_get("module_sha256")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// What each `(player, collection)` holds (see
/// `ReadStore::collection_states`), read through `executor`: in a
/// transaction, with its own writes.
pub(super) async fn collection_states<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    wanted: &[(Uuid, &str)],
) -> Result<Vec<Vec<Held>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT w.n, s.item_id, s.stack_id, s.quantity, s.expires_at, NULL AS currency_code
         FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS w(user_id, collection_id, n)
         JOIN inventory s ON s.user_id = w.user_id AND s.collection_id = w.collection_id
         WHERE s.quantity > 0 AND (s.expires_at IS NULL OR s.expires_at > now())
         UNION ALL
         SELECT w.n, NULL, NULL, b.balance, NULL, b.currency_code
         FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS w(user_id, collection_id, n)
         JOIN balances b ON b.user_id = w.user_id
         WHERE w.collection_id = 'default'",
    )
    .bind(wanted.iter().map(|(user_id, _)| *user_id).collect::<Vec<_>>())
    .bind(wanted.iter().map(|(_, collection)| *collection).collect::<Vec<_>>())
    .fetch_all(executor)
    .await?;
    let mut states = vec![Vec::new(); wanted.len()];
    for row in &rows {
        let n: i64 = row.try_get("n")?;
        if let Some(state) = usize::try_from(n - 1).ok().and_then(|i| states.get_mut(i)) {
            state.push(held_from_row(row)?);
        }
    }
    Ok(states)
}
