//! Sverse's shop API (`/api/private/*`), against the shapes of its public
//! pages: shop items filtered, sorted and paged; purchases with a required
//! idempotency key, 409 on a replay; errors as `{"error": true, "message"}`.

use crate::helpers::{As, Player, Reply, Tenant, TestApp, spawn_app};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

/// A tenant with gems (1,000) and gold (500); a sword (100 gems or 50 gold),
/// a shield (30 gems) and a potion (5 gems); a store `shop` selling the
/// sword for 80 gems (gold at the catalog's price) and showing the shield
/// not for sale, and a store `event` selling the potion. Four shop items.
async fn sverse_shop(app: &TestApp, slug: &str) -> Tenant {
    let tenant = app.create_tenant(slug).await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    app.put_currency(&tenant, "gold", json!({"name": "Gold", "initial_balance": 500})).await;
    let price = |gems: i64| json!({"currency_code": "gems", "amount": gems});
    let sword = json!({"name": "Sword", "item_type": "durable", "prices": [price(100), {"currency_code": "gold", "amount": 50}]});
    app.put_item(&tenant, "sword", sword).await;
    app.put_item(&tenant, "shield", json!({"name": "Shield", "item_type": "durable", "prices": [price(30)]})).await;
    app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable", "prices": [price(5)]})).await;
    let chest = json!({"name": "Chest", "item_type": "bundle", "prices": [price(100)],
        "contents": [{"item_key": "potion", "quantity": 2}, {"currency_code": "gems", "amount": 30}]});
    app.put_item(&tenant, "chest", chest).await;
    let listings = json!([
        {"item_key": "sword", "override_prices": [price(80)]},
        {"item_key": "shield", "purchasable": false},
    ]);
    app.put_store(&tenant, "shop", json!({"name": "Shop", "listings": listings})).await;
    app.put_store(&tenant, "event", json!({"name": "Event", "listings": [{"item_key": "potion"}]})).await;
    tenant
}

async fn shop_items(app: &TestApp, key: &str, query: &str) -> Reply {
    app.call(Method::GET, &format!("/api/private/shop-items{query}"), As::Key(key), None).await
}

/// The items of a successful listing.
fn items(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["error"], false);
    reply.data()["items"].as_array().expect("items").clone()
}

fn prices(reply: &Reply) -> Vec<i64> {
    items(reply).iter().map(|item| item["price"].as_i64().unwrap()).collect()
}

/// A Sverse error: the status, `error: true` and a message.
fn assert_sverse_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"], true, "{}", reply.body);
    assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", reply.body);
}

/// The id of the shop item of `item_def_id` in `currency`.
async fn shop_item_id(app: &TestApp, tenant: &Tenant, item_def_id: &str, currency: &str) -> String {
    let listed = items(&shop_items(app, &tenant.server_key, "?limit=100").await);
    let found = listed.iter().find(|item| item["item_def_id"] == item_def_id && item["currency_code"] == currency);
    found.expect("the shop item is listed")["id"].as_str().unwrap().to_owned()
}

/// A player the game server created, with a session to check it natively.
async fn server_player(app: &TestApp, tenant: &Tenant, identity: &str) -> Player {
    let path = format!("/server/users/{identity}/sessions");
    let reply = app.call(Method::POST, &path, As::Key(&tenant.server_key), None).await;
    Player {
        token: reply.assert_ok()["session_token"].as_str().unwrap().to_owned(),
        user_id: reply.data()["app_user_id"].as_str().unwrap().to_owned(),
        identity: identity.to_owned(),
    }
}

async fn buy(app: &TestApp, tenant: &Tenant, identity: &str, body: Value) -> Reply {
    let path = format!("/api/private/users/{identity}/purchases");
    app.call(Method::POST, &path, As::Key(&tenant.server_key), Some(body)).await
}

