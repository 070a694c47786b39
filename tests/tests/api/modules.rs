//! Rules modules: upload, activation, rollback, the sandbox, and
//! live swaps under load.

use crate::helpers::{As, Player, Reply, Tenant, TestApp, priced_item, shop, spawn_app, spawn_app_with_runtime};
use economy_tests::components::{HOSTILE, LEGACY, MISTYPED, SALE_PRICING, TIERED_PRICING, WRONG_WORLD};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;

impl TestApp {
    pub(crate) async fn upload(&self, tenant: &Tenant, bytes: &[u8]) -> Reply {
        let response = self
            .http
            .post(format!("{}/admin/modules", self.address))
            .header("X-Api-Key", &tenant.admin_key)
            .header("content-type", "application/wasm")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Reply { status, headers, body: response.json().await.unwrap_or(Value::Null) }
    }

    /// Uploads and activates a module; returns its SHA-256.
    pub(crate) async fn activate(&self, tenant: &Tenant, bytes: &[u8]) -> String {
        let uploaded = self.upload(tenant, bytes).await;
        let sha256 = uploaded.assert_ok()["sha256"].as_str().expect("a hash").to_owned();
        let body = json!({"sha256": sha256});
        self.call(Method::PUT, "/admin/modules/active", As::Key(&tenant.admin_key), Some(body)).await.assert_ok();
        sha256
    }

    pub(crate) async fn price_of(&self, tenant: &Tenant, player: &Player, item_id: &str) -> i64 {
        let reply = self.purchase(tenant, player, json!({"catalog_item_id": item_id, "currency_code": "gems"})).await;
        reply.assert_ok()["price"].as_i64().expect("a price")
    }
}

