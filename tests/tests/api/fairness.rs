//! One tenant never slows or breaks another. Each test runs one attack of a
//! noisy tenant (or of its clients) beside a quiet tenant, and checks that
//! the quiet tenant's answers stay 200 and that nothing is left behind.

use crate::helpers::{As, TestApp, backend, priced_item, shop, spawn_app, spawn_app_with};
use crate::playfab::{self, title_id};
use economy_tests::database::Backend;
use economy_tests::hostile::{many_instances, tagged};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends `request` on a fresh connection and hangs up `after` later,
/// without reading the answer: a client that goes away mid-request.
async fn send_and_hang_up(app: &TestApp, request: &str, after: Duration) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("the server accepts");
    stream.write_all(request.as_bytes()).await.expect("the request is sent");
    // Microseconds: a blocking wait, so the hang-up lands mid-request.
    std::thread::sleep(after);
    drop(stream);
}

/// Connections of the test's database left inside a transaction.
async fn idle_in_transaction(app: &TestApp) -> i64 {
    app.pool
        .scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .await
}

// Two threads: the server runs while the client waits to hang up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_mid_request_leave_no_transaction_open() {
    let app = spawn_app().await;
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 10).await;
    let _noisy = app.create_tenant("other").await;
    let title = title_id(&app, "other").await;
    // Logins need no key, only the title id: anyone can send them. Hung up
    // 0 to 3 ms after sending, some land mid-write.
    for i in 0..300u64 {
        let body = json!({"TitleId": title, "CustomId": format!("{i:032x}"), "CreateAccount": true}).to_string();
        let request = format!(
            "POST /Client/LoginWithCustomID HTTP/1.1\r\nhost: shop\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        send_and_hang_up(&app, &request, Duration::from_micros(i * 10)).await;
    }
    // Every tenant's writes go through after it: a new login's ticket works
    // at once, and the quiet tenant buys and is granted.
    for i in 0..20u64 {
        let login = playfab::login(&app, &title, &format!("{:032x}", 1_000 + i), true).await;
        let ticket = playfab::data(&login)["SessionTicket"].as_str().expect("a ticket").to_owned();
        let inventory =
            playfab::post(&app, "/Client/GetUserInventory", &[("X-Authorization", &ticket)], json!({})).await;
        playfab::data(&inventory);
    }
    app.purchase(&quiet, &quiet_player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
    app.grant(&quiet, &quiet_player, json!({"currency_code": "gems", "amount": 5})).await.assert_ok();
    assert_eq!(app.balance(&quiet, &quiet_player, "gems").await, 995);
    // SQLite's one writer is shared by every tenant in the file: the writes
    // above are the check. PostgreSQL's pooled connections are checked too.
    if backend() == Backend::Postgres {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(idle_in_transaction(&app).await, 0, "connections left inside a transaction");
    }
    app.audit().await;
}

#[tokio::test]
async fn a_component_past_a_per_component_cap_is_refused_at_upload_naming_it() {
    let app = spawn_app().await;
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 10).await;
    let noisy = app.create_tenant("other").await;
    for (count, cap) in [(250, "250 core module instances"), (3, "3 Wasm linear memories")] {
        let refused = app.upload(&noisy, &many_instances(count)).await;
        refused.assert_error(400, "INVALID_MODULE");
        let message = refused.body["error"]["message"].as_str().expect("a message");
        assert!(message.contains(cap) && message.contains("configured maximum"), "{message}");
    }
    // Within every cap, it is refused for what it is not: an economy component.
    let refused = app.upload(&noisy, &many_instances(1)).await;
    refused.assert_error(400, "INVALID_MODULE");
    app.purchase(&quiet, &quiet_player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
}

/// The noisy tenant's module sleeps to its deadline in every call, and its
/// clients send far more calls than its share of the host's instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_sleeps_to_its_deadline_slows_only_its_own_tenant() {
    let app = spawn_app().await;
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 10).await;
    let noisy = app.create_tenant("other").await;
    app.put_currency(&noisy, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let sleepy = priced_item(&app, &noisy, "sleep", "durable", 1).await;
    let noisy_id: uuid::Uuid = app.pool.scalar("SELECT id FROM tenants WHERE slug = 'other'").await;
    let limits = json!({"deadline_ms": 1_500});
    let path = format!("/operator/tenants/{noisy_id}/limits");
    app.call(Method::PUT, &path, As::Operator(&app.operator_key), Some(limits)).await.assert_ok();
    crate::modules::activate_hostile(&app, &noisy).await;
    let ids: Vec<String> = (0..150).map(|i| format!("noisy-{i}")).collect();
    let noisy_players = futures::future::join_all(ids.iter().map(|id| app.login(&noisy, id))).await;

    let body = json!({"catalog_item_id": sleepy, "currency_code": "gems"});
    let noise =
        futures::future::join_all(noisy_players.iter().map(|player| app.purchase(&noisy, player, body.clone())));
    let quiet_play = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut slowest = Duration::ZERO;
        // Within the quiet player's burst of writes (a quarter of a minute's worth).
        for _ in 0..12 {
            let started = std::time::Instant::now();
            let bought =
                app.purchase(&quiet, &quiet_player, json!({"catalog_item_id": sword, "currency_code": "gems"}));
            bought.await.assert_ok();
            let path = format!("/server/users/{}/grants", quiet_player.identity);
            let granted = app.call(
                Method::POST,
                &path,
                As::Key(&quiet.server_key),
                Some(json!({"currency_code": "gems", "amount": 10})),
            );
            granted.await.assert_ok();
            slowest = slowest.max(started.elapsed());
        }
        slowest
    };
    let (noise, slowest) = tokio::join!(noise, quiet_play);
    assert!(slowest < Duration::from_millis(500), "the quiet tenant waited {slowest:?}");
    for reply in &noise {
        let code = reply.body["error"]["code"].as_str();
        assert!(matches!((reply.status, code), (500, Some("MODULE_FAILED")) | (503, Some("BUSY"))), "{}", reply.body);
    }
    let busy = noise.iter().filter(|reply| reply.status == 503).count();
    assert!(busy > 0, "past its share, the noisy tenant is told it is busy");
    assert_eq!(app.balance(&quiet, &quiet_player, "gems").await, 1_000);
    // The quiet tenant's module was never blamed for anything.
    let events = app.call(Method::GET, "/admin/modules/events", As::Key(&quiet.admin_key), None).await;
    assert_eq!(events.assert_ok().as_array().map(Vec::len), Some(0), "{}", events.body);
    app.audit().await;
}

