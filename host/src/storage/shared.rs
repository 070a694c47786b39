//! A tenant's share of a database it shares with other tenants. Every call
//! of a tenant's store takes one of the tenant's places first, so no tenant
//! holds more than its share of the database's connections at once (half
//! of them): one tenant's flood of requests waits on its own places, and
//! the others' find the pool free. A tenant whose places stay taken past
//! the database's wait is answered busy by itself. A tenant with a
//! database of its own has its whole pool, and no share.

use super::*;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

pub(crate) struct Shared {
    inner: Arc<dyn TenantStore>,
    places: Semaphore,
    wait: Duration,
}

impl Shared {
    /// `inner`, with `places` calls at once, each waiting at most `wait`
    /// for its place.
    pub(crate) fn new(inner: Arc<dyn TenantStore>, places: usize, wait: Duration) -> Self {
        Self { inner, places: Semaphore::new(places.max(1)), wait }
    }

    async fn place(&self) -> StorageResult<SemaphorePermit<'_>> {
        let busy = || StorageError::Busy("the tenant's share of its database's connections stayed in use".into());
        let permit = tokio::time::timeout(self.wait, self.places.acquire()).await.map_err(|_| busy())?;
        permit.map_err(|_| busy())
    }
}

/// Each method takes a place, then calls the tenant's store.
macro_rules! in_place {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        let _place = $self.place().await?;
        $self.inner.$method($($arg),*).await
    }};
}

#[async_trait]
impl TenantStore for Shared {
    async fn ping(&self) -> StorageResult<()> {
        in_place!(self.ping())
    }

    /// A commit that joins the committers' batch holds none of the pool's
    /// connections: it takes no place (and waits in the batch's queue,
    /// whose size is the committers' bound).
    async fn commit(&self, journal: Journal) -> StorageResult<Commit> {
        match self.inner.commits_on_the_pool(&journal) {
            true => in_place!(self.commit(journal)),
            false => self.inner.commit(journal).await,
        }
    }

    fn commits_on_the_pool(&self, journal: &Journal) -> bool {
        self.inner.commits_on_the_pool(journal)
    }
}

#[async_trait]
impl CatalogStore for Shared {
    async fn catalog_version(&self) -> StorageResult<i64> {
        in_place!(self.catalog_version())
    }

    async fn put_currency(&self, currency: &NewCurrency) -> StorageResult<Currency> {
        in_place!(self.put_currency(currency))
    }

    async fn currencies(&self) -> StorageResult<Vec<Currency>> {
        in_place!(self.currencies())
    }

    async fn put_item(&self, item: &NewItem, check: &CatalogCheck<'_>) -> StorageResult<Result<CatalogItem, String>> {
        in_place!(self.put_item(item, check))
    }

    async fn items(&self) -> StorageResult<Vec<CatalogItem>> {
        in_place!(self.items())
    }

    async fn item_by_key(&self, key: &str) -> StorageResult<Option<CatalogItem>> {
        in_place!(self.item_by_key(key))
    }

    async fn put_store(&self, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store> {
        in_place!(self.put_store(key, name, listings))
    }

    async fn store_by_key(&self, key: &str) -> StorageResult<Option<Store>> {
        in_place!(self.store_by_key(key))
    }

    async fn stores(&self) -> StorageResult<Vec<Store>> {
        in_place!(self.stores())
    }
}

#[async_trait]
impl PlayerStore for Shared {
    async fn find_user(&self, identity: &str) -> StorageResult<Option<User>> {
        in_place!(self.find_user(identity))
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> StorageResult<Option<User>> {
        in_place!(self.find_user_by_id(user_id))
    }

    async fn create_user(&self, identity: &str) -> StorageResult<Option<User>> {
        in_place!(self.create_user(identity))
    }

    async fn find_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>> {
        in_place!(self.find_custom_id_user(custom_id_hash))
    }

    async fn create_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>> {
        in_place!(self.create_custom_id_user(custom_id_hash))
    }

    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool> {
        in_place!(self.link_custom_id(user, custom_id_hash))
    }

    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()> {
        in_place!(self.create_session(user, token_hash, expires_at))
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>> {
        in_place!(self.find_session(token_hash))
    }

    async fn attributes(&self, user_id: Uuid) -> StorageResult<Attributes> {
        in_place!(self.attributes(user_id))
    }

    async fn set_attributes(&self, user: &User, attributes: &Attributes) -> StorageResult<()> {
        in_place!(self.set_attributes(user, attributes))
    }
}

#[async_trait]
impl ReadStore for Shared {
    async fn wallet(&self, user: &User) -> StorageResult<Vec<WalletEntry>> {
        in_place!(self.wallet(user))
    }

    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>> {
        in_place!(self.inventory(user))
    }

    async fn paid_prices(&self, user: &User) -> StorageResult<Vec<PaidPrice>> {
        in_place!(self.paid_prices(user))
    }

    async fn bundle_purchases(&self, user: &User) -> StorageResult<Vec<BundlePurchase>> {
        in_place!(self.bundle_purchases(user))
    }

    async fn collection_states(&self, wanted: &[(User, String)]) -> StorageResult<Vec<Vec<Held>>> {
        in_place!(self.collection_states(wanted))
    }

    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>> {
        in_place!(self.ledger(user, query))
    }

    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>> {
        in_place!(self.idempotency_record(user_id, kind, key))
    }

    async fn balance_read(&self, user_id: Uuid, code: &str) -> StorageResult<Option<BalanceRead>> {
        in_place!(self.balance_read(user_id, code))
    }

    async fn stacks(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<Vec<StoredStack>> {
        in_place!(self.stacks(user_id, item_id))
    }

    async fn item_purchases(&self, user_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        in_place!(self.item_purchases(user_id, item_id))
    }

    async fn listing_purchases(&self, user_id: Uuid, store_id: Uuid, item_id: Uuid) -> StorageResult<Option<i64>> {
        in_place!(self.listing_purchases(user_id, store_id, item_id))
    }
}