/// Uploads and activates the hostile module for `tenant`.
pub async fn activate_hostile(app: &TestApp, tenant: &Tenant) {
    app.activate(tenant, HOSTILE).await;
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An item priced 100 gems with a sale running now (30 % off).
pub(crate) async fn item_on_sale(app: &TestApp, tenant: &Tenant, key: &str) -> String {
    let sales = json!({"sales": [{"percent_off": 30, "starts_at_ms": now_ms() - 3_600_000, "ends_at_ms": now_ms() + 3_600_000}]});
    app.put_item(
        tenant,
        key,
        json!({"name": key, "item_type": "consumable", "display_properties": sales,
        "prices": [{"currency_code": "gems", "amount": 100}]}),
    )
    .await
}

#[tokio::test]
async fn uploads_that_are_not_economy_components_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    let garbage = app.upload(&tenant, b"definitely not wasm").await;
    garbage.assert_error(400, "INVALID_MODULE");
    let core_module = app.upload(&tenant, b"\0asm\x01\0\0\0").await;
    core_module.assert_error(400, "INVALID_MODULE");
    let wrong_world = app.upload(&tenant, WRONG_WORLD).await;
    wrong_world.assert_error(400, "INVALID_MODULE");
    let reason = wrong_world.body["error"]["message"].as_str().unwrap();
    assert!(reason.contains("economy:plugin/rules"), "the reason names the missing export: {reason}");
    let too_big = app.upload(&tenant, &vec![0u8; 300 * 1024]).await;
    too_big.assert_error(413, "PAYLOAD_TOO_LARGE");
    let figures = too_big.body["error"]["message"].as_str().unwrap();
    assert!(figures.contains("262144"), "the 413 names the limit: {figures}");
    let untyped = app
        .http
        .post(format!("{}/admin/modules", app.address))
        .header("X-Api-Key", &tenant.admin_key)
        .body(SALE_PRICING.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), 400);
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
    let listed = listed.assert_ok().as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "nothing refused was stored: {listed:?}");
    assert_eq!((&listed[0]["builtin"], &listed[0]["active"]), (&json!(true), &json!(true)));
    let unknown = json!({"sha256": sha256(b"never uploaded")});
    app.call(Method::PUT, "/admin/modules/active", As::Key(&tenant.admin_key), Some(unknown))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_sale_module_discounts_while_active_and_rollback_restores_the_catalog_price() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 10_000).await;
    let on_sale = item_on_sale(&app, &tenant, "potion").await;
    let past = json!({"sales": [{"percent_off": 50, "starts_at_ms": 0, "ends_at_ms": now_ms() - 1_000}]});
    let sale_over = app
        .put_item(
            &tenant,
            "elixir",
            json!({"name": "Elixir", "item_type": "consumable", "display_properties": past,
            "prices": [{"currency_code": "gems", "amount": 100}]}),
        )
        .await;
    assert_eq!(app.price_of(&tenant, &player, &on_sale).await, 100, "the built-in rules ignore sales");

    let uploaded = app.upload(&tenant, SALE_PRICING).await;
    assert_eq!(uploaded.status, 201);
    assert_eq!(uploaded.data()["sha256"], sha256(SALE_PRICING));
    assert_eq!(uploaded.data()["size"], SALE_PRICING.len());
    assert_eq!(app.price_of(&tenant, &player, &on_sale).await, 100, "an upload alone changes nothing");

    let sale = app.activate(&tenant, SALE_PRICING).await;
    assert_eq!(app.price_of(&tenant, &player, &on_sale).await, 70);
    assert_eq!(app.price_of(&tenant, &player, &sale_over).await, 100);
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
    let actives = |listed: &Reply| -> Vec<(bool, bool)> {
        let entries = listed.data().as_array().unwrap();
        entries.iter().map(|m| (m["builtin"].as_bool().unwrap(), m["active"].as_bool().unwrap())).collect()
    };
    listed.assert_ok();
    assert_eq!(actives(&listed), vec![(false, true), (true, false)], "the upload runs; the built-in rules wait");
    assert_eq!(listed.data()[0]["sha256"], sale);

    let builtin = app.call(Method::DELETE, "/admin/modules/active", As::Key(&tenant.admin_key), None).await;
    assert_eq!(builtin.assert_ok()["builtin"], true);
    assert_eq!(app.price_of(&tenant, &player, &on_sale).await, 100);
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
    listed.assert_ok();
    assert_eq!(actives(&listed), vec![(false, false), (true, true)], "the built-in rules run again");
    assert_eq!(listed.data()[1]["sha256"], builtin.data()["sha256"]);
    assert!(listed.data()[1]["size"].as_i64().unwrap() > 0 && listed.data()[1]["created_at"].is_null());

    // Every purchase and ledger entry names the module that decided it.
    let deciders: Vec<String> =
        app.pool.rows("SELECT module_sha256 FROM purchases ORDER BY id").await.into_iter().map(|(sha,)| sha).collect();
    let core = builtin.data()["sha256"].as_str().unwrap().to_owned();
    assert_eq!(deciders, vec![core.clone(), core.clone(), sale.clone(), sale.clone(), core.clone()]);
    let unnamed: i64 =
        app.pool.scalar("SELECT count(*) FROM ledger WHERE reason = 'purchase' AND module_sha256 IS NULL").await;
    assert_eq!(unnamed, 0);
}

#[tokio::test]
async fn store_listings_show_the_active_module_price() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    item_on_sale(&app, &tenant, "potion").await;
    app.put_store(&tenant, "shop", json!({"name": "Shop", "listings": [{"item_key": "potion"}]})).await;
    let listing = |reply: &Reply| reply.assert_ok()["listings"][0]["prices"][0]["amount"].as_i64().unwrap();
    let store = app.call(Method::GET, "/client/stores/shop", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(listing(&store), 100);
    app.activate(&tenant, SALE_PRICING).await;
    let store = app.call(Method::GET, "/client/stores/shop", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(listing(&store), 70);
    assert_eq!(store.data()["listings"][0]["purchasable"], true);
    app.call(Method::GET, "/client/stores/ghost", As::Session(&tenant.client_key, &player), None)
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn tiered_pricing_lowers_the_price_after_enough_purchases_and_older_modules_can_come_back() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 10_000).await;
    let tiers = json!({"tiers": [{"after": 2, "percent_off": 25}], "sales": [{"percent_off": 10, "starts_at_ms": 0, "ends_at_ms": i64::MAX}]});
    let gem = app
        .put_item(
            &tenant,
            "gem-pack",
            json!({"name": "Gem pack", "item_type": "consumable", "display_properties": tiers,
            "prices": [{"currency_code": "gems", "amount": 80}]}),
        )
        .await;
    let sale = app.activate(&tenant, SALE_PRICING).await;
    assert_eq!(app.price_of(&tenant, &player, &gem).await, 72);
    app.activate(&tenant, TIERED_PRICING).await;
    assert_eq!(app.price_of(&tenant, &player, &gem).await, 80, "one bought before");
    assert_eq!(app.price_of(&tenant, &player, &gem).await, 60, "two bought before");
    // Rollback: activate the older module again, by its hash.
    app.call(Method::PUT, "/admin/modules/active", As::Key(&tenant.admin_key), Some(json!({"sha256": sale})))
        .await
        .assert_ok();
    assert_eq!(app.price_of(&tenant, &player, &gem).await, 72);
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
    let active: Vec<bool> =
        listed.assert_ok().as_array().unwrap().iter().map(|m| m["active"].as_bool().unwrap()).collect();
    assert_eq!(active.iter().filter(|a| **a).count(), 1);
}

