//! What the game tells the rules: player attributes set by the game server
//! and the tenant's module settings, read by a module through
//! `economy:plugin/player` and `economy:plugin/settings` on every request.

use crate::helpers::{As, Player, TestApp, priced_item, spawn_app};
use economy_tests::components::VIP_PRICING;
use reqwest::Method;
use serde_json::{Value, json};

/// A session for the player `identity`, opened by the game server.
async fn session(app: &TestApp, server_key: &str, identity: &str) -> Player {
    let path = format!("/server/users/{identity}/sessions");
    let reply = app.call(Method::POST, &path, As::Key(server_key), None).await;
    let data = reply.assert_ok();
    Player {
        token: data["session_token"].as_str().unwrap().to_owned(),
        user_id: data["app_user_id"].as_str().unwrap().to_owned(),
        identity: identity.to_owned(),
    }
}

async fn put_attributes(app: &TestApp, server_key: &str, identity: &str, body: Value) -> crate::helpers::Reply {
    app.call(Method::PUT, &format!("/server/users/{identity}/attributes"), As::Key(server_key), Some(body)).await
}

#[tokio::test]
async fn the_game_server_sets_attributes_and_reads_them_back_within_its_tenant() {
    let app = spawn_app().await;
    let (a, b) = (app.create_tenant("attrs-a").await, app.create_tenant("attrs-b").await);
    let attributes = json!({"vip": true, "tier": "gold", "level": 31, "flags": {"beta": true}});
    let saved = put_attributes(&app, &a.server_key, "ann", attributes.clone()).await;
    assert_eq!(saved.assert_ok(), &attributes, "the player is created and the attributes saved");
    let read = app.call(Method::GET, "/server/users/ann/attributes", As::Key(&a.server_key), None).await;
    assert_eq!(read.assert_ok(), &attributes);

    // Replaced whole, not merged.
    put_attributes(&app, &a.server_key, "ann", json!({"tier": "silver"})).await.assert_ok();
    let read = app.call(Method::GET, "/server/users/ann/attributes", As::Key(&a.server_key), None).await;
    assert_eq!(read.assert_ok(), &json!({"tier": "silver"}));

    // Another tenant has no such player, and its own "ann" has its own.
    let other = app.call(Method::GET, "/server/users/ann/attributes", As::Key(&b.server_key), None).await;
    other.assert_error(404, "NOT_FOUND");
    session(&app, &b.server_key, "ann").await;
    let other = app.call(Method::GET, "/server/users/ann/attributes", As::Key(&b.server_key), None).await;
    assert_eq!(other.assert_ok(), &json!({}), "a new player has none");

    // A game client cannot set its own (the admin key may, as on every
    // server route).
    put_attributes(&app, &a.client_key, "ann", json!({"vip": true})).await.assert_error(403, "FORBIDDEN");
    let reply = app.call(Method::GET, "/server/users/ann/attributes", As::Key(&a.client_key), None).await;
    reply.assert_error(403, "FORBIDDEN");
    put_attributes(&app, "not-a-key", "ann", json!({"vip": true})).await.assert_error(401, "UNAUTHORIZED");

    // Bad input is refused, and nothing changes.
    let long_name = "n".repeat(65);
    let big = json!({"blob": "x".repeat(17 * 1024)});
    for bad in [json!([1, 2]), json!("vip"), json!({ long_name: 1 }), json!({"": 1}), big, json!({"a": "nul\u{0}"})] {
        put_attributes(&app, &a.server_key, "ann", bad.clone()).await.assert_error(400, "VALIDATION_FAILED");
    }
    let read = app.call(Method::GET, "/server/users/ann/attributes", As::Key(&a.server_key), None).await;
    assert_eq!(read.assert_ok(), &json!({"tier": "silver"}));
}

#[tokio::test]
async fn module_settings_are_validated_and_kept_with_the_other_settings() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("module-settings").await;
    let admin = As::Key(&tenant.admin_key);
    let limits = json!({"player_writes_per_minute": 60, "key_requests_per_second": 500});
    let settings = json!({"custom_id_login": false, "module_settings": {"vip_percent_off": 30, "vip_prefix": "gold-"},
                          "rate_limits": limits});
    app.call(Method::PUT, "/admin/settings", admin, Some(settings.clone())).await.assert_ok();
    let read = app.call(Method::GET, "/admin/settings", As::Key(&tenant.admin_key), None).await;
    assert_eq!(read.assert_ok(), &settings);
    for bad in [
        json!({"module_settings": [1]}),
        json!({"module_settings": {"x": "y".repeat(17 * 1024)}}),
        json!({"rate_limits": {"player_writes_per_minute": 0, "key_requests_per_second": 5}}),
        json!({"rate_limits": {"player_writes_per_minute": 5}}),
    ] {
        let reply = app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(bad)).await;
        reply.assert_error(400, "VALIDATION_FAILED");
    }
    // A setting left out takes its default: no module settings, the
    // default rate limits; null turns the limits off.
    let body = json!({"custom_id_login": true});
    app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(body)).await.assert_ok();
    let read = app.call(Method::GET, "/admin/settings", As::Key(&tenant.admin_key), None).await;
    let defaults = json!({"player_writes_per_minute": 120, "key_requests_per_second": 2000});
    assert_eq!(read.assert_ok(), &json!({"custom_id_login": true, "module_settings": {}, "rate_limits": defaults}));
    let body = json!({"rate_limits": null});
    app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(body)).await.assert_ok();
    let read = app.call(Method::GET, "/admin/settings", As::Key(&tenant.admin_key), None).await;
    assert_eq!(read.assert_ok()["rate_limits"], json!(null));
}

#[tokio::test]
async fn a_module_prices_by_identity_attributes_and_settings_as_they_are_at_each_request() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("vip-live").await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 10_000})).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    app.activate(&tenant, VIP_PRICING).await;
    let vip = session(&app, &tenant.server_key, "vip-1").await;
    let ann = session(&app, &tenant.server_key, "ann").await;

    assert_eq!(app.price_of(&tenant, &vip, &sword).await, 80, "the default prefix vip- and 20% off");
    assert_eq!(app.price_of(&tenant, &ann, &sword).await, 100);

    // The game server's attribute decides, from the next request on.
    put_attributes(&app, &tenant.server_key, "ann", json!({"vip": true})).await.assert_ok();
    put_attributes(&app, &tenant.server_key, "vip-1", json!({"vip": false})).await.assert_ok();
    assert_eq!(app.price_of(&tenant, &ann, &sword).await, 80);
    assert_eq!(app.price_of(&tenant, &vip, &sword).await, 100);

    // The admin's settings change the discount for every player.
    let body = json!({"module_settings": {"vip_percent_off": 35}});
    app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(body)).await.assert_ok();
    assert_eq!(app.price_of(&tenant, &ann, &sword).await, 65);
    assert_eq!(app.balance(&tenant, &ann, "gems").await, 10_000 - 100 - 80 - 65);

    // The dry run prices for the identity it is given, as a purchase does.
    let modules = app.call(Method::GET, "/admin/modules", As::Key(&tenant.admin_key), None).await;
    let active = modules.assert_ok().as_array().unwrap().iter().find(|m| m["active"] == true).unwrap().clone();
    let path = format!("/admin/modules/{}/quote", active["sha256"].as_str().unwrap());
    let body = json!({"catalog_item_id": sword, "currency_code": "gems", "identity": "ann"});
    let run = app.call(Method::POST, &path, As::Key(&tenant.admin_key), Some(body)).await;
    assert_eq!(run.assert_ok()["quote"]["unit_price"], 65);
}
