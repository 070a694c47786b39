//! One tenant never slows or breaks another. Each test runs one attack of a
//! noisy tenant (or of its clients) beside a quiet tenant, and checks that
//! the quiet tenant's answers stay 200 and that nothing is left behind.

use crate::helpers::{
    As, Player, Tenant, TestApp, backend, priced_item, shop, spawn_app, spawn_app_with, spawn_app_with_runtime,
};
use crate::playfab::{self, title_id};
use economy_tests::database::Backend;
use economy_tests::hostile::{many_instances, tagged};
use futures::StreamExt;
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

/// The quiet tenant's player buys the sword (10 gems), is granted 10 gems
/// and loads the shop, twelve times (within its burst of writes), from
/// `after` on: the slowest of those rounds.
async fn quiet_rounds(app: &TestApp, quiet: &Tenant, player: &Player, sword: &str, after: Duration) -> Duration {
    tokio::time::sleep(after).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..12 {
        let started = std::time::Instant::now();
        app.purchase(quiet, player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
        app.grant(quiet, player, json!({"currency_code": "gems", "amount": 10})).await.assert_ok();
        app.call(Method::GET, "/client/stores/shop", As::Session(&quiet.client_key, player), None).await.assert_ok();
        slowest = slowest.max(started.elapsed());
    }
    slowest
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
    app.put_store(&quiet, "shop", json!({"name": "Shop", "listings": [{"item_key": "sword"}]})).await;
    let noisy = app.create_tenant("other").await;
    app.put_currency(&noisy, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let sleepy = priced_item(&app, &noisy, "sleep", "durable", 1).await;
    app.set_limits(&noisy, json!({"deadline_ms": 1_500})).await;
    crate::modules::activate_hostile(&app, &noisy).await;
    let ids: Vec<String> = (0..150).map(|i| format!("noisy-{i}")).collect();
    let noisy_players = futures::future::join_all(ids.iter().map(|id| app.login(&noisy, id))).await;

    let body = json!({"catalog_item_id": sleepy, "currency_code": "gems"});
    let noise =
        futures::future::join_all(noisy_players.iter().map(|player| app.purchase(&noisy, player, body.clone())));
    let quiet_play = quiet_rounds(&app, &quiet, &quiet_player, &sword, Duration::from_millis(200));
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
    let sale = economy_tests::components::SALE_PRICING;
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
    let sale = economy_tests::components::SALE_PRICING;
    for n in 0..6 {
        assert_eq!(app.upload(&noisy, &tagged(sale, &format!("loop-{n}"))).await.status, 201);
    }
    let refused = app.upload(&noisy, &tagged(sale, "loop-6")).await;
    refused.assert_error(429, "RATE_LIMITED");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(app.upload(&quiet, &tagged(sale, "quiet")).await.status, 201, "another tenant's uploads are its own");
}

/// The noisy tenant's read-only calls: pages of a store of 1,000 listings
/// (a quote each), pages whose one quote sleeps to the deadline, and dry
/// runs of that quote, all in loops. None holds a connection or the
/// writer while its rules run, so the quiet tenant's writes and pages go
/// through as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_pages_of_a_thousand_listings_and_dry_runs_in_a_loop_slow_only_their_own_tenant() {
    let app = spawn_app().await;
    let (quiet, quiet_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 10).await;
    app.put_store(&quiet, "shop", json!({"name": "Shop", "listings": [{"item_key": "sword"}]})).await;
    let noisy = app.create_tenant("other").await;
    app.without_rate_limits(&noisy).await;
    app.put_currency(&noisy, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let keys: Vec<String> = (0..1_000).map(|i| format!("ware-{i}")).collect();
    futures::stream::iter(keys.iter().map(|key| priced_item(&app, &noisy, key, "durable", 1)))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let listings: Vec<_> = keys.iter().map(|key| json!({"item_key": key})).collect();
    app.put_store(&noisy, "big", json!({"name": "Everything", "listings": listings})).await;
    let sleepy = priced_item(&app, &noisy, "sleep", "durable", 1).await;
    app.put_store(&noisy, "sleepy", json!({"name": "Sleepy", "listings": [{"item_key": "sleep"}]})).await;
    app.set_limits(&noisy, json!({"deadline_ms": 1_000})).await;
    let module = crate::modules::sha256(economy_tests::components::HOSTILE);
    crate::modules::activate_hostile(&app, &noisy).await;
    let ids: Vec<String> = (0..6).map(|i| format!("noisy-{i}")).collect();
    let noisy_players = futures::future::join_all(ids.iter().map(|id| app.login(&noisy, id))).await;
    // A thousand quotes that succeed: the module passes its probation
    // (failing, it would be rolled back and sleep no more).
    let page = app.call(Method::GET, "/client/stores/big", As::Session(&noisy.client_key, &noisy_players[0]), None);
    page.await.assert_ok();

    let done = std::sync::atomic::AtomicBool::new(false);
    let in_a_loop = |path: String, player: Option<usize>, body: Option<serde_json::Value>| {
        let (done, app, noisy, players) = (&done, &app, &noisy, &noisy_players);
        async move {
            let mut answers = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (method, who) = match player {
                    Some(player) => (Method::GET, As::Session(&noisy.client_key, &players[player])),
                    None => (Method::POST, As::Key(&noisy.admin_key)),
                };
                let reply = app.call(method, &path, who, body.clone()).await;
                answers.push((reply.status, reply.body["error"]["code"].as_str().map(str::to_owned)));
            }
            answers
        }
    };
    let dry_run = json!({"catalog_item_id": sleepy, "currency_code": "gems"});
    let noise = futures::future::join_all([
        in_a_loop("/client/stores/big".into(), Some(0), None),
        in_a_loop("/client/stores/big".into(), Some(1), None),
        in_a_loop("/client/stores/sleepy".into(), Some(2), None),
        in_a_loop("/client/stores/sleepy".into(), Some(3), None),
        in_a_loop("/client/stores/sleepy".into(), Some(4), None),
        in_a_loop(format!("/admin/modules/{module}/quote"), None, Some(dry_run.clone())),
        in_a_loop(format!("/admin/modules/{module}/quote"), None, Some(dry_run)),
    ]);
    let quiet_play = async {
        let slowest = quiet_rounds(&app, &quiet, &quiet_player, &sword, Duration::from_millis(500)).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        slowest
    };
    let (noise, slowest) = tokio::join!(noise, quiet_play);
    assert!(slowest < Duration::from_secs(1), "the quiet tenant waited {slowest:?}");
    assert_eq!(app.balance(&quiet, &quiet_player, "gems").await, 1_000);
    let answers: Vec<_> = noise.into_iter().flatten().collect();
    assert!(answers.iter().any(|(status, _)| *status == 200), "some of the noisy tenant's pages are served");
    for (status, code) in &answers {
        // Its sleeping quote fails its own calls; past its share, it is busy.
        let expected =
            matches!((status, code.as_deref()), (200, None) | (500, Some("MODULE_FAILED")) | (503, Some("BUSY")));
        assert!(expected, "{status} {code:?}");
    }
    let events = app.call(Method::GET, "/admin/modules/events", As::Key(&quiet.admin_key), None).await;
    assert_eq!(events.assert_ok().as_array().map(Vec::len), Some(0), "{}", events.body);
    app.audit().await;
}

/// The noisy tenant's rules spin to their deadline in every call. Beside
/// another tenant's calls, its calls run on the cores at most its share of
/// each second, then it is told it is busy, and the quiet tenant's calls
/// keep the cores they need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_spin_get_their_tenants_share_of_the_cores_and_no_more() {
    const SHARE_MS: u64 = 100;
    const SPIN_MS: u64 = 200;
    let app = spawn_app_with_runtime(|settings| settings.module_tenant_cpu_ms = Some(SHARE_MS)).await;
    let (quiet, quiet_player) = shop(&app, 1_000_000).await;
    app.without_rate_limits(&quiet).await;
    let sword = priced_item(&app, &quiet, "sword", "durable", 1).await;
    let noisy = app.create_tenant("other").await;
    app.without_rate_limits(&noisy).await;
    app.put_currency(&noisy, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let spinning = priced_item(&app, &noisy, "loop", "durable", 1).await;
    app.set_limits(&noisy, json!({"fuel": 1_000_000_000_000_i64, "deadline_ms": SPIN_MS})).await;
    crate::modules::activate_hostile(&app, &noisy).await;
    let ids: Vec<String> = (0..4).map(|i| format!("noisy-{i}")).collect();
    let noisy_players = futures::future::join_all(ids.iter().map(|id| app.login(&noisy, id))).await;
    // Purchases that succeed: the module passes its probation (failing, it
    // would be rolled back and spin no more).
    let honest = priced_item(&app, &noisy, "honest", "durable", 1).await;
    for _ in 0..20 {
        let bought =
            app.purchase(&noisy, &noisy_players[0], json!({"catalog_item_id": honest, "currency_code": "gems"}));
        bought.await.assert_ok();
    }

    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let noise = futures::future::join_all(noisy_players.iter().map(|player| async {
        let body = json!({"catalog_item_id": spinning, "currency_code": "gems"});
        let mut answers = Vec::new();
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let reply = app.purchase(&noisy, player, body.clone()).await;
            answers.push((reply.status, reply.body["error"]["code"].as_str().map(str::to_owned)));
        }
        answers
    }));
    let quiet_play = async {
        let mut slowest = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(4) {
            let call = std::time::Instant::now();
            let bought =
                app.purchase(&quiet, &quiet_player, json!({"catalog_item_id": sword, "currency_code": "gems"}));
            bought.await.assert_ok();
            slowest = slowest.max(call.elapsed());
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        slowest
    };
    let (noise, slowest) = tokio::join!(noise, quiet_play);
    let elapsed = started.elapsed().as_secs_f64();
    let answers: Vec<_> = noise.into_iter().flatten().collect();
    let spun = answers.iter().filter(|(status, _)| *status == 500).count();
    let busy = answers.iter().filter(|(status, _)| *status == 503).count();
    for (status, code) in &answers {
        let expected = matches!((status, code.as_deref()), (500, Some("MODULE_FAILED")) | (503, Some("BUSY")));
        assert!(expected, "{status} {code:?}");
    }
    // Unchecked, both of the server's threads would spin all along, a call
    // every 200 ms each (45 calls in 4.7 s, measured). Its share allows
    // what it saved up (a second's worth), what came back while it ran,
    // and what its players had in flight when it ran out: 7 calls of 200 ms
    // on the cores; more when a loaded machine gives the spinning threads
    // less than their wall-clock time, so the bound is two fifths of
    // unchecked.
    let unchecked = 2.0 * elapsed * 1_000.0 / SPIN_MS as f64;
    assert!(spun as f64 <= unchecked * 0.4, "{spun} calls spun {SPIN_MS} ms each in {elapsed:.1} s");
    assert!(busy > 0, "past its share, the noisy tenant is told it is busy");
    // Its first calls, entered before it owed anything, hold the server's
    // two threads for 200 ms each: the quiet tenant waits that much at most
    // (with time to spare for a machine busy with other tests).
    assert!(slowest < Duration::from_secs(2), "the quiet tenant waited {slowest:?}");
    let events = app.call(Method::GET, "/admin/modules/events", As::Key(&quiet.admin_key), None).await;
    assert_eq!(events.assert_ok().as_array().map(Vec::len), Some(0), "{}", events.body);
}
