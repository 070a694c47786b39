//! The catalog as the tenant's admin writes it, and bad input.

use crate::helpers::{As, TestPool, not_applicable, shop, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn items_are_upserted_by_key_and_keep_their_id() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    let body = json!({"name": "Sword", "item_type": "durable", "prices": [{"currency_code": "gems", "amount": 10}]});
    let first = app.put_item(&tenant, "sword", body).await;
    let body = json!({"name": "Great Sword", "item_type": "durable", "category": "weapons", "display_properties": {"rarity": "epic"}});
    let second = app.put_item(&tenant, "sword", body).await;
    assert_eq!(first, second);
    let item = app.call(Method::GET, "/admin/catalog/items/sword", As::Key(&tenant.admin_key), None).await;
    let item = item.assert_ok();
    assert_eq!((item["name"].as_str(), item["category"].as_str()), (Some("Great Sword"), Some("weapons")));
    assert_eq!(item["display_properties"]["rarity"], "epic");
    let list = app.call(Method::GET, "/admin/catalog/items", As::Key(&tenant.admin_key), None).await;
    assert_eq!(list.assert_ok().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_bundle_that_would_contain_itself_is_refused() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable"})).await;
    app.put_item(
        &tenant,
        "a",
        json!({"name": "A", "item_type": "bundle", "contents": [{"item_key": "potion", "quantity": 1}]}),
    )
    .await;
    app.put_item(
        &tenant,
        "b",
        json!({"name": "B", "item_type": "bundle", "contents": [{"item_key": "a", "quantity": 1}]}),
    )
    .await;
    let cycle = json!({"name": "A", "item_type": "bundle", "contents": [{"item_key": "b", "quantity": 1}]});
    let reply = app.call(Method::PUT, "/admin/catalog/items/a", As::Key(&tenant.admin_key), Some(cycle)).await;
    reply.assert_error(400, "VALIDATION_FAILED");
    let direct = json!({"name": "C", "item_type": "bundle", "contents": [{"item_key": "c", "quantity": 1}]});
    let reply = app.call(Method::PUT, "/admin/catalog/items/c", As::Key(&tenant.admin_key), Some(direct)).await;
    reply.assert_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn catalog_writes_naming_unknown_things_are_refused() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    let key = As::Key(&tenant.admin_key);
    let cases = [
        (
            "/admin/catalog/items/x",
            json!({"name": "X", "item_type": "durable", "prices": [{"currency_code": "gold", "amount": 1}]}),
        ),
        (
            "/admin/catalog/items/x",
            json!({"name": "X", "item_type": "durable", "prices": [{"currency_code": "gems", "amount": -1}]}),
        ),
        (
            "/admin/catalog/items/x",
            json!({"name": "X", "item_type": "bundle", "contents": [{"item_key": "ghost", "quantity": 1}]}),
        ),
        (
            "/admin/catalog/items/x",
            json!({"name": "X", "item_type": "durable", "contents": [{"currency_code": "gems", "amount": 1}]}),
        ),
        ("/admin/catalog/items/x", json!({"name": "X", "item_type": "weapon"})),
        ("/admin/catalog/items/x", json!({"item_type": "durable"})),
        ("/admin/catalog/items/bad%20key", json!({"name": "X", "item_type": "durable"})),
        ("/admin/stores/s", json!({"name": "S", "listings": [{"item_key": "ghost"}]})),
        ("/admin/currencies/gold", json!({"name": "Gold", "initial_balance": 10, "max_balance": 5})),
        ("/admin/currencies/gold", json!({"name": "Gold", "initial_balance": -1})),
    ];
    for (path, body) in cases {
        app.call(Method::PUT, path, key, Some(body.clone())).await.assert_error(400, "VALIDATION_FAILED");
    }
    app.call(Method::GET, "/admin/catalog/items/ghost", key, None).await.assert_error(404, "NOT_FOUND");
    app.call(Method::GET, "/admin/stores/ghost", key, None).await.assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn malformed_requests_get_a_stable_code_never_a_500() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 0).await;
    let raw = app
        .http
        .put(format!("{}/admin/currencies/gold", app.address))
        .header("X-Api-Key", &tenant.admin_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
    let huge = "x".repeat(100 * 1024);
    let reply =
        app.call(Method::PUT, "/admin/currencies/gold", As::Key(&tenant.admin_key), Some(json!({"name": huge}))).await;
    reply.assert_error(413, "PAYLOAD_TOO_LARGE");
    app.call(Method::GET, "/no/such/route", As::Nobody, None).await.assert_error(404, "NOT_FOUND");
    app.call(Method::DELETE, "/client/wallet", As::Nobody, None).await.assert_error(405, "METHOD_NOT_ALLOWED");
    let ledger = format!("/server/users/{}/ledger?limit=0", player.identity);
    app.call(Method::GET, &ledger, As::Key(&tenant.server_key), None).await.assert_error(400, "VALIDATION_FAILED");
    let ledger = format!("/server/users/{}/ledger?cursor=nope", player.identity);
    app.call(Method::GET, &ledger, As::Key(&tenant.server_key), None).await.assert_error(400, "VALIDATION_FAILED");
    app.call(Method::GET, "/server/users/nobody/ledger", As::Key(&tenant.server_key), None)
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    app.call(Method::GET, "/healthz", As::Nobody, None).await.assert_ok();
    app.call(Method::GET, "/readyz", As::Nobody, None).await.assert_ok();
}

#[tokio::test]
async fn every_amount_and_duration_the_admin_api_takes_is_bounded() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    app.put_item(&tenant, "sword", json!({"name": "Sword", "item_type": "durable"})).await;
    let key = As::Key(&tenant.admin_key);
    let cases = [
        (
            "/admin/stores/s",
            json!({"name": "S", "listings": [{"item_key": "sword", "max_purchases_per_user": 9_223_372_036_854_775_808_u64}]}),
        ),
        ("/admin/stores/s", json!({"name": "S", "listings": [{"item_key": "sword", "max_purchases_per_user": 0}]})),
        (
            "/admin/catalog/items/x",
            json!({"name": "X", "item_type": "durable", "duration_seconds": 100_000_000_000_i64}),
        ),
        ("/admin/currencies/gold", json!({"name": "Gold", "initial_balance": 10_000_000_000_000_000_i64})),
    ];
    for (path, body) in cases {
        app.call(Method::PUT, path, key, Some(body.clone())).await.assert_error(400, "VALIDATION_FAILED");
    }
    let tenant_id: uuid::Uuid = app.pool.scalar("SELECT id FROM tenants WHERE slug = 'game'").await;
    let path = format!("/operator/tenants/{tenant_id}/limits");
    for limits in [
        json!({"fuel": 10_000_000_000_000_i64}),
        json!({"deadline_ms": 3_600_000}),
        json!({"memory_bytes": 1_i64 << 40}),
        json!({"max_import_calls": 2_000_000_000}),
    ] {
        app.call(Method::PUT, &path, As::Operator(&app.operator_key), Some(limits.clone()))
            .await
            .assert_error(400, "VALIDATION_FAILED");
    }
    let session = "/server/users/someone/sessions";
    app.call(Method::POST, session, As::Key(&tenant.server_key), Some(json!({"ttl_seconds": 100_000_000})))
        .await
        .assert_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn concurrent_bundle_writes_never_make_a_cycle() {
    let app = spawn_app().await;
    let other_host = app.sibling().await;
    let (tenant, _) = shop(&app, 0).await;
    let key = As::Key(&tenant.admin_key);
    app.put_item(&tenant, "potion", json!({"name": "Potion", "item_type": "consumable"})).await;
    let bundle =
        |content: &str| json!({"name": "B", "item_type": "bundle", "contents": [{"item_key": content, "quantity": 1}]});
    for round in 0..10 {
        let (a, b) = (format!("a-{round}"), format!("b-{round}"));
        app.put_item(&tenant, &a, bundle("potion")).await;
        app.put_item(&tenant, &b, bundle("potion")).await;
        let (path_a, path_b) = (format!("/admin/catalog/items/{a}"), format!("/admin/catalog/items/{b}"));
        let (first, second) = tokio::join!(
            app.call(Method::PUT, &path_a, key, Some(bundle(&b))),
            other_host.call(Method::PUT, &path_b, key, Some(bundle(&a))),
        );
        let statuses = [first.status, second.status];
        assert!(statuses.contains(&200) && statuses.contains(&400), "round {round}: {statuses:?}");
    }
}

#[tokio::test]
async fn a_write_that_committed_says_so_even_when_this_host_cannot_reload_its_catalog() {
    let app = spawn_app().await;
    let TestPool::Postgres(pool) = &app.pool else {
        // SQLite's readers never wait for a lock (WAL): a reload cannot be
        // held up, so there is no such failure to answer.
        return not_applicable("a reload held up by a lock: SQLite's readers never wait");
    };
    let (tenant, player) = shop(&app, 100).await;
    // The catalog reload after the write waits on this lock past its timeout.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE stores IN ACCESS EXCLUSIVE MODE").execute(&mut *blocker).await.unwrap();
    let reply = app
        .call(Method::PUT, "/admin/currencies/gold", As::Key(&tenant.admin_key), Some(json!({"name": "Gold"})))
        .await;
    blocker.rollback().await.unwrap();
    assert_eq!(reply.status, 200, "the write is saved: {}", reply.body);
    assert_eq!(reply.data()["code"], "gold");
    assert!(reply.body["warning"].as_str().is_some_and(|w| w.contains("saved")), "{}", reply.body);
    // The host catches up by itself.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let wallet = app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await;
    let codes: Vec<&str> =
        wallet.assert_ok().as_array().unwrap().iter().map(|c| c["currency_code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["gems", "gold"]);
}

#[tokio::test]
async fn bad_input_is_refused_at_the_boundary_in_the_apis_own_terms() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = app
        .put_item(
            &tenant,
            "sword",
            json!({"name": "Sword", "item_type": "durable",
        "prices": [{"currency_code": "gems", "amount": 100}]}),
        )
        .await;
    let admin = As::Key(&tenant.admin_key);
    // NUL characters, which no database keeps, anywhere they could reach it.
    for body in [
        json!({"name": "X", "item_type": "durable", "display_properties": {"a": "nul\u{0}here"}}),
        json!({"name": "X", "item_type": "durable", "display_properties": {"nul\u{0}key": 1}}),
        json!({"name": "X", "item_type": "durable", "icon_url": "https://x/\u{0}"}),
        json!({"name": "X", "item_type": "durable", "category": "a\u{0}b"}),
    ] {
        app.call(Method::PUT, "/admin/catalog/items/x", admin, Some(body)).await.assert_error(400, "VALIDATION_FAILED");
    }
    for path in ["/admin/catalog/items/%00", "/admin/stores/%00", "/server/users/%00/ledger"] {
        app.call(Method::GET, path, As::Key(&tenant.admin_key), None).await.assert_error(400, "VALIDATION_FAILED");
    }
    // Unknown fields are refused, naming the field: a typo never buys at the wrong price.
    let typo = app
        .purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems", "store_ID": "x"}))
        .await;
    typo.assert_error(400, "VALIDATION_FAILED");
    assert!(typo.body["error"]["message"].as_str().unwrap().contains("store_ID"), "{}", typo.body);
    let typo = app
        .purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems", "quantitiy": 5}))
        .await;
    typo.assert_error(400, "VALIDATION_FAILED");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000);
    // Messages speak of the API, not of the code behind it.
    let grant = app.grant(&tenant, &player, json!({"currency_code": "gems", "quantity": 5})).await;
    grant.assert_error(400, "VALIDATION_FAILED");
    let messages = [
        grant.body["error"]["message"].clone(),
        app.purchase(&tenant, &player, json!([1, 2])).await.body["error"]["message"].clone(),
        app.call(Method::PUT, "/admin/currencies/a%20b", admin, Some(json!({"name": "A"}))).await.body["error"]["message"].clone(),
        app.call(Method::PUT, "/admin/catalog/items/b", admin,
            Some(json!({"name": "B", "item_type": "bundle", "contents": [{"item": "sword"}]}))).await.body["error"]["message"].clone(),
        app.call(Method::PUT, "/admin/currencies/c", admin, Some(json!({"name": "C", "recharge": 5}))).await.body["error"]["message"].clone(),
    ];
    for message in &messages {
        let message = message.as_str().expect("a message");
        for internal in ["struct", "enum", "GrantBody", "PurchaseBody", "is_key_char", "|c|", "variant of untagged"] {
            assert!(!message.contains(internal), "{message:?} leaks {internal:?}");
        }
    }
    assert!(messages[0].as_str().unwrap().contains("item_key, quantity"), "{}", messages[0]);
    // The scheme of Authorization is case-insensitive.
    let lower = app
        .http
        .get(format!("{}/client/wallet", app.address))
        .header("X-Api-Key", &tenant.client_key)
        .header("Authorization", format!("bearer {}", player.token))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
}
