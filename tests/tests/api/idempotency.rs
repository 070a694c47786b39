//! Idempotent purchases (SPEC §5).

use crate::helpers::{As, priced_item, shop, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_retry_replays_the_first_response_without_a_second_charge() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "order-1"});
    let first = app.purchase(&tenant, &player, body.clone()).await;
    first.assert_ok();
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app.purchase(&tenant, &player, body).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 1);
}

#[tokio::test]
async fn the_header_and_the_body_field_are_the_same_key() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let in_body = json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": 1, "idempotency_key": "k"});
    let first = app.purchase(&tenant, &player, in_body).await;
    let url = format!("{}/client/inventory/purchase", app.address);
    let in_header = app
        .http
        .post(url)
        .header("X-Api-Key", &tenant.client_key)
        .bearer_auth(&player.token)
        .header("Idempotency-Key", "k")
        // Quantity left to its default: the same request.
        .json(&json!({"catalog_item_id": sword, "currency_code": "gems"}))
        .send()
        .await
        .unwrap();
    assert_eq!(in_header.status(), 200);
    assert_eq!(in_header.headers()["idempotent-replayed"], "true");
    assert_eq!(in_header.json::<serde_json::Value>().await.unwrap(), first.body);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "k"}))
        .await
        .assert_ok();
    let reused = json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": 2, "idempotency_key": "k"});
    app.purchase(&tenant, &player, reused).await.assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
    // Keys are per user: another player may use the same one.
    let other = app.login(&tenant, "player-2").await;
    app.purchase(&tenant, &other, json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "k"}))
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_refused_purchase_leaves_its_key_free_for_a_retry() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 50).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "k"});
    app.purchase(&tenant, &player, body.clone()).await.assert_error(400, "INSUFFICIENT_BALANCE");
    app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 50})).await.assert_ok();
    let reply = app.purchase(&tenant, &player, body).await;
    assert_eq!(reply.assert_ok()["balance_after"], 0);
    assert!(reply.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn conflicting_key_sources_are_a_validation_error() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let reply = app
        .http
        .post(format!("{}/client/inventory/purchase", app.address))
        .header("X-Api-Key", &tenant.client_key)
        .bearer_auth(&player.token)
        .header("Idempotency-Key", "a")
        .json(&json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let _ = app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000);
}
