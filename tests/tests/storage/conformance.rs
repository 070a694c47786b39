//! What every storage backend must do, written once against the storage
//! traits. Each scenario gets a fresh, empty backend.

use crate::backends::Backend;
use chrono::Utc;
use economy_host::secrets;
use economy_host::storage::{
    CatalogItem, Content, Guarded, GuardedPurchase, Held, InventoryRefusal, ItemType, KeyKind, LedgerQuery,
    LedgerReason, MODULE_EVENTS_KEPT, ModuleEvent, ModuleEventKind, NewCurrency, NewGrant, NewItem, PaidPrice,
    PurchaseRecord, Recharge, RecordKind, Recorded, StackKey, StoredResponse, TenantStore, TxScope, User,
    WalletRefusal,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A tenant with a `gems` currency (initial balance 100, max 1,000) and a
/// `potion` item, and a player.
async fn shop(backend: &Backend, slug: &str) -> (Arc<dyn TenantStore>, User, CatalogItem) {
    let keys = KeyKind::ALL.map(|kind| (kind, secrets::hash(&format!("{slug}-{}", kind.as_str()))));
    let tenant = backend.control.create_tenant(slug, slug, &keys, None).await.expect("a tenant");
    let store = backend.stores.tenant(tenant.id).await.expect("the tenant's store");
    let gems = NewCurrency {
        code: "gems".into(),
        name: "Gems".into(),
        initial_balance: 100,
        max_balance: Some(1_000),
        recharge: None,
    };
    store.put_currency(&gems).await.expect("a currency");
    let potion = store.put_item(&item("potion", ItemType::Consumable), &|_| Ok(())).await.unwrap().unwrap();
    let player = store.find_or_create_user("player-1").await.expect("a player");
    (store, player, potion)
}

fn item(key: &str, item_type: ItemType) -> NewItem {
    NewItem {
        key: key.into(),
        name: key.into(),
        icon_url: None,
        item_type,
        category: None,
        display_properties: json!({}),
        prices: vec![],
        contents: vec![],
        duration_seconds: None,
        store_only: false,
    }
}

fn scope(user: &User) -> TxScope {
    TxScope { user_id: user.id, module_sha256: None, recharging: Arc::from(Vec::<String>::new()), collection: None }
}

fn grant(item: &CatalogItem, quantity: i64) -> NewGrant {
    NewGrant::new(item.id, quantity, "grant", None)
}

fn record(item: &CatalogItem, key: Option<&str>) -> PurchaseRecord {
    PurchaseRecord {
        id: Uuid::now_v7(),
        item_id: item.id,
        store_id: None,
        quantity: 1,
        currency_code: "gems".into(),
        unit_price: 10,
        total: 10,
        idempotency_key: key.map(str::to_owned),
        request_hash: vec![1, 2, 3],
    }
}

/// A 10-gem purchase of `item` decided on the balance `before`, with `grants`.
fn guarded(player: &User, item: &CatalogItem, before: i64, key: &str, grants: Vec<NewGrant>) -> GuardedPurchase {
    GuardedPurchase {
        user_id: player.id,
        module_sha256: None,
        currency_code: "gems".into(),
        before,
        delta: -10,
        reason: LedgerReason::Purchase,
        reference: None,
        record: record(item, Some(key)),
        grants,
        response: response(),
        collection: None,
    }
}

fn response() -> StoredResponse {
    StoredResponse { status: 200, body: json!({"answer": 42}) }
}

async fn balance(store: &Arc<dyn TenantStore>, user: &User, code: &str) -> i64 {
    let mut tx = store.begin(scope(user)).await.unwrap();
    let balance = tx.balance(code).await.unwrap().expect("a known currency");
    tx.rollback().await.unwrap();
    balance
}

pub async fn balance_changes_never_overdraw_nor_pass_the_max_and_the_ledger_follows(backend: &Backend) {
    let (store, player, _) = shop(backend, "game").await;
    let mut tx = store.begin(scope(&player)).await.unwrap();
    assert_eq!(tx.balance("gems").await.unwrap(), Some(100));
    assert_eq!(tx.balance("gold").await.unwrap(), None);
    assert_eq!(tx.change_balance("gems", -30, LedgerReason::Purchase, Some("r1")).await.unwrap(), Ok(70));
    assert_eq!(
        tx.change_balance("gems", -71, LedgerReason::Purchase, None).await.unwrap(),
        Err(WalletRefusal::InsufficientBalance)
    );
    assert_eq!(
        tx.change_balance("gems", 931, LedgerReason::Grant, None).await.unwrap(),
        Err(WalletRefusal::MaxBalanceExceeded)
    );
    assert_eq!(
        tx.change_balance("gold", 1, LedgerReason::Grant, None).await.unwrap(),
        Err(WalletRefusal::UnknownCurrency)
    );
    assert_eq!(tx.change_balance("gems", 930, LedgerReason::Grant, None).await.unwrap(), Ok(1_000));
    tx.commit().await.unwrap();
    let query = LedgerQuery { currency_code: Some("gems".into()), limit: 10, cursor: None };
    let ledger = store.ledger(&player, &query).await.unwrap();
    let deltas: Vec<i64> = ledger.iter().map(|entry| entry.delta).collect();
    assert_eq!(deltas, [930, -30, 100], "newest first, the initial balance last");
    assert_eq!(ledger[0].balance_after, 1_000);
}

pub async fn grants_stack_up_and_consumes_never_go_negative(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let mut tx = store.begin(scope(&player)).await.unwrap();
    let stacks = tx.grant_items(&[grant(&potion, 2)]).await.unwrap().unwrap();
    assert_eq!(stacks[0].quantity, 2);
    let stacks = tx.grant_items(&[grant(&potion, 3)]).await.unwrap().unwrap();
    assert_eq!(stacks[0].quantity, 5);
    let unknown = NewGrant { item_id: Uuid::now_v7(), ..grant(&potion, 1) };
    assert_eq!(tx.grant_items(&[grant(&potion, 1), unknown]).await.unwrap().err(), Some(InventoryRefusal::UnknownItem));
    assert_eq!(tx.consume(potion.id, &StackKey::default(), 4).await.unwrap(), Ok(1));
    assert_eq!(
        tx.consume(potion.id, &StackKey::default(), 2).await.unwrap(),
        Err(InventoryRefusal::InsufficientQuantity)
    );
    assert_eq!(tx.quantity(potion.id).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let inventory = store.inventory(&player).await.unwrap();
    assert_eq!(inventory.len(), 1);
    assert_eq!((inventory[0].quantity, inventory[0].catalog_items.key.as_str()), (1, "potion"));
}

pub async fn grants_land_in_their_stacks_and_collections_are_read_together(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let other = store.find_or_create_user("player-2").await.unwrap();
    let hero = StackKey { collection_id: "hero".into(), stack_id: "bag".into() };
    let mut tx = store.begin(scope(&player)).await.unwrap();
    let placed =
        NewGrant { stack: hero.clone(), display_properties: Some(json!({"color": "red"})), ..grant(&potion, 2) };
    let stacks = tx.grant_items(std::slice::from_ref(&placed)).await.unwrap().unwrap();
    assert_eq!((stacks[0].collection_id.as_str(), stacks[0].stack_id.as_str()), ("hero", "bag"));
    tx.grant_items(&[grant(&potion, 1)]).await.unwrap().unwrap();
    let again = NewGrant { display_properties: Some(json!({"color": "blue"})), ..placed };
    tx.grant_items(&[again]).await.unwrap().unwrap();
    assert_eq!(tx.consume(potion.id, &hero, 5).await.unwrap(), Err(InventoryRefusal::InsufficientQuantity));
    assert_eq!(tx.consume(potion.id, &hero, 1).await.unwrap(), Ok(3), "taken from the stack named");
    assert_eq!(tx.quantity(potion.id).await.unwrap(), 4, "every stack counts");
    tx.commit().await.unwrap();

    let inventory = store.inventory(&player).await.unwrap();
    let bag = inventory.iter().find(|stack| stack.collection_id == "hero").expect("the hero stack");
    assert_eq!((bag.stack_id.as_str(), bag.quantity), ("bag", 3));
    assert_eq!(bag.display_properties, Some(json!({"color": "red"})), "a stack keeps the values it was created with");

    let wanted = [
        (player.clone(), "default".to_owned()),
        (other.clone(), "hero".to_owned()),
        (player.clone(), "hero".to_owned()),
        (other.clone(), "default".to_owned()),
    ];
    let states = store.collection_states(&wanted).await.unwrap();
    let stack = |quantity| Held::Stack { item_id: potion.id, stack_id: "default".into(), quantity, expires_at: None };
    let gems = Held::Balance { currency_code: "gems".into(), balance: 100 };
    let sorted = |mut held: Vec<Held>| {
        held.sort();
        held
    };
    assert_eq!(sorted(states[0].clone()), sorted(vec![stack(1), gems.clone()]));
    assert_eq!(states[1], vec![], "nothing in the other player's hero collection");
    let bag = Held::Stack { item_id: potion.id, stack_id: "bag".into(), quantity: 3, expires_at: None };
    assert_eq!(states[2], vec![bag]);
    assert_eq!(states[3], vec![gems]);

    // A stack used up starts over with the next grant's values.
    let mut tx = store.begin(scope(&player)).await.unwrap();
    assert_eq!(tx.consume(potion.id, &hero, 3).await.unwrap(), Ok(0));
    let bundle = Uuid::now_v7();
    let fresh = NewGrant {
        stack: hero.clone(),
        display_properties: Some(json!({"color": "green"})),
        bundle_purchase_id: Some(bundle),
        ..grant(&potion, 1)
    };
    tx.grant_items(&[fresh]).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let inventory = store.inventory(&player).await.unwrap();
    let bag = inventory.iter().find(|stack| stack.collection_id == "hero").expect("the hero stack");
    assert_eq!(bag.quantity, 1);
    assert_eq!((&bag.display_properties, bag.bundle_purchase_id), (&Some(json!({"color": "green"})), Some(bundle)));
}

pub async fn listing_claims_never_pass_their_cap(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let store_id = Uuid::now_v7();
    let mut tx = store.begin(scope(&player)).await.unwrap();
    assert_eq!(tx.claim_listing(store_id, potion.id, 2, 3).await.unwrap(), Some(2));
    assert_eq!(tx.claim_listing(store_id, potion.id, 2, 3).await.unwrap(), None);
    assert_eq!(tx.claim_listing(store_id, potion.id, 1, 3).await.unwrap(), Some(3));
    assert_eq!(tx.listing_purchases(store_id, potion.id).await.unwrap(), 3);
    tx.commit().await.unwrap();
}

pub async fn a_purchase_record_claims_its_idempotency_key_once(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let mut first = store.begin(scope(&player)).await.unwrap();
    let recorded = first.record_purchase(&record(&potion, Some("k")), &[grant(&potion, 1)], &response()).await;
    assert_eq!(recorded.unwrap(), Recorded::Done);
    first.commit().await.unwrap();
    let mut second = store.begin(scope(&player)).await.unwrap();
    let recorded = second.record_purchase(&record(&potion, Some("k")), &[grant(&potion, 1)], &response()).await;
    assert_eq!(recorded.unwrap(), Recorded::KeyTaken);
    second.rollback().await.unwrap();
    let earlier = store.idempotency_record(player.id, RecordKind::Purchase, "k").await.unwrap().expect("a record");
    assert_eq!((earlier.request_hash, earlier.response.body), (vec![1, 2, 3], json!({"answer": 42})));
    let mut tx = store.begin(scope(&player)).await.unwrap();
    assert_eq!(tx.quantity(potion.id).await.unwrap(), 1, "the grant rode the first record only");
    assert_eq!(tx.item_purchases(potion.id).await.unwrap(), 1);
    tx.rollback().await.unwrap();
}

pub async fn the_price_paid_is_the_latest_purchases_of_each_item(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let sword = store.put_item(&item("sword", ItemType::Durable), &|_| Ok(())).await.unwrap().unwrap();
    assert_eq!(store.paid_prices(&player).await.unwrap(), vec![], "nothing bought yet");
    for (item, unit_price) in [(&potion, 10), (&sword, 40), (&potion, 7)] {
        let mut tx = store.begin(scope(&player)).await.unwrap();
        let record = PurchaseRecord { unit_price, total: unit_price, ..record(item, None) };
        assert_eq!(tx.record_purchase(&record, &[grant(item, 1)], &response()).await.unwrap(), Recorded::Done);
        tx.commit().await.unwrap();
    }
    let mut paid = store.paid_prices(&player).await.unwrap();
    paid.sort_by_key(|price| price.unit_price);
    let expected = [(potion.id, 7), (sword.id, 40)].map(|(item_id, unit_price)| PaidPrice {
        item_id,
        currency_code: "gems".into(),
        unit_price,
    });
    assert_eq!(paid, expected, "the latest purchase's price, one per item");
    let other = store.find_or_create_user("player-2").await.unwrap();
    assert_eq!(store.paid_prices(&other).await.unwrap(), vec![], "another player's purchases are not theirs");
}

pub async fn a_request_record_claims_its_idempotency_key_once(backend: &Backend) {
    let (store, player, _) = shop(backend, "game").await;
    let mut first = store.begin(scope(&player)).await.unwrap();
    assert!(first.record_request("k", &[9], &response()).await.unwrap());
    first.commit().await.unwrap();
    let mut second = store.begin(scope(&player)).await.unwrap();
    assert!(!second.record_request("k", &[9], &response()).await.unwrap());
    second.rollback().await.unwrap();
    let earlier = store.idempotency_record(player.id, RecordKind::Request, "k").await.unwrap().expect("a record");
    assert_eq!(earlier.response.body, json!({"answer": 42}));
    assert!(store.idempotency_record(player.id, RecordKind::Purchase, "k").await.unwrap().is_none());
}

pub async fn a_guarded_purchase_commits_only_on_the_balance_it_was_decided_on(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let guarded = |before: i64, key: &str| guarded(&player, &potion, before, key, vec![grant(&potion, 1)]);
    let remembered = store.remembered_balance(player.id, "gems").await.unwrap();
    assert_eq!(remembered, Some(100));
    let committed = Guarded::Committed { balance_after: 90, collection: None };
    assert_eq!(store.commit_guarded(guarded(100, "a")).await.unwrap(), committed);
    assert_eq!(store.commit_guarded(guarded(100, "b")).await.unwrap(), Guarded::Stale, "the balance moved");
    assert_eq!(store.commit_guarded(guarded(90, "a")).await.unwrap(), Guarded::Stale, "the key is taken");
    assert_eq!(balance(&store, &player, "gems").await, 90);
    let mut tx = store.begin(scope(&player)).await.unwrap();
    assert_eq!(tx.quantity(potion.id).await.unwrap(), 1, "nothing of a stale purchase was written");
    tx.rollback().await.unwrap();
}

/// A commit asked for a collection answers its state as it left it: the
/// same as a read of the collection right after (the stacks it wrote as
/// written, the others untouched, used up and expired ones left out, the
/// balances in the default collection).
pub async fn a_commit_answers_the_state_it_left_the_named_collection_in(backend: &Backend) {
    let (store, _, potion) = shop(backend, "game").await;
    let coins = NewCurrency {
        code: "coins".into(),
        name: "Coins".into(),
        initial_balance: 7,
        max_balance: None,
        recharge: None,
    };
    store.put_currency(&coins).await.unwrap();
    let sword = store.put_item(&item("sword", ItemType::Durable), &|_| Ok(())).await.unwrap().unwrap();
    let player = store.find_or_create_user("collector").await.unwrap();
    let at = |collection_id: &str, stack_id: &str| StackKey {
        collection_id: collection_id.into(),
        stack_id: stack_id.into(),
    };
    let mut tx = store.begin(scope(&player)).await.unwrap();
    let earlier = [
        NewGrant { stack: at("default", "bag"), ..grant(&potion, 3) },
        NewGrant { stack: at("default", "empty"), ..grant(&sword, 1) },
        NewGrant { stack: at("default", "gone"), ..NewGrant::new(potion.id, 4, "grant", Some(0)) },
        NewGrant { stack: at("hero", "default"), ..grant(&sword, 1) },
    ];
    for grant in &earlier {
        tx.grant_items(std::slice::from_ref(grant)).await.unwrap().unwrap();
    }
    tx.grant_items(&[grant(&potion, 2)]).await.unwrap().unwrap();
    assert_eq!(tx.consume(sword.id, &at("default", "empty"), 1).await.unwrap(), Ok(0));
    assert_eq!(tx.commit().await.unwrap(), None, "no collection asked, none answered");
    let read = |collection: &str| {
        let (store, player, collection) = (store.clone(), player.clone(), collection.to_owned());
        async move {
            let mut state = store.collection_states(&[(player, collection)]).await.unwrap().remove(0);
            state.sort();
            state
        }
    };
    let sorted = |mut held: Vec<Held>| {
        held.sort();
        held
    };
    let guarded = |before: i64, key: &str, grants: Vec<NewGrant>, collection: Option<&str>| GuardedPurchase {
        collection: collection.map(str::to_owned),
        ..guarded(&player, &potion, before, key, grants)
    };

    // Into a stack that exists and one that does not, answering the default collection.
    let grants = vec![grant(&potion, 1), NewGrant { stack: at("default", "new"), ..grant(&sword, 2) }];
    let Guarded::Committed { balance_after: 90, collection: Some(state) } =
        store.commit_guarded(guarded(100, "a", grants, Some("default"))).await.unwrap()
    else {
        panic!("the purchase commits and answers its collection");
    };
    let after = read("default").await;
    assert_eq!(sorted(state), after);
    let stack = |item: &CatalogItem, stack_id: &str, quantity| Held::Stack {
        item_id: item.id,
        stack_id: stack_id.into(),
        quantity,
        expires_at: None,
    };
    let expected = vec![
        stack(&potion, "default", 3),
        stack(&potion, "bag", 3),
        stack(&sword, "new", 2),
        Held::Balance { currency_code: "gems".into(), balance: 90 },
        Held::Balance { currency_code: "coins".into(), balance: 7 },
    ];
    assert_eq!(after, sorted(expected), "used up and expired stacks are left out");

    // Into another collection: its stacks only, a timed one with its expiry.
    let timed = NewGrant { stack: at("hero", "timed"), ..NewGrant::new(sword.id, 1, "purchase", Some(3600)) };
    let Guarded::Committed { collection: Some(state), .. } =
        store.commit_guarded(guarded(90, "b", vec![timed], Some("hero"))).await.unwrap()
    else {
        panic!("the purchase commits and answers its collection");
    };
    let hero = read("hero").await;
    assert_eq!(sorted(state), hero);
    let expiries: Vec<_> = hero.iter().map(|held| matches!(held, Held::Stack { expires_at: Some(_), .. })).collect();
    assert_eq!(expiries.len(), 2, "{hero:?}");
    assert_eq!(expiries.iter().filter(|timed| **timed).count(), 1, "{hero:?}");

    // Not asked: not answered. Stale: nothing.
    let committed = store.commit_guarded(guarded(80, "c", vec![grant(&potion, 1)], None)).await.unwrap();
    assert_eq!(committed, Guarded::Committed { balance_after: 70, collection: None });
    let stale = store.commit_guarded(guarded(80, "d", vec![grant(&potion, 1)], Some("default"))).await.unwrap();
    assert_eq!(stale, Guarded::Stale);

    // A transaction under row locks answers the same way.
    let mut tx = store.begin(TxScope { collection: Some("default".into()), ..scope(&player) }).await.unwrap();
    assert_eq!(tx.change_balance("coins", -2, LedgerReason::Purchase, None).await.unwrap(), Ok(5));
    tx.grant_items(&[NewGrant { stack: at("default", "bag"), ..grant(&potion, 1) }]).await.unwrap().unwrap();
    let state = tx.commit().await.unwrap().expect("the collection's state");
    let after = read("default").await;
    assert_eq!(sorted(state), after);
    assert!(
        after.contains(&stack(&potion, "bag", 4))
            && after.contains(&Held::Balance { currency_code: "coins".into(), balance: 5 })
    );
}

pub async fn catalog_writes_move_the_catalog_version_and_are_checked_against_the_catalog_as_it_is(backend: &Backend) {
    let (store, _, _) = shop(backend, "game").await;
    let before = store.catalog_version().await.unwrap();
    let mut bundle = item("pack", ItemType::Bundle);
    bundle.contents = vec![Content::Item { item_key: "potion".into(), quantity: 2 }];
    let seen = std::sync::Mutex::new(Vec::new());
    let check = |items: &[CatalogItem]| {
        seen.lock().unwrap().extend(items.iter().map(|item| item.key.clone()));
        Ok(())
    };
    let written = store.put_item(&bundle, &check).await.unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), ["potion"]);
    assert!(store.catalog_version().await.unwrap() > before);
    let refused = store.put_item(&item("sword", ItemType::Durable), &|_| Err("no swords".into())).await.unwrap();
    assert_eq!(refused.err().as_deref(), Some("no swords"));
    assert!(store.item_by_key("sword").await.unwrap().is_none(), "a refused write writes nothing");
    let again = store.put_item(&bundle, &|_| Ok(())).await.unwrap().unwrap();
    assert_eq!(again.id, written.id, "an upsert keeps the id");
    let recharge = Recharge { amount: 1, period_seconds: 60, max: 5 };
    let energy = NewCurrency {
        code: "energy".into(),
        name: "Energy".into(),
        initial_balance: 0,
        max_balance: None,
        recharge: Some(recharge.clone()),
    };
    let version = store.catalog_version().await.unwrap();
    assert_eq!(store.put_currency(&energy).await.unwrap().recharge, Some(recharge));
    assert!(store.catalog_version().await.unwrap() > version);
    let listed = store.put_store("shop", "Shop", &[]).await.unwrap();
    assert_eq!(store.store_by_key("shop").await.unwrap().map(|s| s.id), Some(listed.id));
}

