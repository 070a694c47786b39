//! Regenerating currencies (`recharge`).

use crate::helpers::{As, spawn_app};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_regenerating_currency_refills_over_time_up_to_its_max() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    let recharge = json!({"amount": 1, "period_seconds": 1, "max": 3});
    app.put_currency(&tenant, "energy", json!({"name": "Energy", "initial_balance": 3, "recharge": recharge})).await;
    let player = app.login(&tenant, "player-1").await;
    let run = app
        .put_item(
            &tenant,
            "run",
            json!({"name": "Run", "item_type": "consumable", "prices": [{"currency_code": "energy", "amount": 1}]}),
        )
        .await;

    // Full: the clock is idle and nothing accrues past the max.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.balance(&tenant, &player, "energy").await, 3);
    let reply =
        app.purchase(&tenant, &player, json!({"catalog_item_id": run, "currency_code": "energy", "quantity": 3})).await;
    assert_eq!(reply.assert_ok()["balance_after"], 0);
    let wallet = app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await;
    assert!(wallet.assert_ok()[0]["next_recharge_at"].is_string(), "{}", wallet.body);
    assert_eq!(wallet.data()[0]["recharge"]["max"], 3);
    app.purchase(&tenant, &player, json!({"catalog_item_id": run, "currency_code": "energy"}))
        .await
        .assert_error(400, "INSUFFICIENT_BALANCE");

    // One unit a second, spendable as soon as it has accrued.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(app.balance(&tenant, &player, "energy").await, 2);
    let reply = app.purchase(&tenant, &player, json!({"catalog_item_id": run, "currency_code": "energy"})).await;
    assert_eq!(reply.assert_ok()["balance_after"], 1);

    // Never past the max, however long it waits.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let wallet = app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(wallet.assert_ok()[0]["balance"], 3);
    assert!(wallet.data()[0].get("next_recharge_at").is_none(), "{}", wallet.body);
    let ledger = app.ledger(&tenant, &player, "?currency_code=energy").await;
    let entries = ledger.assert_ok()["entries"].as_array().unwrap().clone();
    let recharged: i64 =
        entries.iter().filter(|e| e["reason"] == "recharge").map(|e| e["delta"].as_i64().unwrap()).sum();
    assert_eq!(recharged, 4);
    assert_eq!(entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum::<i64>(), 3);
    app.audit().await;
}

/// An `energy` currency of `tenant`: 1 a second up to `max`, starting at `initial`.
async fn energy(app: &crate::helpers::TestApp, tenant: &crate::helpers::Tenant, initial: i64, max: i64) {
    let recharge = json!({"amount": 1, "period_seconds": 1, "max": max});
    app.put_currency(tenant, "energy", json!({"name": "Energy", "initial_balance": initial, "recharge": recharge}))
        .await;
}

#[tokio::test]
async fn a_regenerating_currency_starting_at_zero_regenerates() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    // A player created before the currency existed, and one after.
    let early = app.login(&tenant, "early").await;
    energy(&app, &tenant, 0, 5).await;
    let late = app.login(&tenant, "late").await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(app.balance(&tenant, &early, "energy").await, 2);
    assert_eq!(app.balance(&tenant, &late, "energy").await, 2);
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    assert_eq!(app.balance(&tenant, &late, "energy").await, 5, "never past the max");
    app.audit().await;
}

#[tokio::test]
async fn raising_the_recharge_max_pays_nothing_for_time_spent_at_the_old_max() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    energy(&app, &tenant, 3, 3).await;
    let player = app.login(&tenant, "player-1").await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    energy(&app, &tenant, 3, 10).await;
    assert_eq!(app.balance(&tenant, &player, "energy").await, 3, "time at the old max earned nothing");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(app.balance(&tenant, &player, "energy").await, 4, "the clock runs from the raise");
    app.audit().await;
}

#[tokio::test]
async fn changing_the_recharge_pays_what_accrued_under_the_old_one() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    energy(&app, &tenant, 0, 10).await;
    let player = app.login(&tenant, "player-1").await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    // Slower from now on: what accrued at the old rate is kept.
    let slower = json!({"amount": 1, "period_seconds": 60, "max": 10});
    app.put_currency(&tenant, "energy", json!({"name": "Energy", "recharge": slower})).await;
    assert_eq!(app.balance(&tenant, &player, "energy").await, 2);
    app.audit().await;
}

#[tokio::test]
async fn recharge_never_passes_max_balance_and_durations_are_bounded() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    let key = As::Key(&tenant.admin_key);
    let refused = [
        json!({"name": "E", "max_balance": 5, "recharge": {"amount": 1, "period_seconds": 1, "max": 10}}),
        json!({"name": "E", "recharge": {"amount": 1, "period_seconds": 10_000_000_000_000_i64, "max": 10}}),
        json!({"name": "E", "recharge": {"amount": 1, "period_seconds": 0, "max": 10}}),
        json!({"name": "E", "recharge": {"amount": 0, "period_seconds": 1, "max": 10}}),
        json!({"name": "E", "recharge": {"amount": 1, "period_seconds": 1, "max": 0}}),
        json!({"name": "E", "recharge": {"amount": 1, "period_seconds": 1, "max": 10_000_000_000_000_000_i64}}),
    ];
    for body in refused {
        app.call(Method::PUT, "/admin/currencies/energy", key, Some(body.clone()))
            .await
            .assert_error(400, "VALIDATION_FAILED");
    }
    app.put_currency(
        &tenant,
        "energy",
        json!({"name": "E", "max_balance": 5, "recharge": {"amount": 1, "period_seconds": 1, "max": 5}}),
    )
    .await;
    let player = app.login(&tenant, "player-1").await;
    let wallet = app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(wallet.assert_ok()[0]["balance"], 0);
}

#[tokio::test]
async fn accrual_is_settled_when_the_balance_is_read_not_when_the_request_began() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    energy(&app, &tenant, 0, 100).await;
    let player = app.login(&tenant, "player-1").await;
    let logged_in = std::time::Instant::now();
    // The hostile module spins for about a second before it reads the balance.
    let slow = app
        .put_item(
            &tenant,
            "slow",
            json!({"name": "Slow", "item_type": "consumable", "prices": [{"currency_code": "energy", "amount": 1}]}),
        )
        .await;
    let tenant_id: uuid::Uuid = app.pool.scalar("SELECT id FROM tenants WHERE slug = 'game'").await;
    let limits = json!({"fuel": 1_000_000_000_000_i64, "deadline_ms": 20_000});
    let path = format!("/operator/tenants/{tenant_id}/limits");
    app.call(Method::PUT, &path, As::Operator(&app.operator_key), Some(limits)).await.assert_ok();
    crate::modules::activate_hostile(&app, &tenant).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let started = logged_in.elapsed();
    let reply = app.purchase(&tenant, &player, json!({"catalog_item_id": slow, "currency_code": "energy"})).await;
    let ended = logged_in.elapsed();
    let balance_after = reply.assert_ok()["balance_after"].as_i64().unwrap();
    assert!(
        ended - started > Duration::from_millis(1_500),
        "the module was slow enough to tell: {:?}",
        ended - started
    );
    // Settled when the module read it: at least what accrued until shortly before the answer.
    let accrued_at_the_end = (ended - Duration::from_millis(300)).as_secs() as i64;
    assert!(balance_after + 1 >= accrued_at_the_end, "balance after {balance_after}, ended at {ended:?}");
    app.audit().await;
}
