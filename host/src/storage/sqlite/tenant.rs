//! A tenant's store in SQLite: its data in its file (the default one, or
//! its own), every statement scoped to the tenant. The statements live in
//! files by concern (`catalog`, `players`, `reads`, `tx`, `batch`); this
//! file only binds them to [`TenantStore`].

use super::super::*;
use super::SqliteDatabase;
use std::sync::Arc;

pub(crate) struct SqliteTenant {
    pub(super) db: Arc<SqliteDatabase>,
    pub(super) tenant_id: Uuid,
}

#[async_trait]
impl TenantStore for SqliteTenant {
    async fn ping(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.db.readers).await?;
        Ok(())
    }

    async fn catalog_version(&self) -> StorageResult<i64> {
        SqliteTenant::catalog_version(self).await
    }

    async fn put_currency(&self, currency: &NewCurrency) -> StorageResult<Currency> {
        SqliteTenant::put_currency(self, currency).await
    }

    async fn currencies(&self) -> StorageResult<Vec<Currency>> {
        SqliteTenant::currencies(self).await
    }

    async fn put_item(&self, item: &NewItem, check: &CatalogCheck<'_>) -> StorageResult<Result<CatalogItem, String>> {
        SqliteTenant::put_item(self, item, check).await
    }

    async fn items(&self) -> StorageResult<Vec<CatalogItem>> {
        SqliteTenant::items(self).await
    }

    async fn item_by_key(&self, key: &str) -> StorageResult<Option<CatalogItem>> {
        SqliteTenant::item_by_key(self, key).await
    }

    async fn put_store(&self, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store> {
        SqliteTenant::put_store(self, key, name, listings).await
    }

    async fn store_by_key(&self, key: &str) -> StorageResult<Option<Store>> {
        SqliteTenant::store_by_key(self, key).await
    }

    async fn stores(&self) -> StorageResult<Vec<Store>> {
        SqliteTenant::stores(self).await
    }

    async fn find_or_create_user(&self, identity: &str) -> StorageResult<User> {
        SqliteTenant::find_or_create_user(self, identity).await
    }

    async fn find_user(&self, identity: &str) -> StorageResult<Option<User>> {
        SqliteTenant::find_user(self, identity).await
    }

    async fn custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<User> {
        SqliteTenant::custom_id_user(self, custom_id_hash).await
    }

    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool> {
        SqliteTenant::link_custom_id(self, user, custom_id_hash).await
    }

    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()> {
        SqliteTenant::create_session(self, user, token_hash, expires_at).await
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>> {
        SqliteTenant::find_session(self, token_hash).await
    }

    async fn wallet(&self, user: &User, recharging: &[String]) -> StorageResult<Vec<WalletEntry>> {
        SqliteTenant::wallet(self, user, recharging).await
    }

    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>> {
        SqliteTenant::inventory(self, user).await
    }

    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>> {
        SqliteTenant::ledger(self, user, query).await
    }

    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>> {
        SqliteTenant::idempotency_record(self, user_id, kind, key).await
    }

    async fn begin(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>> {
        Ok(Box::new(self.begin_sqlite(scope).await?))
    }

    async fn remembered_balance(&self, user_id: Uuid, code: &str) -> StorageResult<Option<i64>> {
        match self.db.seen.get(user_id, code) {
            Some(balance) => Ok(Some(balance)),
            None => self.stored_balance(user_id, code).await,
        }
    }

    async fn commit_guarded(&self, purchase: GuardedPurchase) -> StorageResult<Guarded> {
        self.db.committer.commit(self.tenant_id, purchase).await
    }
}