pub async fn a_custom_id_names_its_own_player_until_the_server_links_it(backend: &Backend) {
    let (store, player, _) = shop(backend, "game").await;
    let device = [7u8; 32];
    assert!(store.find_custom_id_user(&device).await.unwrap().is_none(), "finding creates nothing");
    let own = store.create_custom_id_user(&device).await.unwrap().expect("a new player");
    assert_ne!(own.id, player.id);
    assert_eq!(own.identity, own.id.to_string());
    assert_eq!(store.create_custom_id_user(&device).await.unwrap(), None, "a custom id names one player");
    assert_eq!(store.find_custom_id_user(&device).await.unwrap(), Some(own.clone()));
    assert!(!store.link_custom_id(&player, &device).await.unwrap(), "a custom id is not moved");
    let fresh = [8u8; 32];
    assert!(store.link_custom_id(&player, &fresh).await.unwrap());
    assert_eq!(store.find_custom_id_user(&fresh).await.unwrap(), Some(player.clone()));
    assert_eq!(store.create_custom_id_user(&fresh).await.unwrap(), None);
}

pub async fn a_regenerating_balance_is_settled_when_it_is_read(backend: &Backend) {
    let (store, _, _) = shop(backend, "game").await;
    let energy = NewCurrency {
        code: "energy".into(),
        name: "Energy".into(),
        initial_balance: 0,
        max_balance: None,
        recharge: Some(Recharge { amount: 1, period_seconds: 1, max: 5 }),
    };
    store.put_currency(&energy).await.unwrap();
    let player = store.find_or_create_user("player-2").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let recharging: Arc<[String]> = Arc::from(vec!["energy".to_owned()]);
    let wallet = store.wallet(&player, &recharging).await.unwrap();
    let energy = wallet.iter().find(|entry| entry.currency_code == "energy").unwrap();
    assert_eq!(energy.balance, 1);
    assert!(energy.next_recharge_at.is_some_and(|at| at > Utc::now() - chrono::Duration::seconds(1)));
    let query = LedgerQuery { currency_code: Some("energy".into()), limit: 10, cursor: None };
    let ledger = store.ledger(&player, &query).await.unwrap();
    assert_eq!((ledger.len(), ledger[0].reason.as_str()), (1, "recharge"));
}

