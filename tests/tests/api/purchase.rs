//! Purchase semantics, one rule at a time.

use crate::helpers::{As, priced_item, shop, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_purchase_debits_the_total_grants_the_item_and_writes_the_ledger() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 150).await;
    let reply =
        app.purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": 2})).await;
    let data = reply.assert_ok();
    assert_eq!(data["purchased"], true);
    assert_eq!((data["price"].as_i64(), data["balance_after"].as_i64()), (Some(300), Some(700)));
    assert_eq!(data["currency_code"], "gems");
    assert!(uuid::Uuid::parse_str(data["purchase_id"].as_str().unwrap()).is_ok());
    assert_eq!(app.balance(&tenant, &player, "gems").await, 700);
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 2);
    let ledger = app.ledger(&tenant, &player, "").await;
    let newest = &ledger.assert_ok()["entries"][0];
    assert_eq!((newest["delta"].as_i64(), newest["balance_after"].as_i64()), (Some(-300), Some(700)));
    assert_eq!(
        (newest["reason"].as_str(), newest["reference"].as_str()),
        (Some("purchase"), data["purchase_id"].as_str())
    );
}

#[tokio::test]
async fn purchase_refusals_have_their_codes_and_change_nothing() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    app.put_currency(&tenant, "gold", json!({"name": "Gold"})).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 150).await;
    let buy = |body| app.purchase(&tenant, &player, body);
    buy(json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_error(400, "INSUFFICIENT_BALANCE");
    buy(json!({"catalog_item_id": sword, "currency_code": "gold"})).await.assert_error(400, "NO_PRICE");
    let unknown = uuid::Uuid::now_v7().to_string();
    buy(json!({"catalog_item_id": unknown, "currency_code": "gems"})).await.assert_error(404, "NOT_FOUND");
    buy(json!({"catalog_item_id": sword, "currency_code": "gems", "store_id": unknown}))
        .await
        .assert_error(404, "NOT_FOUND");
    buy(json!({"catalog_item_id": "not-a-uuid", "currency_code": "gems"})).await.assert_error(400, "VALIDATION_FAILED");
    buy(json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": 0}))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    buy(json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": -3}))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    buy(json!({"catalog_item_id": sword})).await.assert_error(400, "VALIDATION_FAILED");
    buy(json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": "two"}))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 100);
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 0);
    let ledger = app.ledger(&tenant, &player, "").await;
    assert_eq!(ledger.assert_ok()["entries"].as_array().unwrap().len(), 1, "only the initial balance");
}

#[tokio::test]
async fn a_store_override_replaces_the_catalog_price_and_unlisted_items_are_not_found() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let shield = priced_item(&app, &tenant, "shield", "durable", 100).await;
    let store = app
        .put_store(
            &tenant,
            "sale",
            json!({"name": "Sale", "listings": [
                {"item_key": "sword", "override_prices": [{"currency_code": "gems", "amount": 60}]},
            ]}),
        )
        .await;
    let reply = app
        .purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems", "store_id": store}))
        .await;
    assert_eq!(reply.assert_ok()["price"], 60);
    let reply = app
        .purchase(&tenant, &player, json!({"catalog_item_id": shield, "currency_code": "gems", "store_id": store}))
        .await;
    reply.assert_error(404, "NOT_FOUND");
    // Without the store, the catalog price applies.
    let reply = app.purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await;
    assert_eq!(reply.assert_ok()["balance_after"], 1_000 - 60 - 100);
}

#[tokio::test]
async fn a_listing_not_for_sale_is_not_purchasable() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let store = app
        .put_store(
            &tenant,
            "shown",
            json!({"name": "Shown", "listings": [{"item_key": "sword", "purchasable": false}]}),
        )
        .await;
    let reply = app
        .purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems", "store_id": store}))
        .await;
    reply.assert_error(400, "NOT_PURCHASABLE");
    let got = app.call(Method::GET, "/admin/stores/shown", As::Key(&tenant.admin_key), None).await;
    assert_eq!(got.assert_ok()["listings"][0]["purchasable"], false);
}