#[tokio::test]
async fn shop_items_are_every_listing_at_each_price_filtered_sorted_and_paged() {
    let app = spawn_app().await;
    let tenant = sverse_shop(&app, "game").await;
    let key = tenant.server_key.as_str();

    let all = shop_items(&app, key, "").await;
    let listed = items(&all);
    assert_eq!(all.data()["pagination"], json!({"page": 1, "limit": 20, "total": 4, "total_pages": 1}));
    for item in &listed {
        for field in ["id", "item_def_id", "currency_code", "createdAt"] {
            assert!(item[field].is_string(), "{field} in {item}");
        }
        assert!(item["price"].is_number() && item["purchasable"].is_boolean(), "{item}");
        chrono::DateTime::parse_from_rfc3339(item["createdAt"].as_str().unwrap()).expect("createdAt is a date-time");
    }
    let mut seen: Vec<(String, String, i64, bool)> = listed
        .iter()
        .map(|item| {
            let text = |field: &str| item[field].as_str().unwrap().to_owned();
            (text("item_def_id"), text("currency_code"), item["price"].as_i64().unwrap(), item["purchasable"] == true)
        })
        .collect();
    seen.sort();
    let expected = [
        ("potion", "gems", 5, true),
        ("shield", "gems", 30, false),
        ("sword", "gems", 80, true),
        ("sword", "gold", 50, true),
    ];
    let expected: Vec<_> = expected.iter().map(|(i, c, p, b)| (i.to_string(), c.to_string(), *p, *b)).collect();
    assert_eq!(seen, expected, "the listing's override, else the catalog's price; the chest is in no store");
    assert_eq!(items(&shop_items(&app, key, "").await), listed, "ids and order are stable");

    assert_eq!(prices(&shop_items(&app, key, "?sortBy=price").await), [5, 30, 50, 80]);
    assert_eq!(prices(&shop_items(&app, key, "?sortBy=price&order=desc").await), [80, 50, 30, 5]);
    let newest_first = items(&shop_items(&app, key, "?sortBy=createdAt&order=desc").await);
    let dates: Vec<&str> = newest_first.iter().map(|item| item["createdAt"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|pair| pair[0] >= pair[1]), "{dates:?}");
    assert_eq!(prices(&shop_items(&app, key, "?currency=gold").await), [50]);
    assert_eq!(prices(&shop_items(&app, key, "?purchasable=false").await), [30]);
    assert_eq!(prices(&shop_items(&app, key, "?purchasable=true&sortBy=price").await), [5, 50, 80]);
    let second = shop_items(&app, key, "?sortBy=price&limit=3&page=2").await;
    assert_eq!(prices(&second), [80]);
    assert_eq!(second.data()["pagination"], json!({"page": 2, "limit": 3, "total": 4, "total_pages": 2}));
    assert_eq!(prices(&shop_items(&app, key, "?page=3&limit=3").await), Vec::<i64>::new());

    for query in [
        "?page=0",
        "?page=abc",
        "?page=-1",
        "?limit=0",
        "?limit=101",
        "?limit=1.5",
        "?sortBy=name",
        "?order=up",
        "?purchasable=yes",
        "?currency=no%20spaces",
    ] {
        assert_sverse_error(&shop_items(&app, key, query).await, 400);
    }
    assert_sverse_error(&shop_items(&app, "not-a-key", "").await, 401);
    assert_sverse_error(&shop_items(&app, &tenant.client_key, "").await, 401);
    assert_sverse_error(&app.call(Method::GET, "/api/private/shop-items", As::Nobody, None).await, 401);

    // Another tenant sees its own shop only.
    let other = app.create_tenant("other").await;
    let theirs = shop_items(&app, &other.server_key, "").await;
    assert_eq!(items(&theirs), Vec::<Value>::new());
    assert_eq!(theirs.data()["pagination"]["total"], 0);
}

