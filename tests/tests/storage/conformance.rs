//! What every storage backend must do, written once against the storage
//! traits. Each scenario gets a fresh, empty backend.

use crate::backends::Backend;
use chrono::Utc;
use economy_host::secrets;
use economy_host::storage::{
    BalanceChange, BalanceRow, CatalogItem, Commit, Content, Deleted, Held, ItemType, Journal, KeyKind, LedgerLine,
    LedgerQuery, LedgerReason, ListingClaim, MODULE_EVENTS_KEPT, ModuleEvent, ModuleEventKind, ModuleQuota,
    NewCurrency, NewGrant, NewItem, PaidPrice, PurchaseRecord, Recharge, RecordKind, RequestRecord, StackKey,
    StackWrite, StoredResponse, StoredStack, TenantStore, Uploaded, User,
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
    store.put_currency(&gems()).await.expect("a currency");
    let potion = store.put_item(&item("potion", ItemType::Consumable), &|_| Ok(())).await.unwrap().unwrap();
    let player = store.find_or_create_user("player-1").await.expect("a player");
    (store, player, potion)
}

/// Gems: an initial balance of 100, at most 1,000.
fn gems() -> NewCurrency {
    NewCurrency {
        code: "gems".into(),
        name: "Gems".into(),
        initial_balance: 100,
        max_balance: Some(1_000),
        recharge: None,
    }
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

fn response() -> StoredResponse {
    StoredResponse { status: 200, body: json!({"answer": 42}) }
}

/// A journal of the player's, at the current time.
fn journal(player: &User) -> Journal {
    Journal::new(player.id, Utc::now(), None)
}

fn entry(delta: i64, balance_after: i64) -> LedgerLine {
    LedgerLine {
        id: Uuid::now_v7(),
        delta,
        balance_after,
        reason: LedgerReason::Purchase,
        reference: None,
        module_sha256: None,
    }
}

/// A change of `code` from a balance read as `before` (no clock) by `delta`.
fn change(code: &str, before: i64, delta: i64) -> BalanceChange {
    let row = |balance| BalanceRow { balance, recharged_at: None };
    BalanceChange {
        currency_code: code.into(),
        before: Some(row(before)),
        after: row(before + delta),
        entries: vec![entry(delta, before + delta)],
    }
}

/// A 10-gem purchase of `item` decided on the balance `before`, with
/// `grants`: the shape most purchases commit in.
fn purchase(player: &User, item: &CatalogItem, before: i64, key: &str, grants: Vec<NewGrant>) -> Journal {
    Journal {
        balances: vec![change("gems", before, -10)],
        stacks: grants.into_iter().map(StackWrite::Grant).collect(),
        purchase: Some((record(item, Some(key)), response())),
        ..journal(player)
    }
}

async fn balance(store: &Arc<dyn TenantStore>, user: &User, code: &str) -> i64 {
    let read = store.balance_read(user.id, code).await.unwrap().expect("a known currency");
    read.stored.map_or(read.initial_balance, |row| row.balance)
}

/// What the player holds of the item, in every live stack.
async fn held(store: &Arc<dyn TenantStore>, user: &User, item: &CatalogItem) -> i64 {
    let now = Utc::now();
    let stacks = store.stacks(user.id, item.id).await.unwrap();
    stacks.iter().filter(|stack| stack.expires_at.is_none_or(|at| at > now)).map(|stack| stack.quantity).sum()
}

async fn commit(store: &Arc<dyn TenantStore>, journal: Journal) -> Commit {
    store.commit(journal).await.expect("the commit answers")
}

const DONE: Commit = Commit::Done { collection: None };

pub async fn a_balance_commits_only_from_the_row_it_was_read_from_and_the_ledger_follows(backend: &Backend) {
    let (store, player, _) = shop(backend, "game").await;
    let read = store.balance_read(player.id, "gems").await.unwrap().expect("a known currency");
    assert_eq!(read.stored, Some(BalanceRow { balance: 100, recharged_at: None }), "opened with the player");
    assert_eq!((read.initial_balance, read.max_balance, read.recharge), (100, Some(1_000), None));
    assert!(store.balance_read(player.id, "gold").await.unwrap().is_none(), "no such currency");
    let spend = |before, delta| Journal { balances: vec![change("gems", before, delta)], ..journal(&player) };
    assert_eq!(commit(&store, spend(100, -30)).await, DONE);
    assert_eq!(commit(&store, spend(100, -20)).await, Commit::Stale, "the balance moved since it was read");
    assert_eq!(balance(&store, &player, "gems").await, 70);
    assert_eq!(commit(&store, spend(70, 930)).await, DONE);
    let query = LedgerQuery { currency_code: Some("gems".into()), limit: 10, cursor: None };
    let ledger = store.ledger(&player, &query).await.unwrap();
    let deltas: Vec<i64> = ledger.iter().map(|entry| entry.delta).collect();
    assert_eq!(deltas, [930, -30, 100], "newest first, the initial balance last");
    assert_eq!(ledger[0].balance_after, 1_000);

    // A balance never held opens by its commit, unless another opened it.
    let coins = NewCurrency { code: "coins".into(), name: "Coins".into(), initial_balance: 0, ..gems() };
    store.put_currency(&coins).await.unwrap();
    assert_eq!(store.balance_read(player.id, "coins").await.unwrap().unwrap().stored, None);
    let open = || Journal {
        balances: vec![BalanceChange {
            currency_code: "coins".into(),
            before: None,
            after: BalanceRow { balance: 5, recharged_at: None },
            entries: vec![entry(5, 5)],
        }],
        ..journal(&player)
    };
    assert_eq!(commit(&store, open()).await, DONE);
    assert_eq!(commit(&store, open()).await, Commit::Stale, "opened meanwhile");
    assert_eq!(balance(&store, &player, "coins").await, 5);
}

pub async fn grants_stack_up_and_takes_commit_only_from_the_quantity_they_read(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let grants = vec![StackWrite::Grant(grant(&potion, 2)), StackWrite::Grant(grant(&potion, 3))];
    assert_eq!(commit(&store, Journal { stacks: grants, ..journal(&player) }).await, DONE);
    let stacks = store.stacks(player.id, potion.id).await.unwrap();
    assert_eq!(stacks.len(), 1, "one stack: {stacks:?}");
    assert_eq!(
        (stacks[0].stack.clone(), stacks[0].quantity, stacks[0].acquired_via.as_str()),
        (StackKey::default(), 5, "grant")
    );
    let take = |before, quantity| StackWrite::Take {
        item_id: potion.id,
        stack: StackKey::default(),
        quantity,
        before,
        expires_at: None,
    };
    assert_eq!(commit(&store, Journal { stacks: vec![take(5, 4)], ..journal(&player) }).await, DONE);
    assert_eq!(commit(&store, Journal { stacks: vec![take(5, 1)], ..journal(&player) }).await, Commit::Stale);
    assert_eq!(held(&store, &player, &potion).await, 1);
    // A grant of an item the catalog does not have is the host's failure,
    // and nothing of its journal is written.
    let unknown = NewGrant { item_id: Uuid::now_v7(), ..grant(&potion, 1) };
    let stacks = vec![StackWrite::Grant(grant(&potion, 1)), take(2, 1), StackWrite::Grant(unknown)];
    assert!(store.commit(Journal { stacks, ..journal(&player) }).await.is_err());
    assert_eq!(held(&store, &player, &potion).await, 1);
    let inventory = store.inventory(&player).await.unwrap();
    assert_eq!((inventory[0].quantity, inventory[0].catalog_items.key.as_str()), (1, "potion"));
}

pub async fn grants_land_in_their_stacks_and_collections_are_read_together(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let other = store.find_or_create_user("player-2").await.unwrap();
    let hero = StackKey { collection_id: "hero".into(), stack_id: "bag".into() };
    let placed =
        NewGrant { stack: hero.clone(), display_properties: Some(json!({"color": "red"})), ..grant(&potion, 2) };
    let again = NewGrant { display_properties: Some(json!({"color": "blue"})), ..placed.clone() };
    let take = |before, quantity| StackWrite::Take {
        item_id: potion.id,
        stack: hero.clone(),
        quantity,
        before,
        expires_at: None,
    };
    let stacks = vec![
        StackWrite::Grant(placed),
        StackWrite::Grant(grant(&potion, 1)),
        StackWrite::Grant(again),
        // Taken from the stack named, as the journal's own grants left it.
        take(4, 1),
    ];
    assert_eq!(commit(&store, Journal { stacks, ..journal(&player) }).await, DONE);
    assert_eq!(held(&store, &player, &potion).await, 4, "every stack counts");

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
    assert_eq!(sorted(states[0].clone()), sorted(vec![stack(1), gems.clone()]));
    assert_eq!(states[1], vec![], "nothing in the other player's hero collection");
    let bag = Held::Stack { item_id: potion.id, stack_id: "bag".into(), quantity: 3, expires_at: None };
    assert_eq!(states[2], vec![bag]);
    assert_eq!(states[3], vec![gems]);

    // A stack used up starts over with the next grant's values.
    let bundle = Uuid::now_v7();
    let fresh = NewGrant {
        stack: hero.clone(),
        display_properties: Some(json!({"color": "green"})),
        bundle_purchase_id: Some(bundle),
        ..grant(&potion, 1)
    };
    let stacks = vec![take(3, 3), StackWrite::Grant(fresh)];
    assert_eq!(commit(&store, Journal { stacks, ..journal(&player) }).await, DONE);
    let inventory = store.inventory(&player).await.unwrap();
    let bag = inventory.iter().find(|stack| stack.collection_id == "hero").expect("the hero stack");
    assert_eq!(bag.quantity, 1);
    assert_eq!((&bag.display_properties, bag.bundle_purchase_id), (&Some(json!({"color": "green"})), Some(bundle)));
}

pub async fn a_grant_onto_a_stack_commits_only_if_the_stack_is_as_read(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let onto = |before: Option<StoredStack>| Journal {
        stacks: vec![StackWrite::GrantOnto { grant: grant(&potion, 2), before }],
        ..journal(&player)
    };
    assert_eq!(commit(&store, onto(None)).await, DONE);
    assert_eq!(commit(&store, onto(None)).await, Commit::Stale, "the stack exists now");
    let read = store.stacks(player.id, potion.id).await.unwrap().pop();
    assert_eq!(read.as_ref().map(|stack| stack.quantity), Some(2));
    assert_eq!(commit(&store, onto(read.clone())).await, DONE);
    assert_eq!(commit(&store, onto(read)).await, Commit::Stale, "the stack moved since it was read");
    assert_eq!(held(&store, &player, &potion).await, 4);
}

pub async fn listing_counts_commit_only_from_the_count_they_read(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let store_id = Uuid::now_v7();
    assert_eq!(store.listing_purchases(player.id, store_id, potion.id).await.unwrap(), None);
    let claim = |before, after| Journal {
        listings: vec![ListingClaim { store_id, item_id: potion.id, before, after }],
        ..journal(&player)
    };
    assert_eq!(commit(&store, claim(None, 2)).await, DONE);
    assert_eq!(commit(&store, claim(None, 1)).await, Commit::Stale, "counted meanwhile");
    assert_eq!(commit(&store, claim(Some(1), 3)).await, Commit::Stale, "not the count read");
    assert_eq!(commit(&store, claim(Some(2), 3)).await, DONE);
    assert_eq!(store.listing_purchases(player.id, store_id, potion.id).await.unwrap(), Some(3));
}

pub async fn a_purchase_record_claims_its_idempotency_key_once(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    // In the shape of the group commit, and in any other.
    let guarded = |before, key: &str| purchase(&player, &potion, before, key, vec![grant(&potion, 1)]);
    let alone = |key: &str| Journal {
        stacks: vec![StackWrite::Grant(grant(&potion, 1))],
        purchase: Some((record(&potion, Some(key)), response())),
        ..journal(&player)
    };
    assert_eq!(commit(&store, guarded(100, "k")).await, DONE);
    assert_eq!(commit(&store, guarded(90, "k")).await, Commit::Stale, "the key is taken");
    assert_eq!(commit(&store, alone("k")).await, Commit::Stale, "the key is taken");
    assert_eq!(commit(&store, alone("l")).await, DONE);
    assert_eq!(commit(&store, alone("l")).await, Commit::Stale, "the key is taken");
    let earlier = store.idempotency_record(player.id, RecordKind::Purchase, "k").await.unwrap().expect("a record");
    assert_eq!((earlier.request_hash, earlier.response.body), (vec![1, 2, 3], json!({"answer": 42})));
    assert_eq!(held(&store, &player, &potion).await, 2, "the grants rode the first records only");
    assert_eq!(store.item_purchases(player.id, potion.id).await.unwrap(), 2);
    assert_eq!(balance(&store, &player, "gems").await, 90);
}

pub async fn the_price_paid_is_the_latest_purchases_of_each_item(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let sword = store.put_item(&item("sword", ItemType::Durable), &|_| Ok(())).await.unwrap().unwrap();
    assert_eq!(store.paid_prices(&player).await.unwrap(), vec![], "nothing bought yet");
    for (item, unit_price) in [(&potion, 10), (&sword, 40), (&potion, 7)] {
        let record = PurchaseRecord { unit_price, total: unit_price, ..record(item, None) };
        let bought = Journal {
            stacks: vec![StackWrite::Grant(grant(item, 1))],
            purchase: Some((record, response())),
            ..journal(&player)
        };
        assert_eq!(commit(&store, bought).await, DONE);
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
    let request = || Journal {
        balances: vec![],
        request: Some(RequestRecord { key: "k".into(), request_hash: vec![9], response: json!({"answer": 42}) }),
        ..journal(&player)
    };
    let granted = |before| Journal { balances: vec![change("gems", before, 5)], ..request() };
    assert_eq!(commit(&store, granted(100)).await, DONE);
    assert_eq!(commit(&store, granted(105)).await, Commit::Stale, "the key is taken");
    assert_eq!(balance(&store, &player, "gems").await, 105, "nothing of the second was written");
    let earlier = store.idempotency_record(player.id, RecordKind::Request, "k").await.unwrap().expect("a record");
    assert_eq!(earlier.response.body, json!({"answer": 42}));
    assert!(store.idempotency_record(player.id, RecordKind::Purchase, "k").await.unwrap().is_none());
}

pub async fn a_purchase_commits_only_on_the_balance_it_was_decided_on(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    let guarded = |before: i64, key: &str| purchase(&player, &potion, before, key, vec![grant(&potion, 1)]);
    assert_eq!(commit(&store, guarded(100, "a")).await, DONE);
    assert_eq!(commit(&store, guarded(100, "b")).await, Commit::Stale, "the balance moved");
    assert_eq!(commit(&store, guarded(90, "a")).await, Commit::Stale, "the key is taken");
    assert_eq!(balance(&store, &player, "gems").await, 90);
    assert_eq!(held(&store, &player, &potion).await, 1, "nothing of a stale purchase was written");
}

fn sorted(mut held: Vec<Held>) -> Vec<Held> {
    held.sort();
    held
}

/// A commit asked for a collection answers its state as it left it: the
/// same as a read of the collection right after (the stacks it wrote as
/// written, the others untouched, used up and expired ones left out, the
/// balances in the default collection).
pub async fn a_commit_answers_the_state_it_left_the_named_collection_in(backend: &Backend) {
    let (store, _, potion) = shop(backend, "game").await;
    let coins = NewCurrency { code: "coins".into(), name: "Coins".into(), initial_balance: 7, ..gems() };
    store.put_currency(&coins).await.unwrap();
    let sword = store.put_item(&item("sword", ItemType::Durable), &|_| Ok(())).await.unwrap().unwrap();
    let player = store.find_or_create_user("collector").await.unwrap();
    let at = |collection_id: &str, stack_id: &str| StackKey {
        collection_id: collection_id.into(),
        stack_id: stack_id.into(),
    };
    let earlier = [
        NewGrant { stack: at("default", "bag"), ..grant(&potion, 3) },
        NewGrant { stack: at("default", "empty"), ..grant(&sword, 1) },
        NewGrant { stack: at("default", "gone"), ..NewGrant::new(potion.id, 4, "grant", Some(0)) },
        NewGrant { stack: at("hero", "default"), ..grant(&sword, 1) },
        grant(&potion, 2),
    ];
    let mut stacks: Vec<StackWrite> = earlier.into_iter().map(StackWrite::Grant).collect();
    stacks.push(StackWrite::Take {
        item_id: sword.id,
        stack: at("default", "empty"),
        quantity: 1,
        before: 1,
        expires_at: None,
    });
    assert_eq!(
        commit(&store, Journal { stacks, ..journal(&player) }).await,
        DONE,
        "no collection asked, none answered"
    );
    let read = |collection: &str| {
        let (store, player, collection) = (store.clone(), player.clone(), collection.to_owned());
        async move { sorted(store.collection_states(&[(player, collection)]).await.unwrap().remove(0)) }
    };
    let asking =
        |collection: Option<&str>, journal: Journal| Journal { collection: collection.map(str::to_owned), ..journal };

    // Into a stack that exists and one that does not, answering the default collection.
    let grants = vec![grant(&potion, 1), NewGrant { stack: at("default", "new"), ..grant(&sword, 2) }];
    let Commit::Done { collection: Some(state) } =
        commit(&store, asking(Some("default"), purchase(&player, &potion, 100, "a", grants))).await
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
    let Commit::Done { collection: Some(state) } =
        commit(&store, asking(Some("hero"), purchase(&player, &potion, 90, "b", vec![timed]))).await
    else {
        panic!("the purchase commits and answers its collection");
    };
    let hero = read("hero").await;
    assert_eq!(sorted(state), hero);
    let expiries: Vec<_> = hero.iter().map(|held| matches!(held, Held::Stack { expires_at: Some(_), .. })).collect();
    assert_eq!(expiries.len(), 2, "{hero:?}");
    assert_eq!(expiries.iter().filter(|timed| **timed).count(), 1, "{hero:?}");

    // Not asked: not answered. Stale: nothing.
    assert_eq!(commit(&store, purchase(&player, &potion, 80, "c", vec![grant(&potion, 1)])).await, DONE);
    let stale = asking(Some("default"), purchase(&player, &potion, 80, "d", vec![grant(&potion, 1)]));
    assert_eq!(commit(&store, stale).await, Commit::Stale);

    // A journal of any other shape answers the same way.
    let other = Journal {
        balances: vec![change("coins", 7, -2)],
        stacks: vec![StackWrite::Grant(NewGrant { stack: at("default", "bag"), ..grant(&potion, 1) })],
        ..journal(&player)
    };
    let Commit::Done { collection: Some(state) } = commit(&store, asking(Some("default"), other)).await else {
        panic!("the journal commits and answers its collection");
    };
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

pub async fn a_regenerating_balance_is_read_with_its_terms_and_shown_with_its_next_recharge(backend: &Backend) {
    let (store, _, _) = shop(backend, "game").await;
    let recharge = Recharge { amount: 1, period_seconds: 60, max: 5 };
    let energy = NewCurrency {
        code: "energy".into(),
        name: "Energy".into(),
        initial_balance: 0,
        max_balance: None,
        recharge: Some(recharge.clone()),
    };
    store.put_currency(&energy).await.unwrap();
    let player = store.find_or_create_user("player-2").await.unwrap();
    let read = store.balance_read(player.id, "energy").await.unwrap().expect("a known currency");
    let terms = read.recharge.expect("its recharge");
    assert_eq!((terms.amount, terms.period_seconds, terms.max), (1, 60, 5));
    let stored = read.stored.expect("opened with the player, so that its clock starts then");
    let clock = stored.recharged_at.expect("a running clock");
    assert!(read.player_since.is_some_and(|since| since <= clock + chrono::Duration::seconds(1)));
    let wallet = store.wallet(&player).await.unwrap();
    let shown = wallet.iter().find(|entry| entry.currency_code == "energy").unwrap();
    assert_eq!((shown.balance, &shown.recharge), (0, &Some(recharge)));
    assert_eq!(shown.next_recharge_at, Some(clock + chrono::Duration::seconds(60)));
}

pub async fn a_stale_journal_leaves_nothing(backend: &Backend) {
    let (store, player, potion) = shop(backend, "game").await;
    // Every write before the failed guard is undone, in any order.
    let take =
        StackWrite::Take { item_id: potion.id, stack: StackKey::default(), quantity: 1, before: 1, expires_at: None };
    let journals = [
        Journal {
            balances: vec![change("gems", 100, -50)],
            stacks: vec![StackWrite::Grant(grant(&potion, 5)), take.clone()],
            ..journal(&player)
        },
        Journal { balances: vec![change("gems", 100, -50), change("gems", 7, 1)], ..journal(&player) },
        Journal {
            balances: vec![change("gems", 100, -50)],
            stacks: vec![StackWrite::Grant(grant(&potion, 5))],
            request: Some(RequestRecord { key: "k".into(), request_hash: vec![], response: json!({}) }),
            ..journal(&player)
        },
    ];
    let taken = Journal {
        request: Some(RequestRecord { key: "k".into(), request_hash: vec![], response: json!({}) }),
        ..journal(&player)
    };
    assert_eq!(commit(&store, taken).await, DONE);
    for stale in journals {
        assert_eq!(commit(&store, stale).await, Commit::Stale);
        assert_eq!(balance(&store, &player, "gems").await, 100);
        assert!(store.inventory(&player).await.unwrap().is_empty());
    }
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
    // Another tenant's item is not granted, another tenant's balance not read.
    let foreign = Journal { stacks: vec![StackWrite::Grant(grant(&potion, 1))], ..journal(&b_player) };
    assert!(b.commit(foreign).await.is_err());
    assert!(b.inventory(&b_player).await.unwrap().is_empty());
    let spend = Journal { balances: vec![change("gems", 100, -10)], ..journal(&a_player) };
    assert_eq!(commit(&a, spend).await, DONE);
    let read = b.balance_read(a_player.id, "gems").await.unwrap().expect("b's own currency");
    assert_eq!(read.stored, None, "a player of another tenant holds nothing here");
    // A player of another tenant is refused, never read or written for.
    assert!(b.wallet(&a_player).await.is_err(), "a wallet is read only in its tenant");
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
    let quota = ModuleQuota { modules: 2, bytes: 12 };
    let Uploaded::Stored(uploaded) = backend.control.put_module(a.id, "abc", b"bytes", &quota).await.unwrap() else {
        panic!("within the quota");
    };
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
    assert!(
        !backend.control.replace_active_module(a.id, "abc", Some("gone")).await.unwrap(),
        "never by a module the tenant does not have"
    );
    assert!(backend.control.replace_active_module(a.id, "abc", None).await.unwrap());
    let configs = backend.control.tenant_configs(&[a.id]).await.unwrap();
    assert_eq!(configs[0].1.active_sha256, None);
}

pub async fn a_tenant_keeps_modules_within_its_quota_and_deletes_only_its_own_inactive_ones(backend: &Backend) {
    let keys = |seed: u8| KeyKind::ALL.map(|kind| (kind, [seed + kind as u8; 32]));
    let a = backend.control.create_tenant("a", "A", &keys(10), None).await.unwrap();
    let b = backend.control.create_tenant("b", "B", &keys(20), None).await.unwrap();
    let quota = ModuleQuota { modules: 2, bytes: 12 };
    let put = |tenant: Uuid, sha: &'static str, bytes: &'static [u8]| {
        let control = backend.control.clone();
        async move { matches!(control.put_module(tenant, sha, bytes, &quota).await.unwrap(), Uploaded::Stored(_)) }
    };
    assert!(put(a.id, "one", b"12345").await);
    assert!(!put(a.id, "big", b"12345678").await, "past the bytes");
    assert!(put(a.id, "two", b"1234").await);
    assert!(!put(a.id, "three", b"1").await, "past the count");
    assert!(put(a.id, "two", b"1234").await, "one it has is stored already");
    assert!(put(b.id, "three", b"1").await, "another tenant's quota is its own");
    assert!(backend.control.set_active_module(a.id, Some("one")).await.unwrap());
    backend.control.put_artifact("two", "engine", b"compiled").await.unwrap();
    backend.control.put_artifact("three", "engine", b"compiled").await.unwrap();

    assert_eq!(backend.control.delete_module(a.id, "one").await.unwrap(), Deleted::Active);
    assert_eq!(backend.control.delete_module(a.id, "three").await.unwrap(), Deleted::Unknown, "b's, not a's");
    assert_eq!(backend.control.delete_module(a.id, "two").await.unwrap(), Deleted::Deleted { last: true });
    assert_eq!(backend.control.delete_module(a.id, "two").await.unwrap(), Deleted::Unknown);
    assert!(backend.control.artifact("two", "engine").await.unwrap().is_none(), "its artifact went with it");
    assert!(backend.control.artifact("three", "engine").await.unwrap().is_some());
    assert!(backend.control.module_info(b.id, "three").await.unwrap().is_some());
    assert!(put(a.id, "three", b"1").await, "room was made");
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
