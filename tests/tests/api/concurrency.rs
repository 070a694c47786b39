//! Real races: parallel HTTP requests against one user, split over two
//! hosts sharing the database, so the races reach the database (each host
//! queues one user's requests in memory; across hosts only the database's
//! row locks keep them apart).

use crate::helpers::{Reply, priced_item, shop, spawn_app};
use futures::future::join_all;
use serde_json::json;
use std::collections::HashSet;

fn count(replies: &[Reply], status: u16) -> usize {
    replies.iter().filter(|reply| reply.status == status).count()
}

#[tokio::test]
async fn sixty_racing_purchases_on_a_balance_for_twenty_sell_exactly_twenty() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, player) = shop(&app, 2_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems"});
    let replies = join_all((0..60).map(|i| hosts[i % 2].purchase(&tenant, &player, body.clone()))).await;
    assert_eq!(count(&replies, 200), 20);
    for refused in replies.iter().filter(|reply| reply.status != 200) {
        refused.assert_error(400, "INSUFFICIENT_BALANCE");
    }
    assert_eq!(app.balance(&tenant, &player, "gems").await, 0);
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 20);
    let ledger = app.ledger(&tenant, &player, "?limit=100").await;
    let entries = ledger.assert_ok()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 21);
    assert_eq!(entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum::<i64>(), 0);
    let balances_after: HashSet<i64> =
        replies.iter().filter(|r| r.status == 200).map(|r| r.data()["balance_after"].as_i64().unwrap()).collect();
    assert_eq!(balances_after, (0..20).map(|i| i * 100).collect(), "every debit saw the one before it");
}

#[tokio::test]
async fn a_cap_of_three_holds_under_sixteen_racing_purchases() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, player) = shop(&app, 10_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 10).await;
    let store = app
        .put_store(&tenant, "s", json!({"name": "S", "listings": [{"item_key": "sword", "max_purchases_per_user": 3}]}))
        .await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems", "store_id": store});
    let replies = join_all((0..16).map(|i| hosts[i % 2].purchase(&tenant, &player, body.clone()))).await;
    assert_eq!(count(&replies, 200), 3);
    for refused in replies.iter().filter(|reply| reply.status != 200) {
        refused.assert_error(400, "MAX_PURCHASES_REACHED");
    }
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 3);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 10_000 - 30);
    app.audit().await;
}

#[tokio::test]
async fn racing_consumes_never_go_negative() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, player) = shop(&app, 0).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 1).await;
    app.grant(&tenant, &player, json!({"item_key": "potion", "quantity": 10})).await.assert_ok();
    let replies = join_all((0..30).map(|i| hosts[i % 2].consume(&tenant, &player, &potion, 1))).await;
    assert_eq!(count(&replies, 200), 10);
    for refused in replies.iter().filter(|reply| reply.status != 200) {
        refused.assert_error(400, "INSUFFICIENT_QUANTITY");
    }
    let left: HashSet<i64> =
        replies.iter().filter(|r| r.status == 200).map(|r| r.data()["quantity"].as_i64().unwrap()).collect();
    assert_eq!(left, (0..10).collect());
    assert_eq!(app.quantity(&tenant, &player, &potion).await, 0);
}

#[tokio::test]
async fn sixteen_parallel_requests_with_one_key_charge_once() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "launch-day"});
    let replies = join_all((0..16).map(|i| hosts[i % 2].purchase(&tenant, &player, body.clone()))).await;
    assert_eq!(count(&replies, 200), 16, "every caller gets the one result");
    let purchase_ids: HashSet<&str> = replies.iter().map(|r| r.data()["purchase_id"].as_str().unwrap()).collect();
    assert_eq!(purchase_ids.len(), 1);
    let replayed = replies.iter().filter(|r| r.headers.get("idempotent-replayed").is_some()).count();
    assert_eq!(replayed, 15);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 1);
    app.audit().await;
}

#[tokio::test]
async fn mixed_purchases_grants_and_consumes_on_one_user_lose_no_update() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, player) = shop(&app, 500).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 10).await;
    let purchases =
        join_all((0..20).map(|i| {
            hosts[i % 2].purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems"}))
        }));
    let grants =
        join_all((0..20).map(|i| hosts[i % 2].grant(&tenant, &player, json!({"currency_code": "gems", "amount": 5}))));
    let (purchases, grants) = tokio::join!(purchases, grants);
    assert_eq!(count(&grants, 200), 20);
    let bought = count(&purchases, 200) as i64;
    assert_eq!(app.balance(&tenant, &player, "gems").await, 500 + 20 * 5 - bought * 10);
    let consumes = join_all((0..bought as usize + 5).map(|i| hosts[i % 2].consume(&tenant, &player, &potion, 1))).await;
    assert_eq!(count(&consumes, 200) as i64, bought);
    assert_eq!(app.quantity(&tenant, &player, &potion).await, 0);
    app.audit().await;
}

/// A host runs a purchase against the balance it last saw and commits it
/// guarded on that balance: a balance changed by another host since must
/// be noticed, whichever way it moved.
#[tokio::test]
async fn a_purchase_after_another_host_spent_the_balance_is_refused() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let (tenant, player) = shop(&app, 200).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems"});
    assert_eq!(app.purchase(&tenant, &player, body.clone()).await.assert_ok()["balance_after"], 100);
    assert_eq!(other_host.purchase(&tenant, &player, body.clone()).await.assert_ok()["balance_after"], 0);
    app.purchase(&tenant, &player, body).await.assert_error(400, "INSUFFICIENT_BALANCE");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 0);
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 2);
    app.audit().await;
}

#[tokio::test]
async fn a_purchase_after_another_host_credited_the_balance_reports_the_true_balance() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let (tenant, player) = shop(&app, 150).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems"});
    assert_eq!(app.purchase(&tenant, &player, body.clone()).await.assert_ok()["balance_after"], 50);
    // This host last saw 50: too little for a sword, until the grant elsewhere.
    other_host.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 100})).await.assert_ok();
    assert_eq!(app.purchase(&tenant, &player, body.clone()).await.assert_ok()["balance_after"], 50);
    other_host.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 30})).await.assert_ok();
    // This host last saw 50 again; the balance is 80.
    let cheap = priced_item(&app, &tenant, "arrow", "consumable", 10).await;
    let arrows = json!({"catalog_item_id": cheap, "currency_code": "gems", "quantity": 3});
    assert_eq!(app.purchase(&tenant, &player, arrows).await.assert_ok()["balance_after"], 50);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 50);
    let ledger = app.ledger(&tenant, &player, "?limit=100").await;
    let entries = ledger.assert_ok()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum::<i64>(), 50);
    app.audit().await;
}
