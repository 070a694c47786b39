//! What a tenant's admin sees of its modules at work: what an upload
//! costs, a dry run before activating, the failures of live calls, and the
//! automatic rollback of a new module that keeps failing.

use crate::helpers::{As, Reply, Tenant, TestApp, priced_item, shop, spawn_app};
use crate::modules::{item_on_sale, sha256};
use economy_tests::components::{HOSTILE, SALE_PRICING};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

impl TestApp {
    async fn dry_run(&self, tenant: &Tenant, sha256: &str, body: Value) -> Reply {
        let path = format!("/admin/modules/{sha256}/quote");
        self.call(Method::POST, &path, As::Key(&tenant.admin_key), Some(body)).await
    }

    async fn module_events(&self, tenant: &Tenant) -> Vec<Value> {
        let events = self.call(Method::GET, "/admin/modules/events", As::Key(&tenant.admin_key), None).await;
        events.assert_ok().as_array().expect("a list").clone()
    }

    /// The tenant's module events once `enough` holds of them (they are
    /// written after the request that caused them), within five seconds.
    async fn module_events_until(&self, tenant: &Tenant, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..50 {
            let events = self.module_events(tenant).await;
            if enough(&events) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the events never came: {:?}", self.module_events(tenant).await);
    }

    /// The tenant's events once one is a rollback, and that rollback.
    async fn rolled_back(&self, tenant: &Tenant) -> (Vec<Value>, Value) {
        let is_rollback = |event: &Value| event["kind"] == "rolled_back";
        let events = self.module_events_until(tenant, |events| events.iter().any(is_rollback)).await;
        let rollback = events.iter().find(|event| is_rollback(event)).cloned().expect("a rollback");
        (events, rollback)
    }

    /// The module the tenant runs: exactly one of its list is active.
    async fn active_module(&self, tenant: &Tenant) -> Value {
        let listed = self.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
        let active: Vec<Value> =
            listed.assert_ok().as_array().expect("a list").iter().filter(|m| m["active"] == true).cloned().collect();
        assert_eq!(active.len(), 1, "{}", listed.body);
        active[0].clone()
    }
}

#[tokio::test]
async fn an_upload_answers_its_size_the_limit_and_what_a_sample_quote_cost() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let bare = app.upload(&tenant, SALE_PRICING).await;
    assert_eq!(bare.status, 201, "{}", bare.body);
    assert_eq!(bare.data()["size"], SALE_PRICING.len());
    assert_eq!(bare.data()["limit_bytes"], 256 * 1024);
    assert!(bare.data()["sample"].is_null(), "no item has a price to quote: {}", bare.body);

    item_on_sale(&app, &tenant, "sword").await;
    priced_item(&app, &tenant, "axe", "durable", 40).await;
    let uploaded = app.upload(&tenant, SALE_PRICING).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let sample = &uploaded.data()["sample"];
    assert_eq!(sample["operation"], "quote");
    assert_eq!((&sample["item_key"], &sample["currency_code"]), (&json!("axe"), &json!("gems")), "{sample}");
    assert_eq!(sample["module_sha256"], sha256(SALE_PRICING));
    assert_eq!(sample["quote"], json!({"unit_price": 40, "total": 40, "purchasable": true}));
    assert!(sample["error"].is_null());
    assert!(sample["fuel_used"].as_u64().is_some_and(|fuel| fuel > 0), "{sample}");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000, "the sample bought nothing");
}

