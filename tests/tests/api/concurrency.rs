//! Real races: parallel HTTP requests against one user, split over two
//! hosts sharing the database, so the races reach the database (each host
//! queues one user's requests in memory; across hosts only the guarded
//! commit keeps them apart).

use crate::helpers::{As, Reply, TestPool, not_applicable, priced_item, shop, spawn_app};
use futures::future::join_all;
use reqwest::Method;
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

/// Purchases of many players arriving together commit in shared
/// statements (group commit); each one keeps its own guard, so refusals
/// and bundles in the same batch land exactly as they would alone.
#[tokio::test]
async fn purchases_of_many_players_at_once_commit_together_and_each_lands_exactly_once() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, _) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let potion = app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable"})).await;
    let shield = app.put_item(&tenant, "shield", json!({"name": "Shield", "item_type": "durable"})).await;
    let kit = app
        .put_item(
            &tenant,
            "kit",
            json!({"name": "Kit", "item_type": "bundle", "prices": [{"currency_code": "gems", "amount": 200}],
                   "contents": [{"item_key": "potion", "quantity": 3}, {"item_key": "shield", "quantity": 1}]}),
        )
        .await;
    let names: Vec<String> = (0..30).map(|i| format!("player-{i}")).collect();
    let players = join_all(names.iter().map(|name| app.login(&tenant, name))).await;
    // Every player tries five swords and three kits: 1,100 gems of 1,000.
    let orders = players.iter().enumerate().flat_map(|(i, player)| {
        let items = [&sword, &kit, &sword, &sword, &kit, &sword, &kit, &sword];
        items.into_iter().enumerate().map(move |(j, item)| (hosts[(i + j) % 2], player, item))
    });
    let tenant = &tenant;
    let replies = join_all(orders.map(|(host, player, item)| async move {
        (player, item, host.purchase(tenant, player, json!({"catalog_item_id": item, "currency_code": "gems"})).await)
    }))
    .await;
    for player in &players {
        let mine: Vec<_> = replies.iter().filter(|(p, _, _)| p.identity == player.identity).collect();
        let bought = |item: &String| mine.iter().filter(|(_, i, r)| *i == item && r.status == 200).count() as i64;
        let (swords, kits) = (bought(&sword), bought(&kit));
        let left = 1_000 - swords * 100 - kits * 200;
        assert!(left >= 0 && swords + kits < 8, "{swords} swords and {kits} kits");
        for (_, item, refused) in mine.iter().filter(|(_, _, r)| r.status != 200) {
            refused.assert_error(400, "INSUFFICIENT_BALANCE");
            let price = if *item == &sword { 100 } else { 200 };
            assert!(left < price, "a purchase was refused with {left} gems left for {price}");
        }
        assert_eq!(app.balance(tenant, player, "gems").await, left);
        assert_eq!(app.quantity(tenant, player, &sword).await, swords);
        assert_eq!(app.quantity(tenant, player, &potion).await, 3 * kits);
        assert_eq!(app.quantity(tenant, player, &shield).await, kits);
    }
    // PostgreSQL tells which transaction wrote a row (SQLite does not).
    if let TestPool::Postgres(pool) = &app.pool {
        let (purchases, transactions): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT xmin::text) FROM purchases").fetch_one(pool).await.unwrap();
        assert!(transactions < purchases, "{purchases} purchases in {transactions} transactions: none shared a commit");
    }
    app.audit().await;
}

