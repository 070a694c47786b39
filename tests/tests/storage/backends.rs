//! The backends the conformance scenarios run against: each test gets a
//! fresh, empty store of its own and drops it afterwards.

use economy_host::storage::{ControlStore, DatabaseUrl, PoolSettings, StoreSettings, Stores, TenantStores};
use economy_tests::database::TestDatabase;
use std::sync::Arc;
use std::time::Duration;

/// A store of one backend, for one test.
pub struct Backend {
    pub control: Arc<dyn ControlStore>,
    pub stores: Arc<dyn TenantStores>,
    /// Dropped (and with it the test's database) when the test ends.
    pub database: TestDatabase,
}

/// A fresh PostgreSQL database (or Citus schema), migrated.
pub async fn postgres() -> Backend {
    open(TestDatabase::create("economy_storage").await).await
}

/// A fresh SQLite file, migrated.
pub async fn sqlite() -> Backend {
    open(TestDatabase::sqlite("economy_storage")).await
}

async fn open(database: TestDatabase) -> Backend {
    let pool = PoolSettings {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    };
    let settings = StoreSettings { url: DatabaseUrl::new(database.url.clone()), default_pool: pool, tenant_pool: pool };
    let stores = Arc::new(Stores::open(&settings).await.expect("the stores open"));
    Backend { control: stores.control(), stores, database }
}

/// Runs every scenario of `conformance` against `$backend`, one test each.
macro_rules! conformance {
    ($backend:ident: $($scenario:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let backend = super::$backend().await;
                    crate::conformance::$scenario(&backend).await;
                }
            )*
        }
    };
}

/// Every scenario, against each backend.
macro_rules! every_scenario {
    ($($backend:ident),+) => {
        $(
            conformance!($backend:
    a_balance_commits_only_from_the_row_it_was_read_from_and_the_ledger_follows,
    grants_stack_up_and_takes_commit_only_from_the_quantity_they_read,
    grants_land_in_their_stacks_and_collections_are_read_together,
    a_grant_onto_a_stack_commits_only_if_the_stack_is_as_read,
    listing_counts_commit_only_from_the_count_they_read,
    a_purchase_record_claims_its_idempotency_key_once,
    a_request_record_claims_its_idempotency_key_once,
    the_price_paid_is_the_latest_purchases_of_each_item,
    a_purchase_commits_only_on_the_balance_it_was_decided_on,
    a_commit_answers_the_state_it_left_the_named_collection_in,
    catalog_writes_move_the_catalog_version_and_are_checked_against_the_catalog_as_it_is,
    a_custom_id_names_its_own_player_until_the_server_links_it,
    a_regenerating_balance_is_read_with_its_terms_and_shown_with_its_next_recharge,
    a_stale_journal_leaves_nothing,
    one_tenants_store_never_sees_another_tenants_data,
    modules_belong_to_the_tenant_that_uploaded_them,
    a_tenant_keeps_modules_within_its_quota_and_deletes_only_its_own_inactive_ones,
    module_events_are_the_tenants_own_and_only_the_latest_are_kept,
    writes_dropped_at_any_await_leave_nothing_open,
            );
        )+
    };
}

every_scenario!(postgres, sqlite);