#[tokio::test]
async fn a_dry_run_quotes_with_a_module_before_it_is_active_and_writes_nothing() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = item_on_sale(&app, &tenant, "sword").await;
    let sale = app.upload(&tenant, SALE_PRICING).await.assert_ok()["sha256"].as_str().unwrap().to_owned();

    let quoted =
        app.dry_run(&tenant, &sale, json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": 3})).await;
    let run = quoted.assert_ok();
    assert_eq!(run["quote"], json!({"unit_price": 70, "total": 210, "purchasable": true}), "{run}");
    assert!(run["fuel_used"].as_u64().is_some_and(|fuel| fuel > 0));
    assert_eq!(app.price_of(&tenant, &player, &sword).await, 100, "the built-in rules still run");
    let for_player = json!({"catalog_item_id": sword, "currency_code": "gems", "identity": player.identity});
    let quoted = app.dry_run(&tenant, &sale, for_player).await;
    assert_eq!(quoted.assert_ok()["quote"]["unit_price"], 70);

    // The rules' refusals and the module's failures are answers, not errors.
    let no_price = app.dry_run(&tenant, &sale, json!({"catalog_item_id": sword, "currency_code": "coins"})).await;
    assert_eq!(no_price.assert_ok()["error"]["code"], "NO_PRICE", "{}", no_price.body);
    assert!(no_price.data()["quote"].is_null());
    let trap = priced_item(&app, &tenant, "trap", "consumable", 10).await;
    let hostile = app.upload(&tenant, HOSTILE).await.assert_ok()["sha256"].as_str().unwrap().to_owned();
    let failed = app.dry_run(&tenant, &hostile, json!({"catalog_item_id": trap, "currency_code": "gems"})).await;
    let error = &failed.assert_ok()["error"];
    assert_eq!(error["code"], "MODULE_FAILED");
    assert!(error["message"].as_str().unwrap().contains("panics on purpose"), "{error}");
    // A quote changes nothing: a module that writes in one is stopped there.
    let mint = priced_item(&app, &tenant, "mint", "consumable", 10).await;
    let writes = app.dry_run(&tenant, &hostile, json!({"catalog_item_id": mint, "currency_code": "gems"})).await;
    let error = &writes.assert_ok()["error"];
    assert_eq!(error["code"], "MODULE_FAILED");
    assert!(
        error["message"].as_str().unwrap().contains("a quote changes nothing, but the module called wallet.credit")
    );
    assert!(app.module_events(&tenant).await.is_empty(), "a dry run is not a live failure");

    // Nothing but the tenant's own modules, and valid input.
    let other = app.create_tenant("other-game").await;
    app.dry_run(&other, &sale, json!({"catalog_item_id": sword, "currency_code": "gems"}))
        .await
        .assert_error(404, "NOT_FOUND");
    app.dry_run(&tenant, "abc", json!({"catalog_item_id": sword, "currency_code": "gems"}))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    app.dry_run(&tenant, &sale, json!({"catalog_item_id": sword, "currency_code": "gems", "identity": "nobody"}))
        .await
        .assert_error(404, "NOT_FOUND");
    app.dry_run(&tenant, &sale, json!({"catalog_item_id": sword, "currency_code": "gems", "quantity": 0}))
        .await
        .assert_error(400, "VALIDATION_FAILED");
    let path = format!("/admin/modules/{sale}/quote");
    let body = json!({"catalog_item_id": sword, "currency_code": "gems"});
    app.call(Method::POST, &path, As::Key(&tenant.server_key), Some(body)).await.assert_error(403, "FORBIDDEN");
    assert_eq!(app.balance(&tenant, &player, "gems").await, 900, "only the live purchase spent");
}