/// One key sent to two hosts at once, among other players' purchases:
/// batches that meet the taken key are refused whole by the database and
/// their purchases run again one by one, so only the key's reuse is
/// refused, and the other players are charged exactly once.
#[tokio::test]
async fn a_key_racing_on_two_hosts_among_other_purchases_charges_once() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let hosts = [&app, &other_host];
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let names: Vec<String> = (0..20).map(|i| format!("other-{i}")).collect();
    let others = join_all(names.iter().map(|name| app.login(&tenant, name))).await;
    let keyed = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "launch-day"});
    let plain = json!({"catalog_item_id": sword, "currency_code": "gems"});
    let racing = join_all((0..16).map(|i| hosts[i % 2].purchase(&tenant, &player, keyed.clone())));
    let around = join_all(others.iter().enumerate().map(|(i, p)| hosts[i % 2].purchase(&tenant, p, plain.clone())));
    let (racing, around) = tokio::join!(racing, around);
    assert_eq!(count(&racing, 200), 16, "every caller with the key gets the one result");
    let purchase_ids: HashSet<&str> = racing.iter().map(|r| r.data()["purchase_id"].as_str().unwrap()).collect();
    assert_eq!(purchase_ids.len(), 1);
    assert_eq!(count(&around, 200), 20);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
    for other in &others {
        assert_eq!(app.balance(&tenant, other, "gems").await, 900);
    }
    app.audit().await;
}

#[tokio::test]
async fn purchases_stuck_on_a_lock_fail_alone_and_the_purchases_beside_them_commit() {
    let app = spawn_app().await;
    let TestPool::Postgres(pool) = &app.pool else {
        // SQLite locks the whole file: see the next test.
        return not_applicable("row locks held outside the host: SQLite locks the whole file");
    };
    let (tenant, _) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let mut players = Vec::new();
    for i in 0..27 {
        players.push(app.login(&tenant, &format!("player-{i}")).await);
    }
    // Something outside the host holds the balance rows of every ninth player.
    let stuck: Vec<bool> = (0..players.len()).map(|i| i % 9 == 4).collect();
    let mut holder = pool.begin().await.unwrap();
    for (player, _) in players.iter().zip(&stuck).filter(|(_, stuck)| **stuck) {
        sqlx::query("SELECT balance FROM balances WHERE user_id = $1::uuid FOR UPDATE")
            .bind(&player.user_id)
            .execute(&mut *holder)
            .await
            .unwrap();
    }
    let body = json!({"catalog_item_id": sword, "currency_code": "gems"});
    let started = std::time::Instant::now();
    let replies = join_all(players.iter().map(|player| async {
        let reply = app.purchase(&tenant, player, body.clone()).await;
        (reply, started.elapsed())
    }))
    .await;
    holder.rollback().await.unwrap();

    for ((reply, took), stuck) in replies.iter().zip(&stuck) {
        if *stuck {
            reply.assert_error(503, "BUSY");
            assert!(reply.headers.get("retry-after").is_some(), "a 503 says when to retry");
        } else {
            reply.assert_ok();
            assert!(*took < std::time::Duration::from_secs(4), "a bystander waited {took:?}");
        }
    }
    for (player, stuck) in players.iter().zip(&stuck) {
        let expected = if *stuck { 1_000 } else { 900 };
        assert_eq!(app.balance(&tenant, player, "gems").await, expected, "nothing partial, nothing lost");
    }
    app.audit().await;
}

/// SQLite has one writer: a process that holds the file's write lock past
/// the host's timeout makes every write wait, and each is answered 503
/// `BUSY` (never a 500, never "database is locked"), with nothing partial;
/// reads go on meanwhile, and writes resume once the lock is gone.
#[tokio::test]
async fn a_store_locked_from_outside_answers_busy_and_resumes() {
    let app = spawn_app().await;
    let TestPool::Sqlite(pool) = &app.pool else {
        return not_applicable("a file locked from outside: PostgreSQL locks rows (see the test above)");
    };
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let body = json!({"catalog_item_id": sword, "currency_code": "gems"});
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *holder).await.unwrap();
    let (bought, wallet) = tokio::join!(app.purchase(&tenant, &player, body.clone()), async {
        app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await
    });
    wallet.assert_ok();
    bought.assert_error(503, "BUSY");
    assert!(bought.headers.get("retry-after").is_some(), "a 503 says when to retry");
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000, "nothing partial");
    app.purchase(&tenant, &player, body).await.assert_ok();
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900);
    app.audit().await;
}
