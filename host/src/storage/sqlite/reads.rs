//! A tenant's reads in SQLite: wallets, inventories, ledgers and
//! idempotency records, on the readers (never waiting for the writer).

use super::super::recharge::next_recharge_at;
use super::super::*;
use super::rows::{optional_time, paid_price_from_row, recharge_from_row, stack_from_row, time};
use super::{SqliteTenant, now};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;

#[async_trait]
impl ReadStore for SqliteTenant {
    async fn wallet(&self, user: &User) -> StorageResult<Vec<WalletEntry>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT c.code, c.recharge_amount, c.recharge_period_seconds, c.recharge_max, c.recharge_since,
                    COALESCE(b.balance, c.initial_balance) AS balance, b.recharged_at
             FROM currencies c LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
             WHERE c.tenant_id = $1 ORDER BY c.code",
        )
        .bind(self.tenant_id)
        .bind(user.id)
        .fetch_all(&self.db.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let recharge = recharge_from_row(row)?;
                let balance: i64 = row.try_get("balance")?;
                let next_recharge_at = match &recharge {
                    Some(recharge) => {
                        let terms = RechargeTerms {
                            amount: recharge.amount,
                            period_seconds: recharge.period_seconds,
                            max: recharge.max,
                            since: time(row, "recharge_since")?,
                        };
                        next_recharge_at(
                            BalanceRow { balance, recharged_at: optional_time(row, "recharged_at")? },
                            &terms,
                        )
                    }
                    None => None,
                };
                Ok(WalletEntry { currency_code: row.try_get("code")?, balance, recharge, next_recharge_at })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT s.item_id, s.collection_id, s.stack_id, s.quantity, s.acquired_via, s.acquired_at, s.expires_at,
                    s.display_properties, s.bundle_purchase_id, i.key, i.name, i.icon_url, i.item_type, i.category
             FROM inventory s JOIN catalog_items i ON i.id = s.item_id AND i.tenant_id = $1
             WHERE s.user_id = $2 AND s.quantity > 0 AND (s.expires_at IS NULL OR s.expires_at > $3)
             ORDER BY s.acquired_at, s.item_id",
        )
        .bind(self.tenant_id)
        .bind(user.id)
        .bind(now())
        .fetch_all(&self.db.readers)
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
                let display_properties =
                    row.try_get::<Option<Json<Value>>, _>("display_properties")?.map(|json| json.0);
                Ok(InventoryEntry {
                    display_properties,
                    bundle_purchase_id: row.try_get("bundle_purchase_id")?,
                    ..entry
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn collection_states(&self, wanted: &[(User, String)]) -> StorageResult<Vec<Vec<Held>>> {
        for (user, _) in wanted {
            own(self.tenant_id, user)?;
        }
        let wanted: Vec<_> = wanted.iter().map(|(user, collection)| (user.id, collection.as_str())).collect();
        collection_states(&self.db.readers, &wanted).await
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
        .fetch_all(&self.db.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BundlePurchase {
                    id: row.try_get("id")?,
                    item_id: row.try_get("item_id")?,
                    currency_code: row.try_get("currency_code")?,
                    unit_price: row.try_get("unit_price")?,
                    created_at: time(row, "created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn paid_prices(&self, user: &User) -> StorageResult<Vec<PaidPrice>> {
        own(self.tenant_id, user)?;
        // Ids are UUIDv7: the greatest of an item's is its latest purchase.
        let rows = sqlx::query(
            "SELECT item_id, currency_code, unit_price FROM purchases
             WHERE user_id = $1 AND id IN (SELECT max(id) FROM purchases WHERE user_id = $1 GROUP BY item_id)",
        )
        .bind(user.id)
        .fetch_all(&self.db.readers)
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
                "SELECT request_hash, response_status, response_body FROM purchases
                 WHERE user_id = $1 AND idempotency_key = $2"
            }
            RecordKind::Request => {
                "SELECT request_hash, 200 AS response_status, response_body FROM idempotency_records
                 WHERE user_id = $1 AND key = $2"
            }
        };
        let row = sqlx::query(statement).bind(user_id).bind(key).fetch_optional(&self.db.readers).await?;
        let Some(row) = row else { return Ok(None) };
        let status: Option<i64> = row.try_get("response_status")?;
        Ok(Some(IdempotencyRecord {
            request_hash: row.try_get("request_hash")?,
            response: StoredResponse {
                status: status.and_then(|status| u16::try_from(status).ok()).unwrap_or(200),
                body: row.try_get::<Json<Value>, _>("response_body")?.0,
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
        .fetch_optional(&self.db.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored = match row.try_get::<Option<i64>, _>("balance")? {
            Some(balance) => Some(BalanceRow { balance, recharged_at: optional_time(&row, "recharged_at")? }),
            None => None,
        };
        let recharge = recharge_from_row(&row)?.map(|recharge| RechargeTerms {
            amount: recharge.amount,
            period_seconds: recharge.period_seconds,
            max: recharge.max,
            since: time(&row, "recharge_since").unwrap_or_default(),
        });
        Ok(Some(BalanceRead {
            stored,
            initial_balance: row.try_get("initial_balance")?,
            max_balance: row.try_get("max_balance")?,
            recharge,
            player_since: optional_time(&row, "player_since")?,
        }))
    }

    async fn stacks(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<Vec<StoredStack>> {
        let rows = sqlx::query(
            "SELECT collection_id, stack_id, quantity, expires_at, acquired_via, acquired_at FROM inventory
             WHERE user_id = $1 AND item_id = $2",
        )
        .bind(user_id)
        .bind(item_id)
        .fetch_all(&self.db.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredStack {
                    stack: StackKey {
                        collection_id: row.try_get("collection_id")?,
                        stack_id: row.try_get("stack_id")?,
                    },
                    quantity: row.try_get("quantity")?,
                    expires_at: optional_time(row, "expires_at")?,
                    acquired_via: row.try_get("acquired_via")?,
                    acquired_at: time(row, "acquired_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn item_purchases(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        let count =
            sqlx::query_scalar("SELECT COALESCE(sum(quantity), 0) FROM purchases WHERE user_id = $1 AND item_id = $2")
                .bind(user_id)
                .bind(item_id)
                .fetch_one(&self.db.readers)
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
        .fetch_optional(&self.db.readers)
        .await?;
        Ok(count)
    }

    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>> {
        own(self.tenant_id, user)?;
        let rows = sqlx::query(
            "SELECT id, currency_code, delta, balance_after, reason, reference, module_sha256, created_at FROM ledger
             WHERE user_id = $1 AND ($2 IS NULL OR currency_code = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(user.id)
        .bind(&query.currency_code)
        .bind(query.cursor)
        .bind(query.limit)
        .fetch_all(&self.db.readers)
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
                    created_at: time(row, "created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

/// What each `(player, collection)` holds (see
/// `ReadStore::collection_states`), read through `executor`: in a write
/// transaction, with its own writes.
pub(super) async fn collection_states<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    wanted: &[(Uuid, &str)],
) -> StorageResult<Vec<Vec<Held>>> {
    let wanted_json = wanted.iter().map(|(user_id, collection)| (hex::encode(user_id.as_bytes()), collection));
    let rows = sqlx::query(
        "WITH w AS (SELECT key + 1 AS n, unhex(value ->> 0) AS user_id, value ->> 1 AS collection_id
                    FROM json_each($1))
         SELECT w.n, s.item_id, s.stack_id, s.quantity, s.expires_at, NULL AS currency_code
         FROM w JOIN inventory s ON s.user_id = w.user_id AND s.collection_id = w.collection_id
         WHERE s.quantity > 0 AND (s.expires_at IS NULL OR s.expires_at > $2)
         UNION ALL
         SELECT w.n, NULL, NULL, b.balance, NULL, b.currency_code
         FROM w JOIN balances b ON b.user_id = w.user_id
         WHERE w.collection_id = 'default'",
    )
    .bind(
        serde_json::to_string(&wanted_json.collect::<Vec<_>>())
            .map_err(|error| StorageError::Backend(error.to_string()))?,
    )
    .bind(now())
    .fetch_all(executor)
    .await?;
    let mut states = vec![Vec::new(); wanted.len()];
    for row in &rows {
        let n: i64 = row.try_get("n")?;
        let held = match row.try_get::<Option<String>, _>("currency_code")? {
            Some(currency_code) => Held::Balance { currency_code, balance: row.try_get("quantity")? },
            None => Held::Stack {
                item_id: row.try_get("item_id")?,
                stack_id: row.try_get("stack_id")?,
                quantity: row.try_get("quantity")?,
                expires_at: optional_time(row, "expires_at")?,
            },
        };
        if let Some(state) = usize::try_from(n - 1).ok().and_then(|i| states.get_mut(i)) {
            state.push(held);
        }
    }
    Ok(states)
}
