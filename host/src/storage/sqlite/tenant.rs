//! A tenant's store in SQLite: its data in its file (the default one, or
//! its own), every statement scoped to the tenant. The catalog, players and
//! reads implement their traits in files of their own; this file holds the
//! rest of [`TenantStore`]: the commit, through the file's committer.

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

    async fn commit(&self, journal: Journal) -> StorageResult<Commit> {
        self.db.committer.commit(self.tenant_id, journal).await
    }

    /// Every journal commits on the file's one writer, in the committer's
    /// batch.
    fn commits_on_the_pool(&self, _: &Journal) -> bool {
        false
    }
}
