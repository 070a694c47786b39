//! A tenant's catalog in SQLite: currencies, items, stores, and the
//! catalog version every write moves (in the write's own transaction).

use super::super::*;
use super::rows::{currency_from_row, item_from_row, store_from_row};
use super::writes::settle;
use super::{SqliteTenant, now};
use sqlx::types::Json;

#[async_trait]
impl CatalogStore for SqliteTenant {
    async fn catalog_version(&self) -> StorageResult<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM catalog_versions WHERE tenant_id = $1")
            .bind(self.tenant_id)
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn put_currency(&self, c: &NewCurrency) -> StorageResult<Currency> {
        let tenant_id = self.tenant_id;
        let mut write = self.db.write().await?;
        let old: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT recharge_amount, recharge_period_seconds, recharge_max FROM currencies
             WHERE tenant_id = $1 AND code = $2",
        )
        .bind(tenant_id)
        .bind(&c.code)
        .fetch_optional(write.connection())
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
            .fetch_all(write.connection())
            .await?;
            let now = now();
            for user_id in below_max {
                settle(write.connection(), tenant_id, user_id, &c.code, now).await?;
            }
        }
        sqlx::query(bump_catalog!()).bind(tenant_id).execute(write.connection()).await?;
        let now = now();
        let row = sqlx::query(concat!(
            "INSERT INTO currencies AS c (tenant_id, code, name, initial_balance, max_balance, recharge_amount,
                                          recharge_period_seconds, recharge_max, recharge_since, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9)
             ON CONFLICT (tenant_id, code) DO UPDATE SET name = excluded.name,
               initial_balance = excluded.initial_balance, max_balance = excluded.max_balance,
               recharge_amount = excluded.recharge_amount, recharge_period_seconds = excluded.recharge_period_seconds,
               recharge_max = excluded.recharge_max,
               recharge_since = CASE
                 WHEN c.recharge_amount IS excluded.recharge_amount
                      AND c.recharge_period_seconds IS excluded.recharge_period_seconds
                      AND c.recharge_max IS excluded.recharge_max
                 THEN c.recharge_since ELSE excluded.recharge_since END,
               updated_at = excluded.updated_at
             RETURNING ",
            currency_columns!()
        ))
        .bind(tenant_id)
        .bind(&c.code)
        .bind(&c.name)
        .bind(c.initial_balance)
        .bind(c.max_balance)
        .bind(new.0)
        .bind(new.1)
        .bind(new.2)
        .bind(now)
        .fetch_one(write.connection())
        .await?;
        write.commit().await?;
        Ok(currency_from_row(&row)?)
    }

    async fn currencies(&self) -> StorageResult<Vec<Currency>> {
        let rows =
            sqlx::query(concat!("SELECT ", currency_columns!(), " FROM currencies WHERE tenant_id = $1 ORDER BY code"))
                .bind(self.tenant_id)
                .fetch_all(&self.db.readers)
                .await?;
        Ok(rows.iter().map(currency_from_row).collect::<Result<_, _>>()?)
    }

    async fn put_item(&self, item: &NewItem, check: &CatalogCheck<'_>) -> StorageResult<Result<CatalogItem, String>> {
        let tenant_id = self.tenant_id;
        // The write transaction has the file to itself: the check sees the
        // catalog as it is when the item is written.
        let mut write = self.db.write().await?;
        let rows =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items WHERE tenant_id = $1 ORDER BY key"))
                .bind(tenant_id)
                .fetch_all(write.connection())
                .await?;
        let items = rows.iter().map(item_from_row).collect::<Result<Vec<_>, _>>()?;
        if let Err(reason) = check(&items) {
            write.rollback().await?;
            return Ok(Err(reason));
        }
        sqlx::query(bump_catalog!()).bind(tenant_id).execute(write.connection()).await?;
        let row = sqlx::query(concat!(
            "INSERT INTO catalog_items (id, tenant_id, key, name, icon_url, item_type, category, display_properties,
                                        prices, contents, duration_seconds, store_only, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
             ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, icon_url = excluded.icon_url,
               item_type = excluded.item_type, category = excluded.category,
               display_properties = excluded.display_properties, prices = excluded.prices,
               contents = excluded.contents, duration_seconds = excluded.duration_seconds,
               store_only = excluded.store_only, updated_at = excluded.updated_at
             RETURNING ",
            item_columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(&item.key)
        .bind(&item.name)
        .bind(&item.icon_url)
        .bind(item.item_type.as_str())
        .bind(&item.category)
        .bind(Json(&item.display_properties))
        .bind(Json(&item.prices))
        .bind(Json(&item.contents))
        .bind(item.duration_seconds)
        .bind(item.store_only)
        .bind(now())
        .fetch_one(write.connection())
        .await?;
        write.commit().await?;
        Ok(Ok(item_from_row(&row)?))
    }

    async fn items(&self) -> StorageResult<Vec<CatalogItem>> {
        let rows =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items WHERE tenant_id = $1 ORDER BY key"))
                .bind(self.tenant_id)
                .fetch_all(&self.db.readers)
                .await?;
        Ok(rows.iter().map(item_from_row).collect::<Result<_, _>>()?)
    }

    async fn item_by_key(&self, key: &str) -> StorageResult<Option<CatalogItem>> {
        let row =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items WHERE tenant_id = $1 AND key = $2"))
                .bind(self.tenant_id)
                .bind(key)
                .fetch_optional(&self.db.readers)
                .await?;
        Ok(row.as_ref().map(item_from_row).transpose()?)
    }

    async fn put_store(&self, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store> {
        let tenant_id = self.tenant_id;
        let mut write = self.db.write().await?;
        sqlx::query(bump_catalog!()).bind(tenant_id).execute(write.connection()).await?;
        let row = sqlx::query(concat!(
            "INSERT INTO stores (id, tenant_id, key, name, listings, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, listings = excluded.listings,
               updated_at = excluded.updated_at
             RETURNING ",
            store_columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(key)
        .bind(name)
        .bind(Json(listings))
        .bind(now())
        .fetch_one(write.connection())
        .await?;
        write.commit().await?;
        Ok(store_from_row(&row)?)
    }

    async fn store_by_key(&self, key: &str) -> StorageResult<Option<Store>> {
        let row = sqlx::query(concat!("SELECT ", store_columns!(), " FROM stores WHERE tenant_id = $1 AND key = $2"))
            .bind(self.tenant_id)
            .bind(key)
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(row.as_ref().map(store_from_row).transpose()?)
    }

    async fn stores(&self) -> StorageResult<Vec<Store>> {
        let rows = sqlx::query(concat!("SELECT ", store_columns!(), " FROM stores WHERE tenant_id = $1 ORDER BY key"))
            .bind(self.tenant_id)
            .fetch_all(&self.db.readers)
            .await?;
        Ok(rows.iter().map(store_from_row).collect::<Result<_, _>>()?)
    }
}