pub async fn a_rolled_back_transaction_leaves_nothing(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let mut tx = store.begin(scope(&player)).await.unwrap();
    tx.change_balance("gems", -50, LedgerReason::Purchase, None).await.unwrap().unwrap();
    tx.grant_items(&[grant(&potion, 5)]).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(balance(&store, &player, "gems").await, 100);
    assert!(store.inventory(&player).await.unwrap().is_empty());
}

pub async fn one_tenants_store_never_sees_another_tenants_data(backend: &Backend) {
    let (a, a_player, potion) = shop(backend, "a").await;
    let (b, b_player, _) = shop(backend, "b").await;
    assert!(b.find_user("player-1").await.unwrap().is_some_and(|user| user.id == b_player.id));
    assert_ne!(a_player.id, b_player.id);
    assert!(b.item_by_key("potion").await.unwrap().is_some_and(|item| item.id != potion.id));
    let token = [5u8; 32];
    a.create_session(&a_player, &token, Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    assert!(a.find_session(&token).await.unwrap().is_some());
    assert!(b.find_session(&token).await.unwrap().is_none(), "a session is found only in its tenant");
    let mut tx = b.begin(scope(&b_player)).await.unwrap();
    assert_eq!(tx.grant_items(&[grant(&potion, 1)]).await.unwrap().err(), Some(InventoryRefusal::UnknownItem));
    tx.rollback().await.unwrap();
    // A player of another tenant is refused, never read or written for.
    assert!(b.wallet(&a_player, &[]).await.is_err(), "a wallet is read only in its tenant");
    assert!(b.inventory(&a_player).await.is_err(), "an inventory is read only in its tenant");
    assert!(
        b.ledger(&a_player, &LedgerQuery { currency_code: None, limit: 10, cursor: None }).await.is_err(),
        "a ledger is read only in its tenant"
    );
    assert!(b.create_session(&a_player, &[6u8; 32], Utc::now() + chrono::Duration::hours(1)).await.is_err());
    assert!(b.find_session(&[6u8; 32]).await.unwrap().is_none());
    assert!(b.link_custom_id(&a_player, &[7u8; 32]).await.is_err(), "a custom id links only a player of its tenant");
}

pub async fn modules_belong_to_the_tenant_that_uploaded_them(backend: &Backend) {
    let keys = |seed: u8| KeyKind::ALL.map(|kind| (kind, [seed + kind as u8; 32]));
    let a = backend.control.create_tenant("a", "A", &keys(10), None).await.unwrap();
    let b = backend.control.create_tenant("b", "B", &keys(20), None).await.unwrap();
    let uploaded = backend.control.put_module(a.id, "abc", b"bytes").await.unwrap();
    assert_eq!(uploaded.size, 5);
    assert!(backend.control.module_info(b.id, "abc").await.unwrap().is_none());
    assert!(!backend.control.set_active_module(b.id, Some("abc")).await.unwrap(), "nothing is written");
    assert!(backend.control.set_active_module(a.id, Some("abc")).await.unwrap());
    let configs = backend.control.tenant_configs(&[a.id, b.id]).await.unwrap();
    let active = |id: Uuid| configs.iter().find(|(tenant, _)| *tenant == id).unwrap().1.active_sha256.clone();
    assert_eq!((active(a.id), active(b.id)), (Some("abc".to_owned()), None));
    let record = backend.control.find_api_key(&[10 + KeyKind::Admin as u8; 32]).await.unwrap().unwrap();
    assert_eq!((record.tenant_id, record.kind), (a.id, KeyKind::Admin));

    // Putting a module back happens only over the module it replaces.
    assert!(!backend.control.replace_active_module(a.id, "other", None).await.unwrap(), "nothing is written");
    assert!(!backend.control.replace_active_module(b.id, "abc", None).await.unwrap(), "nor for another tenant");
    assert!(backend.control.replace_active_module(a.id, "abc", None).await.unwrap());
    let configs = backend.control.tenant_configs(&[a.id]).await.unwrap();
    assert_eq!(configs[0].1.active_sha256, None);
}

pub async fn module_events_are_the_tenants_own_and_only_the_latest_are_kept(backend: &Backend) {
    let keys = |seed: u8| KeyKind::ALL.map(|kind| (kind, [seed + kind as u8; 32]));
    let a = backend.control.create_tenant("a", "A", &keys(10), None).await.unwrap();
    let b = backend.control.create_tenant("b", "B", &keys(20), None).await.unwrap();
    let event = |n: i64| ModuleEvent {
        id: Uuid::now_v7(),
        kind: if n % 2 == 0 { ModuleEventKind::Failure } else { ModuleEventKind::RolledBack },
        module_sha256: format!("sha-{n}"),
        operation: (n % 2 == 0).then(|| "purchase".to_owned()),
        reason: format!("reason {n}"),
        created_at: Utc::now(),
    };
    let kept = MODULE_EVENTS_KEPT;
    for n in 0..kept + 5 {
        backend.control.record_module_event(a.id, &event(n)).await.unwrap();
    }
    backend.control.record_module_event(b.id, &event(1_000)).await.unwrap();
    let events = backend.control.module_events(a.id, 1_000).await.unwrap();
    assert_eq!(events.len() as i64, kept, "only the latest are kept");
    assert_eq!(events[0].module_sha256, format!("sha-{}", kept + 4), "newest first");
    assert_eq!(events.last().unwrap().module_sha256, "sha-5");
    assert_eq!((events[0].kind, events[0].operation.as_deref()), (ModuleEventKind::Failure, Some("purchase")));
    assert_eq!((events[1].kind, events[1].operation.as_deref()), (ModuleEventKind::RolledBack, None));
    assert_eq!(backend.control.module_events(a.id, 3).await.unwrap().len(), 3);
    let theirs = backend.control.module_events(b.id, 1_000).await.unwrap();
    assert_eq!(theirs.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(), vec!["reason 1000"]);
}

/// Polls `future` at most `polls` times, letting the runtime run between
/// polls, then drops it wherever it stopped: a request whose client hung
/// up at that await.
async fn drop_after<F: Future>(polls: usize, future: F) {
    let mut future = std::pin::pin!(future);
    for _ in 0..polls {
        let ready = std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_ready())).await;
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_micros(50)).await;
    }
}