#[tokio::test]
async fn a_hostile_module_fails_only_its_own_requests_and_changes_nothing() {
    // Each attack runs to its cap; the tenant's share of the cores (tested
    // in fairness) would answer the next one busy, so it is set out of reach.
    let app = spawn_app_with_runtime(|settings| settings.module_tenant_cpu_ms = Some(60_000)).await;
    let (tenant, player) = shop(&app, 1_000).await;
    // Fuel out of the way: the deadline, memory and stack caps must each
    // stop their own attack.
    app.set_limits(&tenant, json!({"fuel": 1_000_000_000_000_i64, "deadline_ms": 1_000})).await;
    let behaviours = ["loop", "alloc", "recurse", "trap", "negative", "flood", "mint", "skim"];
    let mut items = Vec::new();
    for key in behaviours {
        items.push((key, priced_item(&app, &tenant, key, "consumable", 10).await));
    }
    let honest = priced_item(&app, &tenant, "honest", "consumable", 10).await;
    app.activate(&tenant, HOSTILE).await;
    let other = app.create_tenant("bystander").await;
    app.put_currency(&other, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let bystander = app.login(&other, "player-1").await;
    let bystander_item = priced_item(&app, &other, "potion", "consumable", 10).await;

    for (key, item) in &items {
        let hostile = app.purchase(&tenant, &player, json!({"catalog_item_id": item, "currency_code": "gems"}));
        let innocent =
            app.purchase(&other, &bystander, json!({"catalog_item_id": bystander_item, "currency_code": "gems"}));
        let (hostile, innocent) = tokio::join!(hostile, innocent);
        assert_eq!(hostile.body["error"]["code"], "MODULE_FAILED", "{key}: {}", hostile.body);
        assert_eq!(hostile.status, 500, "{key}");
        innocent.assert_ok();
        app.call(Method::GET, "/healthz", As::Nobody, None).await.assert_ok();
    }
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000, "nothing was debited or minted");
    let inventory = app.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, &player), None).await;
    assert_eq!(inventory.assert_ok().as_array().unwrap().len(), 0);
    assert_eq!(app.balance(&other, &bystander, "gems").await, 1_000 - 10 * behaviours.len() as i64);
    // The module still serves the requests it does not sabotage.
    assert_eq!(app.price_of(&tenant, &player, &honest).await, 10);
    app.audit().await;
}

#[tokio::test]
async fn a_module_sees_no_environment_files_network_or_moving_clock() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let probe = priced_item(&app, &tenant, "escape", "consumable", 10).await;
    app.activate(&tenant, HOSTILE).await;
    // 1 means every probe was denied; each leak would add its own bit.
    assert_eq!(app.price_of(&tenant, &player, &probe).await, 1);
}

