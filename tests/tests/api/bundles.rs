//! Bundle expansion, and the limits that keep every bundle buyable.

use crate::helpers::{As, priced_item, shop, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn nested_bundles_grant_their_contents_times_the_quantity() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    app.put_currency(&tenant, "coins", json!({"name": "Coins"})).await;
    let potion = app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable"})).await;
    let shield = app.put_item(&tenant, "shield", json!({"name": "Shield", "item_type": "durable"})).await;
    app.put_item(
        &tenant,
        "small",
        json!({"name": "Small", "item_type": "bundle",
        "contents": [{"item_key": "potion", "quantity": 3}, {"currency_code": "gems", "amount": 10}]}),
    )
    .await;
    let big = app
        .put_item(
            &tenant,
            "big",
            json!({"name": "Big", "item_type": "bundle",
            "prices": [{"currency_code": "gems", "amount": 100}],
            "contents": [
                {"item_key": "small", "quantity": 2},
                {"item_key": "shield", "quantity": 1},
                {"currency_code": "coins", "amount": 50},
            ]}),
        )
        .await;
    let reply =
        app.purchase(&tenant, &player, json!({"catalog_item_id": big, "currency_code": "gems", "quantity": 2})).await;
    // 1000 - 2 × 100 + 2 × 2 × 10 gems.
    assert_eq!(reply.assert_ok()["balance_after"], 840);
    assert_eq!(app.quantity(&tenant, &player, &potion).await, 12);
    assert_eq!(app.quantity(&tenant, &player, &shield).await, 2);
    assert_eq!(app.quantity(&tenant, &player, &big).await, 0, "a bundle is never held itself");
    assert_eq!(app.balance(&tenant, &player, "coins").await, 100);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 840);
    let inventory = app.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, &player), None).await;
    for stack in inventory.assert_ok().as_array().unwrap() {
        assert_eq!(stack["acquired_via"], "store_purchase");
        assert!(stack["catalog_items"]["key"].is_string());
    }
}

#[tokio::test]
async fn granted_stacks_of_timed_items_carry_an_expiry() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let boost = app
        .put_item(
            &tenant,
            "boost",
            json!({"name": "Boost", "item_type": "consumable", "duration_seconds": 3600,
            "prices": [{"currency_code": "gems", "amount": 1}]}),
        )
        .await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": boost, "currency_code": "gems"})).await.assert_ok();
    let inventory = app.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, &player), None).await;
    let expires_at = inventory.assert_ok()[0]["expires_at"].as_str().expect("an expiry").to_owned();
    let expires_at = chrono::DateTime::parse_from_rfc3339(&expires_at).unwrap();
    let left = expires_at.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3500..=3600).contains(&left), "expires in {left} s");
}

#[tokio::test]
async fn bundles_that_could_never_be_bought_are_refused_when_written() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    let key = As::Key(&tenant.admin_key);
    app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable"})).await;
    let bundle = |content: &str, quantity: u64| json!({"name": "B", "item_type": "bundle", "contents": [{"item_key": content, "quantity": quantity}]});
    app.put_item(&tenant, "crate", bundle("potion", 1_000_000)).await;
    // A million crates of a million potions: 10^12 potions in one bundle.
    app.call(Method::PUT, "/admin/catalog/items/pallet", key, Some(bundle("crate", 1_000_000)))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    // Growing an inner bundle may not push an outer one past the limit.
    app.put_item(&tenant, "small", bundle("potion", 1)).await;
    app.put_item(&tenant, "box", bundle("small", 1_000)).await;
    app.call(Method::PUT, "/admin/catalog/items/small", key, Some(bundle("potion", 10_000)))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    // Nine levels of nesting is one too many.
    let mut inner = "potion".to_owned();
    for level in 1..=9 {
        let name = format!("level-{level}");
        let reply = app.call(Method::PUT, &format!("/admin/catalog/items/{name}"), key, Some(bundle(&inner, 1))).await;
        if level <= 8 {
            reply.assert_ok();
        } else {
            reply.assert_error(400, "VALIDATION_FAILED");
        }
        inner = name;
    }
}

#[tokio::test]
async fn a_grant_that_would_pass_the_stack_maximum_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 1).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems"})).await.assert_ok();
    let max: i64 = 1_000_000_000_000_000;
    app.pool.execute("UPDATE inventory SET quantity = $1 - 5", max).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems", "quantity": 10}))
        .await
        .assert_error(400, "MAX_STACK_EXCEEDED");
    app.grant(&tenant, &player, json!({"item_key": "potion", "quantity": 10}))
        .await
        .assert_error(400, "MAX_STACK_EXCEEDED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 999);
    assert_eq!(app.quantity(&tenant, &player, &potion).await, max - 5);
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems", "quantity": 5}))
        .await
        .assert_ok();
    app.audit().await;
}
