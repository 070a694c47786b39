//! What the rules component costs per request: a new store, an
//! instantiation from the pre-instantiated component (pooling allocator)
//! and one `purchase` call, against storage that answers from memory, with
//! fuel and epoch metering on and off, and with the memory of a finished
//! instance reset by dirty-page scan or by a fixed prefix.
//!
//! ```console
//! $ cargo bench -p economy-host --bench component
//! ```

use async_trait::async_trait;
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use economy_host::catalog::Catalog;
use economy_host::runtime::{Call, PurchaseRequest, RequestContext, Runtime, RuntimeLimits};
use economy_host::storage::{
    Attributes, CatalogItem, Currency, Held, InventoryRefusal, ItemType, LedgerReason, NewGrant, Price, PurchaseRecord,
    Recorded, Stack, StackKey, StorageResult, StoredResponse, Tx, WalletRefusal,
};
use std::sync::Arc;
use uuid::Uuid;

/// Storage that accepts every write and knows a balance of 1,000,000.
struct MemoryTx;

#[async_trait]
impl Tx for MemoryTx {
    async fn attributes(&mut self) -> StorageResult<Attributes> {
        Ok(Attributes::new())
    }

    async fn balance(&mut self, _code: &str) -> StorageResult<Option<i64>> {
        Ok(Some(1_000_000))
    }

    async fn change_balance(
        &mut self,
        _code: &str,
        delta: i64,
        _reason: LedgerReason,
        _reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>> {
        Ok(Ok(1_000_000 + delta))
    }

    async fn quantity(&mut self, _item_id: Uuid) -> StorageResult<i64> {
        Ok(0)
    }

    async fn grant_items(&mut self, _grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
        Ok(Ok(vec![]))
    }

    async fn consume(&mut self, _: Uuid, _: &StackKey, _: i64) -> StorageResult<Result<i64, InventoryRefusal>> {
        Ok(Ok(0))
    }

    async fn item_purchases(&mut self, _item_id: Uuid) -> StorageResult<i64> {
        Ok(0)
    }

    async fn listing_purchases(&mut self, _store_id: Uuid, _item_id: Uuid) -> StorageResult<i64> {
        Ok(0)
    }

    async fn claim_listing(&mut self, _: Uuid, _: Uuid, quantity: i64, _cap: i64) -> StorageResult<Option<i64>> {
        Ok(Some(quantity))
    }

    async fn record_purchase(
        &mut self,
        _: &PurchaseRecord,
        _: &[NewGrant],
        _: &StoredResponse,
    ) -> StorageResult<Recorded> {
        Ok(Recorded::Done)
    }

    async fn record_request(&mut self, _key: &str, _hash: &[u8], _response: &StoredResponse) -> StorageResult<bool> {
        Ok(true)
    }

    async fn record_consume(&mut self, _: Uuid, _: Uuid, _: i64, _: i64) -> StorageResult<()> {
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StorageResult<Option<Vec<Held>>> {
        Ok(None)
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        Ok(())
    }
}

fn catalog() -> (Arc<Catalog>, Uuid) {
    let now = Utc::now();
    let id = Uuid::now_v7();
    let sword = CatalogItem {
        id,
        key: "sword".into(),
        name: "Sword".into(),
        icon_url: None,
        item_type: ItemType::Durable,
        category: None,
        display_properties: serde_json::json!({}),
        prices: vec![Price { currency_code: "gems".into(), amount: 100 }],
        contents: vec![],
        duration_seconds: None,
        store_only: false,
        created_at: now,
        updated_at: now,
    };
    let gems = Currency {
        code: "gems".into(),
        name: "Gems".into(),
        initial_balance: 0,
        max_balance: None,
        recharge: None,
        created_at: now,
        updated_at: now,
    };
    (Arc::new(Catalog::new(vec![sword], vec![], vec![gems])), id)
}

fn purchase_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (catalog, item_id) = catalog();
    let variants = [
        ("metered", RuntimeLimits::default()),
        ("unmetered", RuntimeLimits { metering: false, ..RuntimeLimits::default() }),
        ("metered, memory reset by prefix", RuntimeLimits { scan_dirty_pages: false, ..RuntimeLimits::default() }),
    ];
    for (name, limits) in variants {
        let runtime = Runtime::new(limits).expect("the runtime starts");
        let module = runtime.default_module();
        let limits = runtime.limits().for_call(&Default::default());
        c.bench_function(&format!("store + instantiate + purchase ({name})"), |b| {
            b.to_async(&tokio).iter(|| async {
                let ctx = RequestContext {
                    tenant_id: Uuid::nil().to_string(),
                    user_id: Uuid::nil().to_string(),
                    request_id: Uuid::now_v7().to_string(),
                    now_ms: 0,
                };
                let request = PurchaseRequest {
                    item_id: item_id.to_string(),
                    currency_code: "gems".into(),
                    store_id: None,
                    quantity: 1,
                };
                let call = Call {
                    module: &module,
                    limits: &limits,
                    catalog: &catalog,
                    ctx,
                    player: Default::default(),
                    placement: Default::default(),
                    read_only: false,
                };
                let invocation = runtime.purchase(call, Box::new(MemoryTx), request).await;
                assert!(matches!(invocation.result, Ok(Ok(_))));
            })
        });
    }
}

criterion_group!(benches, purchase_call);
criterion_main!(benches);