#[tokio::test]
async fn the_per_user_cap_counts_quantities_and_is_per_user() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 10).await;
    let store = app
        .put_store(&tenant, "s", json!({"name": "S", "listings": [{"item_key": "sword", "max_purchases_per_user": 3}]}))
        .await;
    let buy = |quantity: i64| json!({"catalog_item_id": sword, "currency_code": "gems", "store_id": store, "quantity": quantity});
    app.purchase(&tenant, &player, buy(2)).await.assert_ok();
    app.purchase(&tenant, &player, buy(2)).await.assert_error(400, "MAX_PURCHASES_REACHED");
    app.purchase(&tenant, &player, buy(1)).await.assert_ok();
    app.purchase(&tenant, &player, buy(1)).await.assert_error(400, "MAX_PURCHASES_REACHED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 970);
    let other = app.login(&tenant, "player-2").await;
    app.purchase(&tenant, &other, buy(3)).await.assert_ok();
}

#[tokio::test]
async fn a_credit_past_max_balance_fails_the_whole_purchase() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 500).await;
    app.put_currency(&tenant, "coins", json!({"name": "Coins", "initial_balance": 90, "max_balance": 100})).await;
    app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable"})).await;
    let pack = app
        .put_item(
            &tenant,
            "pack",
            json!({"name": "Pack", "item_type": "bundle",
            "prices": [{"currency_code": "gems", "amount": 50}],
            "contents": [{"item_key": "potion", "quantity": 1}, {"currency_code": "coins", "amount": 20}]}),
        )
        .await;
    let reply = app.purchase(&tenant, &player, json!({"catalog_item_id": pack, "currency_code": "gems"})).await;
    reply.assert_error(400, "MAX_BALANCE_EXCEEDED");
    // Nothing partial: no debit, no potion, no coins.
    assert_eq!(app.balance(&tenant, &player, "gems").await, 500);
    assert_eq!(app.balance(&tenant, &player, "coins").await, 90);
    let inventory = app.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(inventory.assert_ok().as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn server_grants_credit_debit_and_grant_items() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 10).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 5).await;
    let reply = app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 40})).await;
    assert_eq!(reply.assert_ok()["balance_after"], 50);
    let reply = app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": -20, "reason": "admin"})).await;
    assert_eq!(reply.assert_ok()["balance_after"], 30);
    app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": -31}))
        .await
        .assert_error(400, "INSUFFICIENT_BALANCE");
    app.grant(&tenant, &player, json!({"currency_code": "gold", "amount": 1})).await.assert_error(404, "NOT_FOUND");
    app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 0}))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    let reply = app.grant(&tenant, &player, json!({"item_key": "potion", "quantity": 4})).await;
    assert_eq!(reply.assert_ok()["quantity"], 4);
    assert_eq!(app.quantity(&tenant, &player, &potion).await, 4);
    app.grant(&tenant, &player, json!({"item_key": "ghost", "quantity": 1})).await.assert_error(404, "NOT_FOUND");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 30);
}

#[tokio::test]
async fn currencies_added_later_start_at_their_initial_balance() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 0).await;
    app.put_currency(&tenant, "gold", json!({"name": "Gold", "initial_balance": 250})).await;
    let axe = app
        .put_item(
            &tenant,
            "axe",
            json!({"name": "Axe", "item_type": "durable", "prices": [{"currency_code": "gold", "amount": 200}]}),
        )
        .await;
    assert_eq!(app.balance(&tenant, &player, "gold").await, 250);
    let reply = app.purchase(&tenant, &player, json!({"catalog_item_id": axe, "currency_code": "gold"})).await;
    assert_eq!(reply.assert_ok()["balance_after"], 50);
    let ledger = app.ledger(&tenant, &player, "?currency_code=gold").await;
    let deltas: Vec<i64> =
        ledger.assert_ok()["entries"].as_array().unwrap().iter().map(|e| e["delta"].as_i64().unwrap()).collect();
    assert_eq!(deltas, vec![-200, 250]);
}