pub async fn writes_dropped_at_any_await_leave_nothing_open(backend: &Backend) {
    let (store, player, _) = shop(backend, "game").await;
    // Another connection to the database: it sees only what committed.
    let outside = economy_tests::database::TestPool::connect(&backend.database.url).await;
    for polls in 0..48i64 {
        let identity = format!("dropped-{polls}");
        drop_after(polls as usize, store.create_user(&identity)).await;
        // A write that follows on the same pool commits: no connection was
        // handed back inside the dropped write's transaction.
        let token = secrets::hash(&format!("token-{polls}"));
        store.create_session(&player, &token, Utc::now() + chrono::Duration::hours(1)).await.unwrap();
        let sessions: i64 = outside.scalar("SELECT count(*) FROM sessions").await;
        assert_eq!(sessions, polls + 1, "sessions committed, after {polls} polls");
        // The dropped write happened whole or not at all.
        if let Some(dropped) = store.find_user(&identity).await.unwrap() {
            assert_eq!(balance(&store, &dropped, "gems").await, 100, "after {polls} polls");
            let ledger = store.ledger(&dropped, &LedgerQuery { currency_code: None, limit: 10, cursor: None }).await;
            assert_eq!(ledger.unwrap().len(), 1, "the opening entry, after {polls} polls");
        }
    }
}