#[tokio::test]
async fn repeated_memory_bombs_keep_the_host_memory_bounded() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let bomb = priced_item(&app, &tenant, "alloc", "consumable", 10).await;
    let honest = priced_item(&app, &tenant, "honest", "consumable", 1).await;
    app.without_rate_limits(&tenant).await;
    app.activate(&tenant, HOSTILE).await;
    // Past its probation (see module_watch), so that failing every call
    // does not roll it back.
    for _ in 0..20 {
        app.purchase(&tenant, &player, json!({"catalog_item_id": honest, "currency_code": "gems"})).await.assert_ok();
    }
    let resident = || {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).unwrap_or(0) * 4096
    };
    app.purchase(&tenant, &player, json!({"catalog_item_id": bomb, "currency_code": "gems"})).await;
    let before = resident();
    for _ in 0..20 {
        let reply = app.purchase(&tenant, &player, json!({"catalog_item_id": bomb, "currency_code": "gems"})).await;
        reply.assert_error(500, "MODULE_FAILED");
    }
    let grown = resident().saturating_sub(before);
    assert!(grown < 64 << 20, "resident memory grew {grown} bytes over 20 bombs of 16 MiB each");
}

#[tokio::test]
async fn the_operator_can_tighten_a_tenants_limits() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 10).await;
    let path = format!("/operator/tenants/{}/limits", tenant.id);
    let tight = app.call(Method::PUT, &path, As::Operator(&app.operator_key), Some(json!({"fuel": 1_000}))).await;
    assert_eq!(tight.assert_ok()["fuel"], 1_000);
    let starved = app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems"})).await;
    starved.assert_error(500, "MODULE_FAILED");
    let reset = app.call(Method::PUT, &path, As::Operator(&app.operator_key), Some(json!({}))).await;
    assert_eq!(reset.assert_ok()["fuel"], 10_000_000);
    assert_eq!(app.price_of(&tenant, &player, &potion).await, 10);
    let bad = app.call(Method::PUT, &path, As::Operator(&app.operator_key), Some(json!({"fuel": 0}))).await;
    bad.assert_error(400, "VALIDATION_FAILED");
    app.call(Method::PUT, &path, As::Key(&tenant.admin_key), Some(json!({}))).await.assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn twenty_live_swaps_under_parallel_purchases_fail_nothing() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000_000).await;
    let potion = item_on_sale(&app, &tenant, "potion").await;
    app.without_rate_limits(&tenant).await;
    let sale = app.activate(&tenant, SALE_PRICING).await;
    let buyers = async {
        let mut replies = Vec::new();
        for _ in 0..10 {
            let round = (0..8)
                .map(|_| app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems"})));
            replies.extend(join_all(round).await);
        }
        replies
    };
    let swapper = async {
        for round in 0..20 {
            if round % 2 == 0 {
                app.call(Method::DELETE, "/admin/modules/active", As::Key(&tenant.admin_key), None).await.assert_ok();
            } else {
                let body = json!({"sha256": sale});
                app.call(Method::PUT, "/admin/modules/active", As::Key(&tenant.admin_key), Some(body))
                    .await
                    .assert_ok();
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    };
    let (replies, ()) = tokio::join!(buyers, swapper);
    assert_eq!(replies.len(), 80);
    let prices: HashSet<i64> = replies.iter().map(|reply| reply.assert_ok()["price"].as_i64().unwrap()).collect();
    assert!(prices.is_subset(&HashSet::from([70, 100])), "prices {prices:?}");
    let spent: i64 = replies.iter().map(|reply| reply.data()["price"].as_i64().unwrap()).sum();
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000_000 - spent);
    app.audit().await;
}

#[tokio::test]
async fn another_host_on_the_same_database_picks_up_an_activation_within_a_second() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 10_000).await;
    let potion = item_on_sale(&app, &tenant, "potion").await;
    let other_host = app.sibling().await;
    assert_eq!(other_host.price_of(&tenant, &player, &potion).await, 100);
    app.activate(&tenant, SALE_PRICING).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(other_host.price_of(&tenant, &player, &potion).await, 70);
    app.call(Method::DELETE, "/admin/modules/active", As::Key(&tenant.admin_key), None).await.assert_ok();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(other_host.price_of(&tenant, &player, &potion).await, 100);
}

