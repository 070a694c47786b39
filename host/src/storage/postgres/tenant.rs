//! A tenant's store in PostgreSQL: its data in its database (the default
//! one, or its own), every statement scoped to the tenant. The catalog,
//! players and reads implement their traits in files of their own; this
//! file holds the rest of [`TenantStore`]: the commit, by group commit
//! (`batch`) for the guarded purchase's shape, else alone (`commit`).

use super::super::guarded::Shaped;
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

    async fn commit(&self, journal: Journal) -> StorageResult<Commit> {
        // Citus plans no statement over many players' shards at once: each
        // journal commits alone, in its player's shard.
        if self.db.citus {
            return self.commit_alone(journal).await;
        }
        match Shaped::of(journal) {
            Shaped::Guarded(purchase) => {
                self.db.committers.commit(Batched { tenant_id: self.tenant_id, purchase }).await
            }
            Shaped::Other(journal) => self.commit_alone(journal).await,
        }
    }

    fn commits_on_the_pool(&self, journal: &Journal) -> bool {
        self.db.citus || !Shaped::fits(journal)
    }
}