#[tokio::test]
async fn a_player_or_a_key_over_its_rate_limit_is_refused_in_each_dialect_and_nobody_else_is() {
    let app = spawn_app().await;
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 1).await;
    let noisy = app.create_tenant("other").await;
    app.put_currency(&noisy, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let noisy_sword = priced_item(&app, &noisy, "sword", "durable", 1).await;
    app.put_store(&noisy, "shop", json!({"name": "Shop", "listings": [{"item_key": "sword"}]})).await;
    // Eight writes a minute: a burst of two.
    let limits = json!({"rate_limits": {"player_writes_per_minute": 8, "key_requests_per_second": 1_000}});
    app.call(Method::PUT, "/admin/settings", As::Key(&noisy.admin_key), Some(limits)).await.assert_ok();
    let (bot, human) = (app.login(&noisy, "bot").await, app.login(&noisy, "human").await);
    let buy = json!({"catalog_item_id": noisy_sword, "currency_code": "gems"});
    let mut refused = 0;
    for _ in 0..6 {
        let reply = app.purchase(&noisy, &bot, buy.clone()).await;
        if reply.status == 429 {
            reply.assert_error(429, "RATE_LIMITED");
            let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=8).contains(&retry_after), "{retry_after}");
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "two in a burst, then at eight a minute");
    // PlayFab's and Sverse's routes count on the same player, in their own shapes.
    let title = title_id(&app, "other").await;
    let ticket = format!("{title}.{}", bot.token);
    let body = json!({"Item": {"Id": noisy_sword}, "Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 1}]});
    let playfab = playfab::post(&app, "/Inventory/PurchaseInventoryItems", &[("X-EntityToken", &ticket)], body).await;
    assert_eq!((playfab.status, &playfab.body["errorCode"]), (429, &json!(1199)), "{}", playfab.body);
    assert_eq!(playfab.body["error"], "APIClientRequestRateLimitExceeded");
    assert!(playfab.headers.contains_key("retry-after"));
    let shop_items = app.call(Method::GET, "/api/private/shop-items", As::Key(&noisy.server_key), None).await;
    let shop_item = shop_items.body["data"]["items"][0]["id"].clone();
    let path = format!("/api/private/users/{}/purchases", bot.identity);
    let sverse = json!({"shopItemId": shop_item, "quantity": 1, "idempotencyKey": "bot-1"});
    let sverse = app.call(Method::POST, &path, As::Key(&noisy.server_key), Some(sverse)).await;
    assert_eq!((sverse.status, &sverse.body["error"]), (429, &json!(true)), "{}", sverse.body);
    assert!(sverse.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Another player of the tenant, and another tenant, are not slowed.
    app.purchase(&noisy, &human, buy.clone()).await.assert_ok();
    for _ in 0..10 {
        let quiet_buy = json!({"catalog_item_id": sword, "currency_code": "gems"});
        app.purchase(&quiet, &quiet_player, quiet_buy).await.assert_ok();
    }

    // A key over its limit: every request made with it, and only with it.
    let limits = json!({"rate_limits": {"player_writes_per_minute": 8, "key_requests_per_second": 3}});
    app.call(Method::PUT, "/admin/settings", As::Key(&noisy.admin_key), Some(limits)).await.assert_ok();
    let reads = futures::future::join_all(
        (0..8).map(|_| app.call(Method::GET, "/client/wallet", As::Session(&noisy.client_key, &human), None)),
    )
    .await;
    let limited = reads.iter().filter(|reply| reply.status == 429).count();
    assert!((4..=5).contains(&limited), "{limited} of 8 refused past a burst of 3");
    app.call(Method::GET, "/admin/settings", As::Key(&noisy.admin_key), None).await.assert_ok();
    app.call(Method::GET, "/client/wallet", As::Session(&quiet.client_key, &quiet_player), None).await.assert_ok();

    // Off, for a load test.
    let off = json!({"rate_limits": null});
    app.call(Method::PUT, "/admin/settings", As::Key(&noisy.admin_key), Some(off)).await.assert_ok();
    for _ in 0..5 {
        app.purchase(&noisy, &bot, buy.clone()).await.assert_ok();
    }
}

/// A loop of uploads that differ in one custom section: each is a module of
/// its own to store, so a tenant keeps at most its quota of them.
#[tokio::test]
async fn uploads_stop_at_the_tenants_quota_and_deleting_one_makes_room() {
    // As fast as the host lets one tenant upload: past its quota, not its rate.
    let app = spawn_app_with(|settings| settings.module_uploads_per_minute = 100_000).await;
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 10).await;
    let noisy = app.create_tenant("other").await;
    let sale = crate::modules::SALE_PRICING;
    let mut kept = Vec::new();
    for n in 0..100 {
        let uploaded = app.upload(&noisy, &tagged(sale, &format!("loop-{n}"))).await;
        assert_eq!(uploaded.status, 201, "upload {n}: {}", uploaded.body);
        kept.push(uploaded.data()["sha256"].as_str().unwrap().to_owned());
    }
    let refused = app.upload(&noisy, &tagged(sale, "one-more")).await;
    refused.assert_error(409, "QUOTA_EXCEEDED");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("DELETE /admin/modules/"));
    // The quota is the tenant's own: another tenant uploads as before.
    assert_eq!(app.upload(&quiet, &tagged(sale, "quiet")).await.status, 201);

    let admin = As::Key(&noisy.admin_key);
    let activated = app.call(Method::PUT, "/admin/modules/active", admin, Some(json!({"sha256": kept[0]}))).await;
    activated.assert_ok();
    let path = |sha: &str| format!("/admin/modules/{sha}");
    app.call(Method::DELETE, &path(&kept[0]), admin, None).await.assert_error(409, "CONFLICT");
    let deleted = app.call(Method::DELETE, &path(&kept[1]), admin, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    app.call(Method::DELETE, &path(&kept[1]), admin, None).await.assert_error(404, "NOT_FOUND");
    // Another tenant's module is not found, and stays.
    let theirs = app.upload(&quiet, &tagged(sale, "theirs")).await.data()["sha256"].as_str().unwrap().to_owned();
    app.call(Method::DELETE, &path(&theirs), admin, None).await.assert_error(404, "NOT_FOUND");
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&quiet.admin_key), None).await;
    assert!(listed.assert_ok().as_array().unwrap().iter().any(|module| module["sha256"] == theirs.as_str()));
    assert_eq!(app.upload(&noisy, &tagged(sale, "one-more")).await.status, 201, "room was made");
    app.purchase(&quiet, &quiet_player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
}