#[tokio::test]
async fn a_purchase_answers_in_sverse_shape_keeps_its_meta_and_replays_as_409() {
    let app = spawn_app().await;
    let tenant = sverse_shop(&app, "game").await;
    let whale = server_player(&app, &tenant, "whale").await;
    let sword = shop_item_id(&app, &tenant, "sword", "gems").await;
    let body = json!({"shopItemId": sword, "quantity": 2, "idempotencyKey": "order-1", "meta": {"source": "event-42"}});

    let bought = buy(&app, &tenant, "whale", body.clone()).await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    assert_eq!(bought.body["error"], false);
    let data = bought.data().clone();
    assert!(data["purchaseId"].is_string(), "{data}");
    assert_eq!(data["user"], "whale");
    assert_eq!(data["item"], json!({"shopItemId": sword, "itemDefId": "sword", "quantity": 2}));
    assert_eq!(data["cost"], json!({"currency": "gems", "amount": 160}));
    assert_eq!(data["wallet"], json!({"balanceBefore": 1_000, "balanceAfter": 840}));

    let again = buy(&app, &tenant, "whale", body.clone()).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.body, json!({"error": true, "data": data}), "the earlier result, whole");
    assert_eq!(app.balance(&tenant, &whale, "gems").await, 840, "charged once");
    let mut changed = body.clone();
    changed["quantity"] = json!(1);
    assert_sverse_error(&buy(&app, &tenant, "whale", changed).await, 409);
    let mut other_meta = body.clone();
    other_meta["meta"] = json!({"source": "elsewhere"});
    assert_sverse_error(&buy(&app, &tenant, "whale", other_meta).await, 409);

    let kept: i64 =
        app.pool.scalar("SELECT count(*) FROM purchases WHERE CAST(response_body AS TEXT) LIKE '%event-42%'").await;
    assert_eq!(kept, 1, "meta is kept with the purchase");

    // A bundle that credits the currency it is paid in: the balance before
    // is the one before the purchase, not the one after less the price.
    app.put_store(
        &tenant,
        "event",
        json!({"name": "Event", "listings": [{"item_key": "potion"}, {"item_key": "chest"}]}),
    )
    .await;
    let chest = shop_item_id(&app, &tenant, "chest", "gems").await;
    let body = json!({"shopItemId": chest, "quantity": 1, "idempotencyKey": "order-2"});
    let bought = buy(&app, &tenant, "whale", body).await;
    assert_eq!(bought.data()["wallet"], json!({"balanceBefore": 840, "balanceAfter": 770}), "{}", bought.body);
    app.audit().await;
}

#[tokio::test]
async fn a_retry_gets_its_first_answer_after_the_shop_item_is_gone() {
    let app = spawn_app().await;
    let tenant = sverse_shop(&app, "game").await;
    let whale = server_player(&app, &tenant, "whale").await;
    let sword = shop_item_id(&app, &tenant, "sword", "gems").await;
    let body = json!({"shopItemId": sword, "quantity": 1, "idempotencyKey": "order-1", "meta": {"n": 1}});
    let bought = buy(&app, &tenant, "whale", body.clone()).await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    app.put_store(&tenant, "shop", json!({"name": "Shop", "listings": [{"item_key": "shield"}]})).await;

    let again = buy(&app, &tenant, "whale", body.clone()).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.body, json!({"error": true, "data": bought.data()}), "the first answer, whole");
    let mut other_key = body.clone();
    other_key["idempotencyKey"] = json!("order-2");
    assert_sverse_error(&buy(&app, &tenant, "whale", other_key).await, 404);
    let mut other_meta = body;
    other_meta["meta"] = json!({"n": 2});
    assert_sverse_error(&buy(&app, &tenant, "whale", other_meta).await, 409);
    assert_eq!(app.balance(&tenant, &whale, "gems").await, 920, "charged once");
}

