//! Consumes.

use crate::helpers::{As, priced_item, shop, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn consuming_decrements_and_an_empty_stack_disappears() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 10).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems", "quantity": 3}))
        .await
        .assert_ok();
    let reply = app.consume(&tenant, &player, &potion, 2).await;
    let data = reply.assert_ok();
    assert_eq!((data["quantity"].as_i64(), data["app_user_id"].as_str()), (Some(1), Some(player.user_id.as_str())));
    assert_eq!(data["catalog_item_id"], potion.as_str());
    // An empty body means one.
    let path = format!("/client/inventory/{potion}/consume");
    let reply = app.call(Method::POST, &path, As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(reply.assert_ok()["quantity"], 0);
    let inventory = app.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(inventory.assert_ok().as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn consume_refusals_have_their_codes() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 10).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 10).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems"})).await.assert_ok();
    app.consume(&tenant, &player, &sword, 1).await.assert_error(400, "NOT_CONSUMABLE");
    app.consume(&tenant, &player, &potion, 2).await.assert_error(400, "INSUFFICIENT_QUANTITY");
    app.consume(&tenant, &player, &potion, 0).await.assert_error(400, "VALIDATION_FAILED");
    app.consume(&tenant, &player, "not-a-uuid", 1).await.assert_error(400, "VALIDATION_FAILED");
    app.consume(&tenant, &player, &uuid::Uuid::now_v7().to_string(), 1).await.assert_error(404, "NOT_FOUND");
    assert_eq!(app.quantity(&tenant, &player, &potion).await, 1);
}
