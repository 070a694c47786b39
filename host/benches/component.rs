//! What the rules component costs per request: a new store, an
//! instantiation from the pre-instantiated component (pooling allocator)
//! and one `purchase` call, on a snapshot that reads nothing (the balance
//! is one this host remembers, and nothing is committed), with
//! fuel and epoch metering on and off, and with the memory of a finished
//! instance reset by dirty-page scan or by a fixed prefix.
//!
//! ```console
//! $ cargo bench -p economy-host --bench component
//! ```

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use economy_host::catalog::Catalog;
use economy_host::commit::{Remembered, Snapshot, Source};
use economy_host::runtime::{Call, PurchaseRequest, RequestContext, Runtime, RuntimeLimits};
use economy_host::storage::{
    DatabaseUrl, ItemType, KeyKind, NewCurrency, NewItem, PoolSettings, Price, StoreSettings, Stores, TenantStore,
    TenantStores, User,
};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A tenant in an embedded store, with a sword for 100 gems and a player
/// whose 1,000,000 gems this host remembers: a purchase reads nothing from
/// the store, so what is measured is the component.
async fn shop() -> (Source, User, Uuid) {
    let path = std::env::temp_dir().join(format!("economy-bench-{}.db", Uuid::new_v4()));
    let pool = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    };
    let url = DatabaseUrl::new(format!("sqlite://{}", path.display()));
    let stores = Stores::open(&StoreSettings { url, default_pool: pool, tenant_pool: pool }).await.expect("a store");
    let keys = KeyKind::ALL.map(|kind| (kind, [kind as u8; 32]));
    let tenant = stores.control().create_tenant("bench", "Bench", &keys, None).await.expect("a tenant");
    let store: Arc<dyn TenantStore> = stores.tenant(tenant.id).await.expect("its store");
    let gems =
        NewCurrency { code: "gems".into(), name: "Gems".into(), initial_balance: 0, max_balance: None, recharge: None };
    store.put_currency(&gems).await.expect("a currency");
    let sword = NewItem {
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
    };
    let sword = store.put_item(&sword, &|_| Ok(())).await.expect("an item").expect("a valid item");
    let player = store.find_or_create_user("player").await.expect("a player");
    let catalog =
        Catalog::new(store.items().await.unwrap(), store.stores().await.unwrap(), store.currencies().await.unwrap());
    let remembered = Arc::new(Remembered::default());
    remembered.set(player.id, "gems", 1_000_000);
    (Source { store, catalog: Arc::new(catalog), remembered }, player, sword.id)
}

fn purchase_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (source, player, item_id) = tokio.block_on(shop());
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
                    catalog: &source.catalog,
                    ctx,
                    player: Default::default(),
                    placement: Default::default(),
                    read_only: false,
                };
                let snapshot = Snapshot::new(source.clone(), player.id, Utc::now(), None, true);
                let invocation = runtime.purchase(call, snapshot, request).await;
                assert!(matches!(invocation.result, Ok(Ok(_))));
            })
        });
    }
}

criterion_group!(benches, purchase_call);
criterion_main!(benches);
