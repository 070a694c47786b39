//! A tenant's store in PostgreSQL: its data in its database (the default
//! one, or its own), every statement scoped to the tenant. The catalog,
//! players and reads implement their traits in files of their own; this
//! file holds the rest of [`TenantStore`]: transactions (`tx`) and the
//! guarded purchase (`batch`).

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
