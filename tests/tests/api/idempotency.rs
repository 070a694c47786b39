//! Idempotent purchases, grants and consumes.

use crate::helpers::{As, priced_item, shop, spawn_app};
use futures::future::join_all;
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

#[tokio::test]
async fn a_retried_grant_grants_once() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    priced_item(&app, &tenant, "potion", "consumable", 10).await;
    let grant = |body: serde_json::Value, key: &str| {
        let path = format!("{}/server/users/{}/grants", app.address, player.identity);
        let request = app.http.post(path).header("X-Api-Key", &tenant.server_key).header("Idempotency-Key", key);
        async move {
            let response = request.json(&body).send().await.unwrap();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            (response.status().as_u16(), replayed, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let gems = json!({"currency_code": "gems", "amount": 50});
    let first = grant(gems.clone(), "grant-1").await;
    let again = grant(gems.clone(), "grant-1").await;
    assert_eq!((first.0, first.1), (200, false));
    assert_eq!((again.0, again.1, &again.2), (200, true, &first.2), "the retry answers as the first did");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 150);
    let other = grant(json!({"currency_code": "gems", "amount": 60}), "grant-1").await;
    assert_eq!((other.0, other.2["error"]["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")));
    // Items too, and sixteen racing retries of one grant land once.
    let potions = json!({"item_key": "potion", "quantity": 3});
    let replies = join_all((0..16).map(|_| grant(potions.clone(), "grant-2"))).await;
    assert!(replies.iter().all(|(status, _, _)| *status == 200), "{replies:?}");
    assert_eq!(replies.iter().filter(|(_, replayed, _)| !replayed).count(), 1);
    let potion_id = app.call(Method::GET, "/admin/catalog/items/potion", As::Key(&tenant.admin_key), None).await;
    let potion_id = potion_id.assert_ok()["id"].as_str().unwrap().to_owned();
    assert_eq!(app.quantity(&tenant, &player, &potion_id).await, 3);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 150);
    app.audit().await;
}

#[tokio::test]
async fn a_retried_consume_consumes_once() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 10).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems", "quantity": 5}))
        .await
        .assert_ok();
    let consume = |host: &'static str, key: &str| {
        let base = if host == "a" { &app.address } else { &other_host.address };
        let request = app
            .http
            .post(format!("{base}/client/inventory/{potion}/consume"))
            .header("X-Api-Key", &tenant.client_key)
            .bearer_auth(&player.token)
            .header("Idempotency-Key", key)
            .json(&json!({"quantity": 2}));
        async move {
            let response = request.send().await.unwrap();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            (response.status().as_u16(), replayed, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Racing retries over two hosts: one consume, every caller told it left 3.
    let replies = join_all((0..12).map(|i| consume(if i % 2 == 0 { "a" } else { "b" }, "use-1"))).await;
    for (status, _, body) in &replies {
        assert_eq!((*status, &body["data"]["quantity"]), (200, &json!(3)), "{body}");
    }
    assert_eq!(replies.iter().filter(|(_, replayed, _)| !replayed).count(), 1);
    assert_eq!(app.quantity(&tenant, &player, &potion).await, 3);
    // After the stack ran short, a retry still replays the first answer.
    app.consume(&tenant, &player, &potion, 3).await.assert_ok();
    let late = consume("a", "use-1").await;
    assert_eq!((late.0, late.1, &late.2["data"]["quantity"]), (200, true, &json!(3)));
    let consumes: i64 = app.pool.scalar("SELECT count(*) FROM consumes").await;
    assert_eq!(consumes, 2);
}
