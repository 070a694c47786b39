//! The ledger: append-only, newest first, paged, summing to the balance.

use crate::helpers::{priced_item, shop, spawn_app};
use serde_json::json;

#[tokio::test]
async fn the_ledger_pages_newest_first_and_sums_to_the_balance() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 7).await;
    for _ in 0..5 {
        app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems"})).await.assert_ok();
    }
    app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 3, "reason": "refund"})).await.assert_ok();

    let mut entries = Vec::new();
    let mut query = "?limit=4".to_owned();
    loop {
        let page = app.ledger(&tenant, &player, &query).await;
        let data = page.assert_ok().clone();
        entries.extend(data["entries"].as_array().unwrap().iter().cloned());
        match data["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(entries.len(), 7, "initial balance, five purchases, one refund");
    let deltas: Vec<i64> = entries.iter().map(|e| e["delta"].as_i64().unwrap()).collect();
    assert_eq!(deltas, vec![3, -7, -7, -7, -7, -7, 1_000]);
    assert_eq!(entries[0]["reason"], "refund");
    assert_eq!(entries[6]["reason"], "grant");
    // Each entry names the rules module that made it; the server's own grants, none.
    let modules =
        app.call(reqwest::Method::GET, "/admin/modules", crate::helpers::As::Key(&tenant.admin_key), None).await;
    let builtin = modules.assert_ok()[0]["sha256"].clone();
    assert_eq!(modules.data()[0]["builtin"], true);
    let deciders: Vec<&serde_json::Value> = entries.iter().map(|e| &e["module_sha256"]).collect();
    let none = serde_json::Value::Null;
    assert_eq!(deciders, vec![&none, &builtin, &builtin, &builtin, &builtin, &builtin, &none]);
    let balance = app.balance(&tenant, &player, "gems").await;
    assert_eq!(deltas.iter().sum::<i64>(), balance);
    assert_eq!(entries[0]["balance_after"].as_i64(), Some(balance));
}

#[tokio::test]
async fn no_grant_takes_a_balance_past_the_bound_on_every_amount() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let most = 1_000_000_000_000_000_i64;
    app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": most}))
        .await
        .assert_error(400, "MAX_BALANCE_EXCEEDED");
    let to_the_bound = json!({"currency_code": "gems", "amount": most - 1_000});
    assert_eq!(app.grant(&tenant, &player, to_the_bound).await.assert_ok()["balance_after"], most);
    app.grant(&tenant, &player, json!({"currency_code": "gems", "amount": 1}))
        .await
        .assert_error(400, "MAX_BALANCE_EXCEEDED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, most);
    app.audit().await;
}
