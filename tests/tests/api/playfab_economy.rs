//! PlayFab's Economy v2 inventory API: `PurchaseInventoryItems`,
//! `GetInventoryItems`, and the server's `AddInventoryItems` and
//! `SubtractInventoryItems`, against the shapes of PlayFab's public pages:
//! collections and stacks, ETags (412 when stale), idempotency ids, and the
//! `ApiErrorWrapper` with PlayFab's error names and numbers.

use crate::helpers::{As, Reply, Tenant, TestApp, spawn_app};
use crate::playfab::{assert_playfab_error, data, legacy_shop, login, post, title_id};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

/// A player signed in through PlayFab's login: its entity token and id.
struct Entity {
    token: String,
    id: String,
}

async fn sign_in(app: &TestApp, custom_id: &str) -> Entity {
    let title = title_id(app, "game").await;
    let reply = login(app, &title, custom_id, true).await;
    let data = data(&reply);
    Entity {
        token: data["EntityToken"]["EntityToken"].as_str().expect("an entity token").to_owned(),
        id: data["PlayFabId"].as_str().expect("a player id").to_owned(),
    }
}

async fn as_player(app: &TestApp, entity: &Entity, path: &str, body: Value) -> Reply {
    post(app, &format!("/Inventory/{path}"), &[("X-EntityToken", &entity.token)], body).await
}

async fn as_server(app: &TestApp, tenant: &Tenant, path: &str, body: Value) -> Reply {
    post(app, &format!("/Inventory/{path}"), &[("X-SecretKey", &tenant.server_key)], body).await
}

/// The collection's items (one page of up to 50) and ETag.
async fn collection(app: &TestApp, entity: &Entity, collection_id: &str) -> (Vec<Value>, String) {
    let reply = as_player(app, entity, "GetInventoryItems", json!({"CollectionId": collection_id, "Count": 50})).await;
    let data = data(&reply);
    assert!(data.get("ContinuationToken").is_none(), "{data}");
    (data["Items"].as_array().expect("Items").clone(), data["ETag"].as_str().expect("an ETag").to_owned())
}

fn amount(items: &[Value], id: &str, stack: &str) -> Option<i64> {
    items.iter().find(|item| item["Id"] == id && item["StackId"] == stack).map(|item| item["Amount"].as_i64().unwrap())
}

async fn item_id(app: &TestApp, tenant: &Tenant, key: &str) -> String {
    let reply = app.call(Method::GET, &format!("/admin/catalog/items/{key}"), As::Key(&tenant.admin_key), None).await;
    reply.assert_ok()["id"].as_str().unwrap().to_owned()
}

/// A purchase of `amount` potions at 10 gems each, by friendly id.
fn potions(amount: i64, idempotency_id: &str) -> Value {
    json!({
        "Item": {"AlternateId": {"Type": "FriendlyId", "Value": "potion"}},
        "Amount": amount,
        "PriceAmounts": [{"ItemId": "gems", "Amount": 10}],
        "IdempotencyId": idempotency_id,
        "DeleteEmptyStacks": false,
    })
}

