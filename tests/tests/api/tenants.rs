//! Tenants whose data lives in a database of their own.

use crate::helpers::{As, Tenant, TestApp, priced_item, shop, spawn_app};
use economy_tests::cluster::Cluster;
use economy_tests::database::{TestDatabase, TestPool};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;
use std::time::{Duration, Instant};

impl TestApp {
    /// Creates a tenant whose data lives in the database at `database_url`.
    pub async fn create_tenant_in(&self, slug: &str, database_url: &str) -> Tenant {
        let body = json!({"slug": slug, "name": slug, "database_url": database_url});
        let reply = self.call(Method::POST, "/operator/tenants", As::Operator(&self.operator_key), Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert!(!reply.body.to_string().contains(database_url), "the URL is never shown again");
        let text = |field: &str| reply.data()[field].as_str().expect("a key").to_owned();
        Tenant {
            id: text("id"),
            client_key: text("client_key"),
            server_key: text("server_key"),
            admin_key: text("admin_key"),
        }
    }
}

#[tokio::test]
async fn a_tenants_data_lives_in_its_own_database_migrated_on_first_use() {
    let cluster = Cluster::start();
    let app = spawn_app().await;
    let tenant = app.create_tenant_in("own", &cluster.url()).await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 100})).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 30).await;
    let player = app.login(&tenant, "player-1").await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
    assert_eq!(app.balance(&tenant, &player, "gems").await, 70);

    let mut own = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    let purchases: i64 = sqlx::query_scalar("SELECT count(*) FROM purchases").fetch_one(&mut own).await.unwrap();
    assert_eq!(purchases, 1, "the purchase is in the tenant's database");
    let here: i64 = app.pool.scalar("SELECT count(*) FROM purchases").await;
    assert_eq!(here, 0, "and not in the default one");
    let keys: i64 = app.pool.scalar("SELECT count(*) FROM api_keys").await;
    assert_eq!(keys, 3, "the control plane stays in the default database");
    let invalid = json!({"slug": "bad", "name": "Bad", "database_url": "mysql://somewhere"});
    app.call(Method::POST, "/operator/tenants", As::Operator(&app.operator_key), Some(invalid))
        .await
        .assert_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_small_studios_tenant_can_live_in_a_sqlite_file_of_its_own() {
    let file = TestDatabase::sqlite("tenant_file");
    let app = spawn_app().await;
    let (neighbour, neighbour_player) = shop(&app, 1_000).await;
    let tenant = app.create_tenant_in("small", &file.url).await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 100})).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 30).await;
    let player = app.login(&tenant, "player-1").await;
    let buy = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": "first"});
    app.purchase(&tenant, &player, buy.clone()).await.assert_ok();
    app.purchase(&tenant, &player, buy).await.assert_ok();
    assert_eq!(app.balance(&tenant, &player, "gems").await, 70, "the replay charged nothing");
    // The file's ids mean nothing to the tenant beside it.
    app.purchase(&neighbour, &neighbour_player, json!({"catalog_item_id": sword, "currency_code": "gems"}))
        .await
        .assert_error(404, "NOT_FOUND");

    let own = TestPool::connect(&file.url).await;
    let purchases: i64 = own.scalar("SELECT count(*) FROM purchases").await;
    assert_eq!(purchases, 1, "the purchase is in the tenant's file");
    let here: i64 = app.pool.scalar("SELECT count(*) FROM purchases").await;
    assert_eq!(here, 0, "and not in the default database");
    // Memory is not a file: each connection would see a database of its own,
    // and a restart would lose them all.
    for url in ["sqlite::memory:", "sqlite://shop.db?mode=memory"] {
        let body = json!({"slug": "memory", "name": "Memory", "database_url": url});
        app.call(Method::POST, "/operator/tenants", As::Operator(&app.operator_key), Some(body))
            .await
            .assert_error(400, "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn a_tenant_whose_database_is_down_answers_503_at_once_and_recovers_with_nothing_lost() {
    let cluster = Cluster::start();
    let app = spawn_app().await;
    let (bystander, bystander_player) = shop(&app, 1_000).await;
    let bystander_sword = priced_item(&app, &bystander, "sword", "durable", 10).await;
    let tenant = app.create_tenant_in("own", &cluster.url()).await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 10).await;
    let player = app.login(&tenant, "player-1").await;
    let buy = json!({"catalog_item_id": sword, "currency_code": "gems"});
    let mut acknowledged = 0;
    for _ in 0..5 {
        app.purchase(&tenant, &player, buy.clone()).await.assert_ok();
        acknowledged += 1;
    }

    cluster.stop();
    let started = Instant::now();
    let down = app.purchase(&tenant, &player, buy.clone()).await;
    down.assert_error(503, "TENANT_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(1_500), "answered in {:?}", started.elapsed());
    assert_eq!(down.headers["retry-after"], "1");
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None)
        .await
        .assert_error(503, "TENANT_UNAVAILABLE");
    // The other tenants are served as before.
    app.purchase(&bystander, &bystander_player, json!({"catalog_item_id": bystander_sword, "currency_code": "gems"}))
        .await
        .assert_ok();
    let ready = app.call(Method::GET, "/readyz", As::Nobody, None).await;
    assert_eq!(ready.assert_ok()["unavailable_tenant_count"], 1, "{}", ready.body);
    assert!(ready.data().get("unavailable_tenants").is_none(), "only the operator sees which: {}", ready.body);
    let ready = app.call(Method::GET, "/readyz", As::Operator(&app.operator_key), None).await;
    assert_eq!(ready.assert_ok()["unavailable_tenants"][0]["slug"], "own", "{}", ready.body);
    app.call(Method::GET, "/readyz", As::Operator("not-the-key"), None).await.assert_error(401, "UNAUTHORIZED");

    cluster.resume();
    let recovered = async {
        loop {
            let reply = app.purchase(&tenant, &player, buy.clone()).await;
            if reply.status == 200 {
                break;
            }
            reply.assert_error(503, "TENANT_UNAVAILABLE");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), recovered).await.expect("the tenant recovers by itself");
    acknowledged += 1;
    // Once it answers, it answers every request: the connections opened
    // before the outage are tested and replaced before a request gets one.
    for _ in 0..20 {
        app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await.assert_ok();
        app.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, &player), None).await.assert_ok();
    }
    app.purchase(&tenant, &player, buy.clone()).await.assert_ok();
    acknowledged += 1;
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000 - 10 * acknowledged, "nothing acknowledged was lost");
    assert_eq!(app.quantity(&tenant, &player, &sword).await, acknowledged);
    let ready = app.call(Method::GET, "/readyz", As::Operator(&app.operator_key), None).await;
    assert_eq!(ready.assert_ok()["unavailable_tenants"], json!([]));
    assert_eq!(ready.data()["unavailable_tenant_count"], 0);
}

/// A database restarted between two requests: the first request after it
/// is served, on a connection tested and replaced before it was handed out.
#[tokio::test]
async fn a_tenant_whose_database_restarted_is_served_by_its_next_request() {
    let cluster = Cluster::start();
    let app = spawn_app().await;
    let tenant = app.create_tenant_in("own", &cluster.url()).await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 10).await;
    let player = app.login(&tenant, "player-1").await;
    let wallet = || app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None);
    // Every connection of the tenant's pool open.
    for reply in futures::future::join_all((0..16).map(|_| wallet())).await {
        reply.assert_ok();
    }
    cluster.stop();
    cluster.resume();
    wallet().await.assert_ok();
    app.purchase(&tenant, &player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
    for _ in 0..10 {
        wallet().await.assert_ok();
    }
}