#[tokio::test]
async fn a_free_item_is_granted_without_a_charge() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    let gift = priced_item(&app, &tenant, "gift", "durable", 0).await;
    let body = json!({"catalog_item_id": gift, "currency_code": "gems", "idempotency_key": "free-1"});
    let reply = app.purchase(&tenant, &player, body.clone()).await;
    assert_eq!(reply.assert_ok()["price"], 0);
    assert_eq!(reply.data()["balance_after"], 100);
    let replay = app.purchase(&tenant, &player, body).await;
    assert_eq!(replay.data()["purchase_id"], reply.data()["purchase_id"]);
    assert_eq!(app.quantity(&tenant, &player, &gift).await, 1);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 100);
    app.audit().await;
}

#[tokio::test]
async fn an_item_sold_only_through_stores_needs_its_store_and_keeps_the_listings_rules() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let starter = app
        .put_item(
            &tenant,
            "starter",
            json!({"name": "Starter", "item_type": "durable", "store_only": true,
                   "prices": [{"currency_code": "gems", "amount": 100}]}),
        )
        .await;
    let store = app
        .put_store(
            &tenant,
            "shop",
            json!({"name": "Shop", "listings": [{"item_key": "starter", "max_purchases_per_user": 1,
                   "override_prices": [{"currency_code": "gems", "amount": 10}]}]}),
        )
        .await;
    let elsewhere = app.put_store(&tenant, "elsewhere", json!({"name": "Elsewhere", "listings": []})).await;
    // Without the store, or through one that does not list it, it would
    // escape the listing's price and cap.
    app.purchase(&tenant, &player, json!({"catalog_item_id": starter, "currency_code": "gems"}))
        .await
        .assert_error(400, "NOT_PURCHASABLE");
    app.purchase(&tenant, &player, json!({"catalog_item_id": starter, "currency_code": "gems", "store_id": elsewhere}))
        .await
        .assert_error(400, "NOT_PURCHASABLE");
    let through_store = json!({"catalog_item_id": starter, "currency_code": "gems", "store_id": store});
    assert_eq!(app.purchase(&tenant, &player, through_store.clone()).await.assert_ok()["price"], 10);
    app.purchase(&tenant, &player, through_store).await.assert_error(400, "MAX_PURCHASES_REACHED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 990);
    let item = app.call(Method::GET, "/admin/catalog/items/starter", As::Key(&tenant.admin_key), None).await;
    assert_eq!(item.assert_ok()["store_only"], true);
}

#[tokio::test]
async fn an_identical_retry_gets_its_first_answer_whatever_changed_since() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let bought = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "order-1"});
    let first = app.purchase(&tenant, &player, bought.clone()).await;
    first.assert_ok();
    // Sold only through stores since: a new purchase without one is refused,
    // the retry of the one that went through is not.
    app.put_item(
        &tenant,
        "sword",
        json!({"name": "sword", "item_type": "durable", "store_only": true,
               "prices": [{"currency_code": "gems", "amount": 100}]}),
    )
    .await;
    let again = app.purchase(&tenant, &player, bought.clone()).await;
    assert_eq!((again.status, again.data()), (200, first.data()), "{}", again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let new = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "order-2"});
    app.purchase(&tenant, &player, new).await.assert_error(400, "NOT_PURCHASABLE");
    // The same key with another request (through a store that does not
    // exist) is refused as a reuse, not as a missing store.
    let gone = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "order-1",
                      "store_id": uuid::Uuid::now_v7()});
    app.purchase(&tenant, &player, gone).await.assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
}

#[tokio::test]
async fn a_nul_in_what_a_purchase_keeps_is_refused_on_every_store() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let path = "/Inventory/PurchaseInventoryItems";
    let title = crate::playfab::title_id(&app, "game").await;
    let ticket = format!("{title}.{}", player.token);
    let body = json!({"Item": {"Id": sword}, "Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 100}],
                      "NewStackValues": {"DisplayProperties": {"note": "a\u{0}b"}}});
    let reply = crate::playfab::post(&app, path, &[("X-EntityToken", &ticket)], body).await;
    assert_eq!((reply.status, &reply.body["error"]), (400, &json!("InvalidParams")), "{}", reply.body);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000, "nothing was written");
}