#[tokio::test]
async fn purchase_errors_come_in_the_seeds_shapes_and_write_nothing() {
    let app = spawn_app().await;
    let tenant = sverse_shop(&app, "game").await;
    let whale = server_player(&app, &tenant, "whale").await;
    let sword = shop_item_id(&app, &tenant, "sword", "gems").await;
    let shield = shop_item_id(&app, &tenant, "shield", "gems").await;
    let body = |item: &str, quantity: Value, key: &str| json!({"shopItemId": item, "quantity": quantity, "idempotencyKey": key});

    for invalid in [
        json!({"quantity": 1, "idempotencyKey": "k"}),
        json!({"shopItemId": sword, "idempotencyKey": "k"}),
        json!({"shopItemId": sword, "quantity": 1}),
        body(&sword, json!(0), "k"),
        body(&sword, json!(-2), "k"),
        body(&sword, json!("two"), "k"),
        body(&sword, json!(1), ""),
        json!({"shopItemId": sword, "quantity": 1, "idempotencyKey": "k", "meta": "not an object"}),
        json!({"shopItemId": sword, "quantity": 1, "idempotencyKey": "k", "meta": {"note": "a\u{0}b"}}),
        json!([1, 2]),
    ] {
        assert_sverse_error(&buy(&app, &tenant, "whale", invalid).await, 400);
    }
    let path = "/api/private/users/whale/purchases";
    let raw = app.http.post(format!("{}{path}", app.address)).header("x-api-key", &tenant.server_key);
    let reply = raw.header("content-type", "application/json").body("{\"shopItemId\": ").send().await.unwrap();
    assert_eq!(reply.status(), 400);
    assert_eq!(reply.json::<Value>().await.unwrap()["error"], true);

    assert_sverse_error(&buy(&app, &tenant, "nobody", body(&sword, json!(1), "k1")).await, 404);
    assert_sverse_error(&buy(&app, &tenant, "whale", body("no-such-item", json!(1), "k2")).await, 404);
    assert_sverse_error(&buy(&app, &tenant, "whale", body(&shield, json!(1), "k3")).await, 400);
    assert_sverse_error(&buy(&app, &tenant, "whale", body(&sword, json!(13), "k4")).await, 400);
    let wrong_key = app.call(Method::POST, path, As::Key("not-a-key"), Some(body(&sword, json!(1), "k5"))).await;
    assert_sverse_error(&wrong_key, 401);

    // Another tenant's shop item and player are not found, with its own key.
    let other = sverse_shop(&app, "other").await;
    server_player(&app, &other, "whale").await;
    assert_sverse_error(&buy(&app, &other, "whale", body(&sword, json!(1), "k6")).await, 404);
    assert_eq!(app.balance(&tenant, &whale, "gems").await, 1_000, "nothing was written");
    let purchases: i64 = app.pool.scalar("SELECT count(*) FROM purchases").await;
    assert_eq!(purchases, 0);
}

#[tokio::test]
async fn racing_sverse_purchases_charge_once_per_key_and_never_overdraw() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let tenant = sverse_shop(&app, "game").await;
    let whale = server_player(&app, &tenant, "whale").await;
    let sword = shop_item_id(&app, &tenant, "sword", "gems").await;

    // Sixteen at once with one key: one purchase, every caller its result.
    let body = json!({"shopItemId": sword, "quantity": 1, "idempotencyKey": "same"});
    let replies = join_all((0..16).map(|i| buy(hosts[i % 2], &tenant, "whale", body.clone()))).await;
    assert_eq!(replies.iter().filter(|reply| reply.status == 200).count(), 1);
    let first = replies.iter().find(|reply| reply.status == 200).unwrap().data()["purchaseId"].clone();
    for reply in &replies {
        if reply.status != 200 {
            assert_eq!(reply.status, 409, "{}", reply.body);
            assert_eq!(reply.body["data"]["purchaseId"], first);
        }
    }
    assert_eq!(app.balance(&tenant, &whale, "gems").await, 920);

    // Sixteen at once with their own keys: 920 gems buy eleven 80-gem swords.
    let replies = join_all((0..16).map(|i| {
        let body = json!({"shopItemId": sword, "quantity": 1, "idempotencyKey": format!("order-{i}")});
        buy(hosts[i % 2], &tenant, "whale", body)
    }))
    .await;
    assert_eq!(replies.iter().filter(|reply| reply.status == 200).count(), 11);
    for refused in replies.iter().filter(|reply| reply.status != 200) {
        assert_sverse_error(refused, 400);
    }
    assert_eq!(app.balance(&tenant, &whale, "gems").await, 40);
    let after: Vec<i64> = replies
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.data()["wallet"]["balanceAfter"].as_i64().unwrap())
        .collect();
    let mut sorted = after.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 11, "every purchase saw its own balance: {after:?}");
    app.audit().await;
}
