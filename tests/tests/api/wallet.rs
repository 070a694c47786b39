//! Regenerating currencies (SPEC §2 `recharge`).

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