/// The noisy tenant's writes wait on rows something outside the host keeps
/// locked, each holding a connection of the database both tenants share:
/// they hold at most the noisy tenant's share, and the quiet tenant finds
/// the rest free.
#[tokio::test]
async fn a_tenant_whose_writes_hold_connections_takes_only_its_share_of_the_database() {
    let app = spawn_app().await;
    let crate::helpers::TestPool::Postgres(pool) = &app.pool else {
        return crate::helpers::not_applicable("rows locked from outside: SQLite locks the whole file");
    };
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 10).await;
    let noisy = app.create_tenant("other").await;
    app.put_currency(&noisy, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let ids: Vec<String> = (0..24).map(|i| format!("noisy-{i}")).collect();
    let players = futures::future::join_all(ids.iter().map(|id| app.login(&noisy, id))).await;
    let mut holder = pool.begin().await.unwrap();
    for player in &players {
        sqlx::query("SELECT balance FROM balances WHERE user_id = $1::uuid FOR UPDATE")
            .bind(&player.user_id)
            .execute(&mut *holder)
            .await
            .unwrap();
    }
    let grants = futures::future::join_all(
        players.iter().map(|player| app.grant(&noisy, player, json!({"currency_code": "gems", "amount": 1}))),
    );
    let quiet_play = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        for _ in 0..5 {
            app.purchase(&quiet, &quiet_player, json!({"catalog_item_id": sword, "currency_code": "gems"}))
                .await
                .assert_ok();
            app.call(Method::GET, "/client/wallet", As::Session(&quiet.client_key, &quiet_player), None)
                .await
                .assert_ok();
        }
        let took = started.elapsed();
        sqlx::query("SELECT 1").execute(&mut *holder).await.unwrap();
        holder.rollback().await.unwrap();
        took
    };
    let (grants, took) = tokio::join!(grants, quiet_play);
    assert!(took < Duration::from_secs(2), "the quiet tenant waited {took:?}");
    for reply in &grants {
        assert!(matches!(reply.status, 200 | 503), "{}", reply.body);
    }
    app.audit().await;
}

/// Each upload costs a compilation: a tenant uploads at the host's rate
/// (12 a minute, in bursts of 6), whatever its own limits.
#[tokio::test]
async fn uploads_in_a_loop_are_held_to_the_hosts_rate_for_one_tenant() {
    let app = spawn_app().await;
    let noisy = app.create_tenant("other").await;
    let quiet = app.create_tenant("game").await;
    let off = json!({"rate_limits": null});
    app.call(Method::PUT, "/admin/settings", As::Key(&noisy.admin_key), Some(off)).await.assert_ok();
    let sale = crate::modules::SALE_PRICING;
    for n in 0..6 {
        assert_eq!(app.upload(&noisy, &tagged(sale, &format!("loop-{n}"))).await.status, 201);
    }
    let refused = app.upload(&noisy, &tagged(sale, "loop-6")).await;
    refused.assert_error(429, "RATE_LIMITED");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(app.upload(&quiet, &tagged(sale, "quiet")).await.status, 201, "another tenant's uploads are its own");
}
