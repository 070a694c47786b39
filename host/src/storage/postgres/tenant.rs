//! A tenant's store in PostgreSQL: its data in its database (the default
//! one, or its own), every statement scoped to the tenant. The statements
//! live in files by concern (`catalog`, `players`, `reads`, `tx`, `batch`);
//! this file only binds them to [`TenantStore`].

use super::super::*;
use super::PgDatabase;
use super::batch::Batched;
use std::sync::Arc;

pub(crate) struct PgTenant {
    pub(super) db: Arc<PgDatabase>,
    pub(super) tenant_id: Uuid,
}

#[async_trait]
impl TenantStore for PgTenant {
    async fn ping(&self) -> StorageResult<()> {
        self.db.ping().await
    }

    async fn catalog_version(&self) -> StorageResult<i64> {
        PgTenant::catalog_version(self).await
    }

    async fn put_currency(&self, currency: &NewCurrency) -> StorageResult<Currency> {
        PgTenant::put_currency(self, currency).await
    }

    async fn currencies(&self) -> StorageResult<Vec<Currency>> {
        PgTenant::currencies(self).await
    }

    async fn put_item(&self, item: &NewItem, check: &CatalogCheck<'_>) -> StorageResult<Result<CatalogItem, String>> {
        PgTenant::put_item(self, item, check).await
    }

    async fn items(&self) -> StorageResult<Vec<CatalogItem>> {
        PgTenant::items(self).await
    }

    async fn item_by_key(&self, key: &str) -> StorageResult<Option<CatalogItem>> {
        PgTenant::item_by_key(self, key).await
    }

    async fn put_store(&self, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store> {
        PgTenant::put_store(self, key, name, listings).await
    }

    async fn store_by_key(&self, key: &str) -> StorageResult<Option<Store>> {
        PgTenant::store_by_key(self, key).await
    }

    async fn stores(&self) -> StorageResult<Vec<Store>> {
        PgTenant::stores(self).await
    }

    async fn find_or_create_user(&self, identity: &str) -> StorageResult<User> {
        PgTenant::find_or_create_user(self, identity).await
    }

    async fn find_user(&self, identity: &str) -> StorageResult<Option<User>> {
        PgTenant::find_user(self, identity).await
    }

    async fn custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<User> {
        PgTenant::custom_id_user(self, custom_id_hash).await
    }

    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool> {
        PgTenant::link_custom_id(self, user, custom_id_hash).await
    }

    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()> {
        PgTenant::create_session(self, user, token_hash, expires_at).await
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>> {
        PgTenant::find_session(self, token_hash).await
    }

    async fn wallet(&self, user: &User, recharging: &[String]) -> StorageResult<Vec<WalletEntry>> {
        PgTenant::wallet(self, user, recharging).await
    }

    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>> {
        PgTenant::inventory(self, user).await
    }

    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>> {
        PgTenant::ledger(self, user, query).await
    }

    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>> {
        PgTenant::idempotency_record(self, user_id, kind, key).await
    }

    async fn begin(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>> {
        Ok(Box::new(self.begin_pg(scope).await?))
    }

    async fn remembered_balance(&self, user_id: Uuid, code: &str) -> StorageResult<Option<i64>> {
        if let Some(balance) = self.db.seen.get(user_id, code) {
            return Ok(Some(balance));
        }
        let balance = sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1 AND currency_code = $2")
            .bind(user_id)
            .bind(code)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(balance)
    }

    async fn commit_guarded(&self, purchase: GuardedPurchase) -> StorageResult<Guarded> {
        if self.db.citus {
            // Citus plans no statement over many players' shards at once:
            // each guarded purchase commits alone, in its player's shard.
            return self.commit_guarded_alone(purchase).await;
        }
        self.db.committers.commit(Batched { tenant_id: self.tenant_id, purchase }).await
    }
}