#[tokio::test]
async fn purchase_inventory_items_buys_at_the_agreed_price_once_per_idempotency_id() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    let player = sign_in(&app, "device-v2").await;

    let (items, etag) = collection(&app, &player, "default").await;
    assert_eq!(amount(&items, "gems", "default"), Some(1_000));
    assert!(items.iter().any(|item| item["Id"] == "gems" && item["Type"] == "currency"), "{items:?}");

    let mut first = potions(3, "buy-1");
    first["ETag"] = json!(etag);
    let bought = as_player(&app, &player, "PurchaseInventoryItems", first.clone()).await;
    let receipt = data(&bought).clone();
    assert_eq!(receipt["IdempotencyId"], "buy-1");
    let transactions = receipt["TransactionIds"].as_array().expect("TransactionIds").clone();
    assert_eq!(transactions.len(), 1);
    let (items, now) = collection(&app, &player, "default").await;
    assert_eq!(receipt["ETag"], json!(now), "the answer's ETag is the collection's");
    assert_ne!(now, etag);
    assert_eq!(amount(&items, "gems", "default"), Some(970));
    let potion = item_id(&app, &tenant, "potion").await;
    assert_eq!(amount(&items, &potion, "default"), Some(3));
    assert!(items.iter().any(|item| item["Id"] == potion.as_str() && item["Type"] == "catalogItem"));

    // A retry (its ETag now stale) answers as the first did; nothing moves.
    let again = as_player(&app, &player, "PurchaseInventoryItems", first.clone()).await;
    assert_eq!(data(&again)["TransactionIds"], json!(transactions));
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!(amount(&items, "gems", "default"), Some(970));
    // The same id for another purchase is refused.
    let reused = as_player(&app, &player, "PurchaseInventoryItems", potions(2, "buy-1")).await;
    assert_playfab_error(&reused, 400, "InvalidRequest", 1071);

    // A stale ETag, in the body or the header PlayFab documents: 412.
    let mut stale = potions(1, "buy-2");
    stale["ETag"] = json!(etag);
    assert_playfab_error(
        &as_player(&app, &player, "PurchaseInventoryItems", stale).await,
        412,
        "PreconditionFailed",
        1610,
    );
    let headers = [("X-EntityToken", player.token.as_str()), ("X-PlayFab-Economy-If-Match", etag.as_str())];
    let stale = post(&app, "/Inventory/PurchaseInventoryItems", &headers, potions(1, "buy-3")).await;
    assert_playfab_error(&stale, 412, "PreconditionFailed", 1610);

    // The price must be what the rules charge.
    let mut cheap = potions(1, "buy-4");
    cheap["PriceAmounts"][0]["Amount"] = json!(9);
    assert_playfab_error(&as_player(&app, &player, "PurchaseInventoryItems", cheap).await, 400, "WrongPrice", 1053);
    let (items, current) = collection(&app, &player, "default").await;
    assert_eq!((amount(&items, "gems", "default"), current), (Some(970), now), "refusals change nothing");

    // The seed's errors.
    let broke = json!({"Item": {"AlternateId": {"Type": "FriendlyId", "Value": "chest"}}, "Amount": 100,
        "PriceAmounts": [{"ItemId": "gems", "Amount": 50}]});
    assert_playfab_error(
        &as_player(&app, &player, "PurchaseInventoryItems", broke).await,
        400,
        "InsufficientFunds",
        1059,
    );
    let unknown =
        json!({"Item": {"Id": uuid::Uuid::now_v7()}, "Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 1}]});
    assert_playfab_error(&as_player(&app, &player, "PurchaseInventoryItems", unknown).await, 400, "ItemNotFound", 1047);
    let mut unpriced = potions(1, "buy-5");
    unpriced["PriceAmounts"] = json!([{"ItemId": "energy", "Amount": 1}]);
    let unpriced = as_player(&app, &player, "PurchaseInventoryItems", unpriced).await;
    assert_playfab_error(&unpriced, 400, "InvalidCatalogItemConfiguration", 4015);
    let mut nowhere = potions(1, "buy-6");
    nowhere["StoreId"] = json!(uuid::Uuid::now_v7());
    assert_playfab_error(
        &as_player(&app, &player, "PurchaseInventoryItems", nowhere).await,
        400,
        "StoreNotFound",
        1221,
    );
    for broken in [
        json!({"Item": {"AlternateId": {"Type": "FriendlyId", "Value": "potion"}}, "Amount": 1}),
        json!({"Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 10}]}),
        {
            let mut body = potions(1, "buy-7");
            body["Amount"] = json!(1.5);
            body
        },
        {
            let mut body = potions(1, "buy-8");
            body["Item"]["AlternateId"]["Type"] = json!("Sku");
            body
        },
        {
            let mut body = potions(1, "buy-9");
            body["CollectionId"] = json!("");
            body
        },
    ] {
        let refused = as_player(&app, &player, "PurchaseInventoryItems", broken.clone()).await;
        assert_playfab_error(&refused, 400, "InvalidParams", 1000);
    }

    // Tokens: missing, forged, another player's entity.
    let missing = post(&app, "/Inventory/PurchaseInventoryItems", &[], potions(1, "buy-10")).await;
    assert_playfab_error(&missing, 401, "EntityTokenMissing", 1334);
    let forged = Entity { token: format!("{}x", player.token), id: player.id.clone() };
    let forged = as_player(&app, &forged, "PurchaseInventoryItems", potions(1, "buy-11")).await;
    assert_playfab_error(&forged, 401, "EntityTokenInvalid", 1335);
    let other = sign_in(&app, "device-other").await;
    let mut theirs = potions(1, "buy-12");
    theirs["Entity"] = json!({"Id": other.id, "Type": "title_player_account"});
    assert_playfab_error(&as_player(&app, &player, "PurchaseInventoryItems", theirs).await, 403, "NotAuthorized", 1089);
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!(amount(&items, "gems", "default"), Some(970));
    app.audit().await;
}

#[tokio::test]
async fn a_purchase_lands_in_the_collection_and_stack_named_with_its_values() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    let sword = item_id(&app, &tenant, "sword").await;
    let listing = json!({"name": "Armory", "listings": [{"item_key": "sword",
        "override_prices": [{"currency_code": "gems", "amount": 80}]}]});
    let store = app.put_store(&tenant, "armory", listing).await;
    let player = sign_in(&app, "device-hero").await;

    let body = json!({
        "Item": {"Id": sword, "StackId": "main-hand"},
        "Amount": 2,
        "CollectionId": "hero",
        "StoreId": store,
        "PriceAmounts": [{"ItemId": "gems", "Amount": 80, "StackId": "default"}],
        "DurationInSeconds": 60,
        "NewStackValues": {"DisplayProperties": {"color": "red"}},
        "CustomTags": {"build": "1.2.3"},
    });
    let catalog_price = {
        let mut body = body.clone();
        body["PriceAmounts"][0]["Amount"] = json!(100);
        body
    };
    let refused = as_player(&app, &player, "PurchaseInventoryItems", catalog_price).await;
    assert_playfab_error(&refused, 400, "WrongPrice", 1053);
    let bought = as_player(&app, &player, "PurchaseInventoryItems", body).await;
    let etag = data(&bought)["ETag"].as_str().unwrap().to_owned();

    let (hero, hero_etag) = collection(&app, &player, "hero").await;
    assert_eq!(hero_etag, etag, "the answer's ETag is the named collection's");
    assert_eq!(hero.len(), 1, "no currencies outside the default collection: {hero:?}");
    let stack = &hero[0];
    assert_eq!((&stack["Id"], &stack["StackId"], &stack["Amount"]), (&json!(sword), &json!("main-hand"), &json!(2)));
    assert_eq!(stack["DisplayProperties"], json!({"color": "red"}));
    let expires = chrono::DateTime::parse_from_rfc3339(stack["ExpirationDate"].as_str().unwrap()).unwrap();
    let left = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((50..=60).contains(&left), "the stack lasts the duration bought: {left}");
    let (default, _) = collection(&app, &player, "default").await;
    assert_eq!(amount(&default, "gems", "default"), Some(1_000 - 160), "paid from the wallet");
    assert_eq!(amount(&default, &sword, "main-hand"), None, "not in the default collection");

    // Another purchase into the same stack keeps the stack's values.
    let more = json!({"Item": {"Id": sword, "StackId": "main-hand"}, "Amount": 1, "CollectionId": "hero",
        "StoreId": store, "PriceAmounts": [{"ItemId": "gems", "Amount": 80}],
        "NewStackValues": {"DisplayProperties": {"color": "blue"}}});
    data(&as_player(&app, &player, "PurchaseInventoryItems", more).await);
    let (hero, _) = collection(&app, &player, "hero").await;
    assert_eq!((&hero[0]["Amount"], &hero[0]["DisplayProperties"]), (&json!(3), &json!({"color": "red"})));

    // The legacy inventory shows the stack's values as its custom data, as strings.
    let legacy = post(&app, "/Client/GetUserInventory", &[("X-Authorization", &player.token)], json!({})).await;
    let instances = data(&legacy)["Inventory"].as_array().unwrap().clone();
    let sword_instance = instances.iter().find(|i| i["ItemId"] == "sword").expect("the sword");
    assert_eq!(sword_instance["CustomData"], json!({"color": "red"}));
    let stats = json!({"Item": {"Id": sword, "StackId": "off-hand"}, "Amount": 1, "CollectionId": "hero",
        "StoreId": store, "PriceAmounts": [{"ItemId": "gems", "Amount": 80}],
        "NewStackValues": {"DisplayProperties": {"level": 3, "tags": ["rare"]}}});
    data(&as_player(&app, &player, "PurchaseInventoryItems", stats).await);
    let legacy = post(&app, "/Client/GetUserInventory", &[("X-Authorization", &player.token)], json!({})).await;
    let instances = data(&legacy)["Inventory"].as_array().unwrap().clone();
    let custom: Vec<&Value> = instances.iter().filter_map(|i| i.get("CustomData")).collect();
    assert!(custom.contains(&&json!({"level": "3", "tags": "[\"rare\"]"})), "{custom:?}");
    app.audit().await;
}

#[tokio::test]
async fn get_inventory_items_pages_and_filters() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    let player = sign_in(&app, "device-pages").await;
    for n in 0..12 {
        let add = json!({"Entity": {"Id": player.id, "Type": "title_player_account"},
            "Item": {"AlternateId": {"Type": "FriendlyId", "Value": "potion"}, "StackId": format!("bag-{n:02}")},
            "Amount": n + 1});
        data(&as_server(&app, &tenant, "AddInventoryItems", add).await);
    }
    let (all, etag) = collection(&app, &player, "default").await;
    assert_eq!(all.len(), 14, "two currencies and twelve stacks");

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"Count": 5});
        if let Some(token) = &token {
            body["ContinuationToken"] = json!(token);
        }
        let reply = as_player(&app, &player, "GetInventoryItems", body).await;
        let page = data(&reply).clone();
        assert_eq!(page["ETag"], json!(etag));
        seen.extend(page["Items"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["ContinuationToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!((pages, seen.clone()), (3, all), "pages of 5, 5 and 4, in the collection's order");

    let currencies = as_player(&app, &player, "GetInventoryItems", json!({"Filter": "type eq 'currency'"})).await;
    let currencies = data(&currencies)["Items"].as_array().unwrap().clone();
    assert_eq!(currencies.len(), 2, "{currencies:?}");
    let one = as_player(
        &app,
        &player,
        "GetInventoryItems",
        json!({"Filter": "stackId eq 'bag-03' and type eq 'catalogItem'"}),
    )
    .await;
    assert_eq!(data(&one)["Items"][0]["Amount"], 4);
    for bad in
        [json!({"Count": 51}), json!({"Count": 0}), json!({"ContinuationToken": "x"}), json!({"Filter": "amount gt 3"})]
    {
        assert_playfab_error(&as_player(&app, &player, "GetInventoryItems", bad).await, 400, "InvalidParams", 1000);
    }
    let empty = as_player(&app, &player, "GetInventoryItems", json!({"CollectionId": "nothing-here"})).await;
    assert_eq!(data(&empty)["Items"], json!([]));
}

#[tokio::test]
async fn add_and_subtract_inventory_items_are_the_servers() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    let other = app.create_tenant("other").await;
    let player = sign_in(&app, "device-server").await;
    let potion = item_id(&app, &tenant, "potion").await;
    let entity = json!({"Id": player.id, "Type": "title_player_account"});
    let potions = |amount: i64, id: &str| json!({"Entity": entity, "Item": {"Id": potion, "StackId": "bag"}, "Amount": amount, "IdempotencyId": id});

    let added = as_server(&app, &tenant, "AddInventoryItems", potions(5, "add-1")).await;
    let transactions = data(&added)["TransactionIds"].clone();
    let replayed = as_server(&app, &tenant, "AddInventoryItems", potions(5, "add-1")).await;
    assert_eq!(data(&replayed)["TransactionIds"], transactions, "a retry answers as the first did");
    let gems = json!({"Entity": entity, "Item": {"Id": "gems"}, "Amount": 50});
    data(&as_server(&app, &tenant, "AddInventoryItems", gems).await);
    let (items, etag) = collection(&app, &player, "default").await;
    assert_eq!((amount(&items, &potion, "bag"), amount(&items, "gems", "default")), (Some(5), Some(1_050)));

    let taken = as_server(&app, &tenant, "SubtractInventoryItems", potions(2, "take-1")).await;
    assert_ne!(data(&taken)["ETag"], json!(etag));
    let mut stale = potions(1, "take-2");
    stale["ETag"] = json!(etag);
    assert_playfab_error(
        &as_server(&app, &tenant, "SubtractInventoryItems", stale).await,
        412,
        "PreconditionFailed",
        1610,
    );
    let too_many = as_server(&app, &tenant, "SubtractInventoryItems", potions(10, "take-3")).await;
    assert_playfab_error(&too_many, 400, "InsufficientFunds", 1059);
    let broke = json!({"Entity": entity, "Item": {"AlternateId": {"Type": "FriendlyId", "Value": "gems"}}, "Amount": 2_000,
        "DeleteEmptyStacks": true});
    assert_playfab_error(
        &as_server(&app, &tenant, "SubtractInventoryItems", broke).await,
        400,
        "InsufficientFunds",
        1059,
    );
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!((amount(&items, &potion, "bag"), amount(&items, "gems", "default")), (Some(3), Some(1_050)));
    let all =
        json!({"Entity": entity, "Item": {"Id": potion, "StackId": "bag"}, "Amount": 3, "DeleteEmptyStacks": true});
    data(&as_server(&app, &tenant, "SubtractInventoryItems", all).await);
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!(amount(&items, &potion, "bag"), None, "an empty stack is not listed");

    // Only a server key of the player's own tenant.
    let headers = [("X-SecretKey", tenant.client_key.as_str())];
    let client = post(&app, "/Inventory/AddInventoryItems", &headers, potions(1, "add-2")).await;
    assert_playfab_error(&client, 403, "NotAuthorized", 1089);
    let none = post(&app, "/Inventory/AddInventoryItems", &[], potions(1, "add-3")).await;
    assert_playfab_error(&none, 401, "NotAuthenticated", 1074);
    let elsewhere = as_server(&app, &other, "AddInventoryItems", potions(1, "add-4")).await;
    assert_playfab_error(&elsewhere, 400, "AccountNotFound", 1001);
    let nobody = json!({"Item": {"Id": potion}, "Amount": 1});
    assert_playfab_error(&as_server(&app, &tenant, "AddInventoryItems", nobody).await, 400, "InvalidParams", 1000);
    let bundle =
        json!({"Entity": entity, "Item": {"AlternateId": {"Type": "FriendlyId", "Value": "chest"}}, "Amount": 1});
    assert_playfab_error(&as_server(&app, &tenant, "AddInventoryItems", bundle).await, 400, "InvalidParams", 1000);
    // No balance passes 10^15, the bound on every amount.
    let most = json!({"Entity": entity, "Item": {"Id": "gems"}, "Amount": 1_000_000_000_000_000_i64});
    assert_playfab_error(&as_server(&app, &tenant, "AddInventoryItems", most).await, 400, "InvalidRequest", 1071);
    let past = json!({"Entity": entity, "Item": {"Id": "gems"}, "Amount": 1_000_000_000_000_001_i64});
    assert_playfab_error(&as_server(&app, &tenant, "AddInventoryItems", past).await, 400, "InvalidParams", 1000);
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!((amount(&items, &potion, "bag"), amount(&items, "gems", "default")), (None, Some(1_050)));
    app.audit().await;
}

#[tokio::test]
async fn racing_purchases_hold_etags_idempotency_and_balances() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    app.without_rate_limits(&tenant).await;
    let player = sign_in(&app, "device-race").await;
    let (_, etag) = collection(&app, &player, "default").await;

    // One ETag, eight purchases: exactly one gets through.
    let racing = join_all((0..8).map(|n| {
        let mut body = potions(1, &format!("etag-{n}"));
        body["ETag"] = json!(etag);
        as_player(&app, &player, "PurchaseInventoryItems", body)
    }))
    .await;
    let passed = racing.iter().filter(|reply| reply.status == 200).count();
    assert_eq!(passed, 1, "{:?}", racing.iter().map(|r| &r.body).collect::<Vec<_>>());
    for refused in racing.iter().filter(|reply| reply.status != 200) {
        assert_playfab_error(refused, 412, "PreconditionFailed", 1610);
    }

    // One idempotency id, sixteen purchases: one purchase, one answer.
    let same = join_all((0..16).map(|_| as_player(&app, &player, "PurchaseInventoryItems", potions(2, "same")))).await;
    let answers: Vec<&Value> = same.iter().map(|reply| &data(reply)["TransactionIds"]).collect();
    assert!(answers.iter().all(|answer| *answer == answers[0]), "{answers:?}");

    // Overdrawing: 950 gems left buy nine swords of 100, never ten.
    let swords = join_all((0..16).map(|n| {
        let body = json!({"Item": {"AlternateId": {"Type": "FriendlyId", "Value": "sword"}}, "Amount": 1,
            "PriceAmounts": [{"ItemId": "gems", "Amount": 100}], "IdempotencyId": format!("sword-{n}")});
        as_player(&app, &player, "PurchaseInventoryItems", body)
    }))
    .await;
    assert_eq!(swords.iter().filter(|reply| reply.status == 200).count(), 9);
    for refused in swords.iter().filter(|reply| reply.status != 200) {
        assert_playfab_error(refused, 400, "InsufficientFunds", 1059);
    }
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!(amount(&items, "gems", "default"), Some(1_000 - 10 - 20 - 900));
    let sword = item_id(&app, &tenant, "sword").await;
    assert_eq!(amount(&items, &sword, "default"), Some(9));

    // The server's subtractions race on one stack of ten: ten go through.
    let potion = item_id(&app, &tenant, "potion").await;
    let entity = json!({"Id": player.id, "Type": "title_player_account"});
    let add = json!({"Entity": entity, "Item": {"Id": potion, "StackId": "pouch"}, "Amount": 10});
    data(&as_server(&app, &tenant, "AddInventoryItems", add).await);
    let takes = join_all((0..16).map(|_| {
        let take = json!({"Entity": entity, "Item": {"Id": potion, "StackId": "pouch"}, "Amount": 1});
        as_server(&app, &tenant, "SubtractInventoryItems", take)
    }))
    .await;
    assert_eq!(takes.iter().filter(|reply| reply.status == 200).count(), 10);
    for refused in takes.iter().filter(|reply| reply.status != 200) {
        assert_playfab_error(refused, 400, "InsufficientFunds", 1059);
    }
    let (items, _) = collection(&app, &player, "default").await;
    assert_eq!(amount(&items, &potion, "pouch"), None, "used up, never below zero");
    app.audit().await;
}

