//! A tenant's store in SQLite: its data in its file (the default one, or
//! its own), every statement scoped to the tenant. The catalog, players and
//! reads implement their traits in files of their own; this file holds the
//! rest of [`TenantStore`]: transactions (`tx`) and the guarded purchase
//! (`batch`).

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

    async fn begin(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>> {
        Ok(Box::new(self.begin_sqlite(scope).await?))
    }

    async fn remembered_balance(&self, user_id: Uuid, code: &str) -> StorageResult<Option<i64>> {
        if let Some(balance) = self.db.seen.get(user_id, code) {
            return Ok(Some(balance));
        }
        // The balance last committed, read without waiting for the writer.
        let balance = sqlx::query_scalar("SELECT balance FROM balances WHERE user_id = $1 AND currency_code = $2")
            .bind(user_id)
            .bind(code)
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(balance)
    }

    async fn commit_guarded(&self, purchase: GuardedPurchase) -> StorageResult<Guarded> {
        self.db.committer.commit(self.tenant_id, purchase).await
    }
}