#[tokio::test]
async fn consumes_record_the_module_that_decided_them() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let potion = priced_item(&app, &tenant, "potion", "consumable", 10).await;
    let sale = app.activate(&tenant, SALE_PRICING).await;
    app.purchase(&tenant, &player, json!({"catalog_item_id": potion, "currency_code": "gems", "quantity": 2}))
        .await
        .assert_ok();
    assert_eq!(app.consume(&tenant, &player, &potion, 1).await.assert_ok()["quantity"], 1);
    let recorded: Vec<(String, i64)> = app.pool.rows("SELECT module_sha256, remaining FROM consumes").await;
    assert_eq!(recorded, vec![(sale, 1)]);
}

#[tokio::test]
async fn a_tenant_cannot_activate_a_module_another_tenant_uploaded() {
    let app = spawn_app().await;
    let (a, _) = shop(&app, 1_000).await;
    let sale = app.activate(&a, SALE_PRICING).await;
    let b = app.create_tenant("other-game").await;
    app.put_currency(&b, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let b_player = app.login(&b, "player-1").await;
    let sword = item_on_sale(&app, &b, "sword").await;

    let stolen = json!({"sha256": sale});
    app.call(Method::PUT, "/admin/modules/active", As::Key(&b.admin_key), Some(stolen))
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(app.price_of(&b, &b_player, &sword).await, 100, "B still runs its own rules");
    // Nothing was written: a host reading B's rules afresh runs the built-in rules too.
    let fresh_host = app.sibling().await;
    assert_eq!(fresh_host.price_of(&b, &b_player, &sword).await, 100);
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&b.admin_key), None).await;
    let listed = listed.assert_ok().as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "B sees none of A's modules: {listed:?}");
    assert_eq!(listed[0]["builtin"], true);

    // B may upload the same bytes itself, and then run them.
    assert_eq!(app.upload(&b, SALE_PRICING).await.status, 201);
    app.call(Method::PUT, "/admin/modules/active", As::Key(&b.admin_key), Some(json!({"sha256": sale})))
        .await
        .assert_ok();
    assert_eq!(app.price_of(&b, &b_player, &sword).await, 70);
}

#[tokio::test]
async fn an_upload_whose_exports_are_mistyped_is_refused_naming_the_function_and_both_types() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let refused = app.upload(&tenant, MISTYPED).await;
    refused.assert_error(400, "INVALID_MODULE");
    let reason = refused.body["error"]["message"].as_str().unwrap();
    for part in ["function purchase returns `result<u64, ", "the world declares `result<record { unit-price: s64"] {
        assert!(reason.contains(part), "the reason names {part:?}: {reason}");
    }
    let listed = app.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
    assert_eq!(listed.assert_ok().as_array().unwrap().len(), 1, "only the built-in rules: {}", listed.body);
    let activate = json!({"sha256": sha256(MISTYPED)});
    app.call(Method::PUT, "/admin/modules/active", As::Key(&tenant.admin_key), Some(activate))
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(app.price_of(&tenant, &player, &sword).await, 100, "the shop stays up");
}

#[tokio::test]
async fn imports_given_ids_that_name_nothing_answer_as_for_nothing_and_never_trap() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let probe = priced_item(&app, &tenant, "bad-ids", "consumable", 10).await;
    app.activate(&tenant, HOSTILE).await;
    // 1 means every import answered as for a thing that does not exist.
    assert_eq!(app.price_of(&tenant, &player, &probe).await, 1);
    let claimed: i64 = app.pool.scalar("SELECT count(*) FROM listing_purchases").await;
    assert_eq!(claimed, 0, "no claim was recorded for a listing that does not exist");
}

/// A module uploaded before the contract's 0.1.1 (which added the `player`
/// and `settings` imports) keeps being accepted and run: hosts link the
/// versions of one 0.1 contract as one.
#[tokio::test]
async fn a_module_built_against_the_first_version_of_the_contract_still_runs() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    app.activate(&tenant, LEGACY).await;
    assert_eq!(app.price_of(&tenant, &player, &sword).await, 0, "the 0.1.0 module prices everything at 0");
    assert_eq!(app.quantity(&tenant, &player, &sword).await, 1);
    assert_eq!(app.balance(&tenant, &player, "gems").await, 1_000);
}