#[tokio::test]
async fn another_tenants_items_stores_and_players_are_not_found_and_change_nothing() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    let other = app.create_tenant("other").await;
    app.put_currency(&other, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let theirs = crate::helpers::priced_item(&app, &other, "relic", "durable", 1).await;
    let their_store =
        app.put_store(&other, "bazaar", json!({"name": "Bazaar", "listings": [{"item_key": "relic"}]})).await;
    let player = sign_in(&app, "device-mine").await;
    let (_, before) = collection(&app, &player, "default").await;

    let buy = json!({"Item": {"Id": theirs}, "Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 1}]});
    assert_playfab_error(&as_player(&app, &player, "PurchaseInventoryItems", buy).await, 400, "ItemNotFound", 1047);
    let mut through = potions(1, "theirs-1");
    through["StoreId"] = json!(their_store);
    assert_playfab_error(
        &as_player(&app, &player, "PurchaseInventoryItems", through).await,
        400,
        "StoreNotFound",
        1221,
    );
    let add = json!({"Entity": {"Id": player.id}, "Item": {"Id": theirs}, "Amount": 1});
    assert_playfab_error(&as_server(&app, &tenant, "AddInventoryItems", add).await, 400, "ItemNotFound", 1047);
    // Their server key does not reach this tenant's player.
    let gems = json!({"Entity": {"Id": player.id}, "Item": {"Id": "gems"}, "Amount": 5});
    assert_playfab_error(&as_server(&app, &other, "AddInventoryItems", gems).await, 400, "AccountNotFound", 1001);

    let (items, after) = collection(&app, &player, "default").await;
    assert_eq!(after, before, "nothing changed");
    assert_eq!(amount(&items, "gems", "default"), Some(1_000));
    let purchases: i64 = app.pool.scalar("SELECT count(*) FROM purchases").await;
    assert_eq!(purchases, 0);
}