#[tokio::test]
async fn a_live_failure_is_shown_to_the_tenants_admin_and_no_one_else() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let trap = priced_item(&app, &tenant, "trap", "consumable", 10).await;
    let hostile = app.activate(&tenant, HOSTILE).await;
    let other = app.create_tenant("other-game").await;

    app.purchase(&tenant, &player, json!({"catalog_item_id": trap, "currency_code": "gems"}))
        .await
        .assert_error(500, "MODULE_FAILED");
    let events = app.module_events_until(&tenant, |events| !events.is_empty()).await;
    let event = &events[0];
    assert_eq!(event["kind"], "failure");
    assert_eq!(event["module_sha256"], hostile);
    assert_eq!(event["operation"], "purchase");
    assert!(event["reason"].as_str().unwrap().contains("panics on purpose"), "{event}");
    assert!(event["created_at"].is_string());
    assert!(app.module_events(&other).await.is_empty(), "another tenant sees nothing of it");
    app.call(Method::GET, "/admin/modules/events", As::Key(&tenant.server_key), None)
        .await
        .assert_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn a_new_module_that_fails_most_of_its_first_calls_is_rolled_back_to_the_one_before() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = item_on_sale(&app, &tenant, "sword").await;
    let trap = priced_item(&app, &tenant, "trap", "consumable", 10).await;
    let sale = app.activate(&tenant, SALE_PRICING).await;
    assert_eq!(app.price_of(&tenant, &player, &sword).await, 70);
    let hostile = app.activate(&tenant, HOSTILE).await;
    assert_eq!(app.price_of(&tenant, &player, &sword).await, 100, "the new module runs");

    // One good call, then failures: the eleventh failure of the first
    // twenty calls is a majority.
    for _ in 0..11 {
        app.purchase(&tenant, &player, json!({"catalog_item_id": trap, "currency_code": "gems"}))
            .await
            .assert_error(500, "MODULE_FAILED");
    }
    let (_, rolled_back) = app.rolled_back(&tenant).await;
    assert_eq!(rolled_back["module_sha256"], hostile);
    let reason = rolled_back["reason"].as_str().unwrap();
    assert!(reason.contains("failed 11 of its first 12 calls") && reason.contains(&sale), "{reason}");
    assert_eq!(app.active_module(&tenant).await["sha256"], sale, "the module before it runs again");
    assert_eq!(app.price_of(&tenant, &player, &sword).await, 70);
    // Another host reads the same from the database.
    let sibling = app.sibling().await;
    assert_eq!(sibling.price_of(&tenant, &player, &trap).await, 10);
}

#[tokio::test]
async fn a_new_module_with_few_failures_stays_active() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let trap = priced_item(&app, &tenant, "trap", "consumable", 10).await;
    let honest = priced_item(&app, &tenant, "honest", "consumable", 10).await;
    app.without_rate_limits(&tenant).await;
    let hostile = app.activate(&tenant, HOSTILE).await;
    for round in 0..20 {
        let item = if round % 2 == 0 { &trap } else { &honest };
        app.purchase(&tenant, &player, json!({"catalog_item_id": item, "currency_code": "gems"})).await;
    }
    // Past its probation, failures no longer roll it back.
    for _ in 0..15 {
        app.purchase(&tenant, &player, json!({"catalog_item_id": trap, "currency_code": "gems"}))
            .await
            .assert_error(500, "MODULE_FAILED");
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.active_module(&tenant).await["sha256"], hostile);
    assert!(app.module_events(&tenant).await.iter().all(|e| e["kind"] == "failure"));
}

#[tokio::test]
async fn a_new_module_whose_answers_the_host_refuses_is_rolled_back_to_the_builtin_rules() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let mint = priced_item(&app, &tenant, "mint", "consumable", 10).await;
    let hostile = app.activate(&tenant, HOSTILE).await;
    // Each answer is counted once, and its refusal once as a failure.
    for _ in 0..11 {
        app.purchase(&tenant, &player, json!({"catalog_item_id": mint, "currency_code": "gems"}))
            .await
            .assert_error(500, "MODULE_FAILED");
    }
    let (events, rolled_back) = app.rolled_back(&tenant).await;
    assert_eq!(rolled_back["module_sha256"], hostile);
    let reason = rolled_back["reason"].as_str().unwrap();
    assert!(reason.contains("failed 11 of its first 11 calls") && reason.contains("built-in"), "{reason}");
    let failure = events.iter().find(|e| e["kind"] == "failure").unwrap();
    assert!(failure["reason"].as_str().unwrap().contains("the host refused its outcome"), "{failure}");
    assert_eq!(app.active_module(&tenant).await["builtin"], true);
    let bought = app.purchase(&tenant, &player, json!({"catalog_item_id": mint, "currency_code": "gems"})).await;
    assert_eq!(bought.assert_ok()["balance_after"], 990, "the built-in rules sell it, and nothing was minted");
}
