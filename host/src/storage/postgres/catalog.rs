//! A tenant's catalog in PostgreSQL: currencies, items, stores, and the
//! catalog version every write moves.

use super::super::*;
use super::rows::{currency_from_row, item_from_row, store_from_row};
use super::{PgTenant, begin};
use sqlx::types::Json;

#[async_trait]
impl CatalogStore for PgTenant {
    async fn catalog_version(&self) -> StorageResult<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM catalog_versions WHERE tenant_id = $1")
            .bind(self.tenant_id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn put_currency(&self, c: &NewCurrency) -> StorageResult<Currency> {
        let tenant_id = self.tenant_id;
        let now = Utc::now();
        let mut tx = begin(&self.db.pool).await?;
        let old: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT recharge_amount, recharge_period_seconds, recharge_max FROM currencies
             WHERE tenant_id = $1 AND code = $2 FOR UPDATE",
        )
        .bind(tenant_id)
        .bind(&c.code)
        .fetch_optional(&mut *tx)
        .await?;
        let recharge = c.recharge.as_ref();
        let new = (recharge.map(|r| r.amount), recharge.map(|r| r.period_seconds), recharge.map(|r| r.max));
        if let Some(old @ (Some(_), Some(_), Some(old_max))) = old
            && old != new
        {
            // What accrued under the old recharge is paid under it, up to now.
            let below_max: Vec<Uuid> = sqlx::query_scalar(
                "SELECT b.user_id FROM balances b JOIN users u ON u.id = b.user_id
                 WHERE u.tenant_id = $1 AND b.currency_code = $2 AND b.balance < $3",
            )
            .bind(tenant_id)
            .bind(&c.code)
            .bind(old_max)
            .fetch_all(&mut *tx)
            .await?;
            if self.db.citus {
                // Citus locks rows of one shard at a time: one player per statement.
                for user_id in &below_max {
                    sqlx::query(settle_statement!("balances b", "b.user_id = $2", "$5::uuid"))
                        .bind(tenant_id)
                        .bind(user_id)
                        .bind(&c.code)
                        .bind(now)
                        .bind(Uuid::now_v7())
                        .execute(&mut *tx)
                        .await?;
                }
            } else {
                let ledger_ids: Vec<Uuid> = below_max.iter().map(|_| Uuid::now_v7()).collect();
                sqlx::query(settle_statement!(
                    "balances b JOIN unnest($2::uuid[], $5::uuid[]) AS t(user_id, ledger_id) ON t.user_id = b.user_id",
                    "true",
                    "t.ledger_id"
                ))
                .bind(tenant_id)
                .bind(&below_max)
                .bind(&c.code)
                .bind(now)
                .bind(&ledger_ids)
                .execute(&mut *tx)
                .await?;
            }
        }
        let row = sqlx::query(concat!(bump_catalog!("$1"), "INSERT INTO currencies AS c (tenant_id, code, name, initial_balance, max_balance, recharge_amount, recharge_period_seconds, recharge_max, recharge_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, code) DO UPDATE SET name = excluded.name, initial_balance = excluded.initial_balance,
               max_balance = excluded.max_balance, recharge_amount = excluded.recharge_amount,
               recharge_period_seconds = excluded.recharge_period_seconds, recharge_max = excluded.recharge_max,
               recharge_since = CASE
                 WHEN (c.recharge_amount, c.recharge_period_seconds, c.recharge_max)
                      IS DISTINCT FROM (excluded.recharge_amount, excluded.recharge_period_seconds, excluded.recharge_max)
                 THEN excluded.recharge_since ELSE c.recharge_since END,
               updated_at = $9
             RETURNING ", currency_columns!()))
        .bind(tenant_id)
        .bind(&c.code)
        .bind(&c.name)
        .bind(c.initial_balance)
        .bind(c.max_balance)
        .bind(new.0)
        .bind(new.1)
        .bind(new.2)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(currency_from_row(&row)?)
    }

    async fn currencies(&self) -> StorageResult<Vec<Currency>> {
        let tenant_id = self.tenant_id;
        let rows = sqlx::query(concat!(
            "SELECT ",
            currency_columns!(),
            " FROM currencies c WHERE tenant_id = $1 ORDER BY code"
        ))
        .bind(tenant_id)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(currency_from_row).collect::<Result<_, _>>()?)
    }

    async fn put_item(&self, item: &NewItem, check: &CatalogCheck<'_>) -> StorageResult<Result<CatalogItem, String>> {
        let tenant_id = self.tenant_id;
        let mut tx = begin(&self.db.pool).await?;
        // The tenant's catalog writes take turns (this holds the lock on its
        // catalog version to the end), so each is checked against the
        // catalog as it is when written.
        sqlx::query(concat!(bump_catalog!("$1"), "SELECT 1")).bind(tenant_id).execute(&mut *tx).await?;
        let rows =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items i WHERE tenant_id = $1 ORDER BY key"))
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await?;
        let items = rows.iter().map(item_from_row).collect::<Result<Vec<_>, _>>()?;
        if let Err(reason) = check(&items) {
            tx.rollback().await?;
            return Ok(Err(reason));
        }
        let row = sqlx::query(concat!("INSERT INTO catalog_items AS i (id, tenant_id, key, name, icon_url, item_type, category, display_properties, prices, contents, duration_seconds, store_only)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, icon_url = excluded.icon_url,
               item_type = excluded.item_type, category = excluded.category, display_properties = excluded.display_properties,
               prices = excluded.prices, contents = excluded.contents, duration_seconds = excluded.duration_seconds,
               store_only = excluded.store_only, updated_at = excluded.updated_at
             RETURNING ", item_columns!()))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(&item.key)
        .bind(&item.name)
        .bind(&item.icon_url)
        .bind(item.item_type.as_str())
        .bind(&item.category)
        .bind(&item.display_properties)
        .bind(Json(&item.prices))
        .bind(Json(&item.contents))
        .bind(item.duration_seconds)
        .bind(item.store_only)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(item_from_row(&row)?))
    }

    async fn items(&self) -> StorageResult<Vec<CatalogItem>> {
        let tenant_id = self.tenant_id;
        let rows =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items i WHERE tenant_id = $1 ORDER BY key"))
                .bind(tenant_id)
                .fetch_all(&self.db.pool)
                .await?;
        Ok(rows.iter().map(item_from_row).collect::<Result<_, _>>()?)
    }

    async fn item_by_key(&self, key: &str) -> StorageResult<Option<CatalogItem>> {
        let tenant_id = self.tenant_id;
        let row =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items i WHERE tenant_id = $1 AND key = $2"))
                .bind(tenant_id)
                .bind(key)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(row.as_ref().map(item_from_row).transpose()?)
    }

    async fn put_store(&self, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store> {
        let tenant_id = self.tenant_id;
        let row = sqlx::query(concat!(
            bump_catalog!("$2"),
            "INSERT INTO stores AS s (id, tenant_id, key, name, listings) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, listings = excluded.listings,
               updated_at = excluded.updated_at
             RETURNING id, key, name, listings, created_at, updated_at"
        ))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(key)
        .bind(name)
        .bind(Json(listings))
        .fetch_one(&self.db.pool)
        .await?;
        Ok(store_from_row(&row)?)
    }

    async fn store_by_key(&self, key: &str) -> StorageResult<Option<Store>> {
        let tenant_id = self.tenant_id;
        let row = sqlx::query(
            "SELECT id, key, name, listings, created_at, updated_at FROM stores WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(store_from_row).transpose()?)
    }

    async fn stores(&self) -> StorageResult<Vec<Store>> {
        let tenant_id = self.tenant_id;
        let rows = sqlx::query(
            "SELECT id, key, name, listings, created_at, updated_at FROM stores WHERE tenant_id = $1 ORDER BY key",
        )
        .bind(tenant_id)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(store_from_row).collect::<Result<_, _>>()?)
    }
}
