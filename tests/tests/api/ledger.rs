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
    let balance = app.balance(&tenant, &player, "gems").await;
    assert_eq!(deltas.iter().sum::<i64>(), balance);
    assert_eq!(entries[0]["balance_after"].as_i64(), Some(balance));
}
