//! Keys, sessions, custom-id logins and tenant isolation.

use crate::helpers::{As, priced_item, shop, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_missing_or_unknown_key_is_unauthorized() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    app.call(Method::GET, "/admin/currencies", As::Nobody, None).await.assert_error(401, "UNAUTHORIZED");
    app.call(Method::GET, "/admin/currencies", As::Key("ek_admin_not-a-key"), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    let forged = crate::helpers::Player { token: "es_forged".into(), ..player.clone() };
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &forged), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.call(Method::GET, "/client/wallet", As::Key(&tenant.client_key), None).await.assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn a_key_of_the_wrong_kind_is_forbidden() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    app.call(Method::GET, "/admin/currencies", As::Key(&tenant.client_key), None).await.assert_error(403, "FORBIDDEN");
    app.call(Method::GET, "/admin/currencies", As::Key(&tenant.server_key), None).await.assert_error(403, "FORBIDDEN");
    let ledger = format!("/server/users/{}/ledger", player.identity);
    app.call(Method::GET, &ledger, As::Key(&tenant.client_key), None).await.assert_error(403, "FORBIDDEN");
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.server_key, &player), None)
        .await
        .assert_error(403, "FORBIDDEN");
    // The admin key allows everything of its tenant.
    app.call(Method::GET, &ledger, As::Key(&tenant.admin_key), None).await.assert_ok();
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.admin_key, &player), None).await.assert_ok();
}

#[tokio::test]
async fn operator_routes_need_the_operator_key() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    let body = json!({"slug": "other", "name": "Other"});
    app.call(Method::POST, "/operator/tenants", As::Nobody, Some(body.clone())).await.assert_error(401, "UNAUTHORIZED");
    app.call(Method::POST, "/operator/tenants", As::Operator("wrong"), Some(body.clone()))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.call(Method::POST, "/operator/tenants", As::Operator(&tenant.admin_key), Some(body))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let taken = json!({"slug": "game", "name": "Again"});
    app.call(Method::POST, "/operator/tenants", As::Operator(&app.operator_key), Some(taken))
        .await
        .assert_error(409, "CONFLICT");
}

#[tokio::test]
async fn an_expired_session_is_unauthorized() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 0).await;
    let reply = app
        .call(
            Method::POST,
            "/server/users/short-lived/sessions",
            As::Key(&tenant.server_key),
            Some(json!({"ttl_seconds": 1})),
        )
        .await;
    assert_eq!(reply.status, 201);
    let player = crate::helpers::Player {
        token: reply.data()["session_token"].as_str().unwrap().to_owned(),
        user_id: reply.data()["app_user_id"].as_str().unwrap().to_owned(),
        identity: "short-lived".into(),
    };
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await.assert_ok();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn a_custom_id_login_never_reaches_a_player_the_server_created() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 100).await;
    let sword = priced_item(&app, &tenant, "sword", "durable", 100).await;
    let reply = app.call(Method::POST, "/server/users/whale/sessions", As::Key(&tenant.server_key), None).await;
    let whale_id = reply.assert_ok()["app_user_id"].as_str().unwrap().to_owned();
    let whale = crate::helpers::Player {
        token: reply.data()["session_token"].as_str().unwrap().to_owned(),
        user_id: whale_id.clone(),
        identity: "whale".into(),
    };
    app.grant(&tenant, &whale, json!({"currency_code": "gems", "amount": 900})).await.assert_ok();

    // The client key ships inside the game: anyone may call this.
    let attacker = app.login(&tenant, "whale").await;
    assert_ne!(attacker.user_id, whale_id, "a custom id names its own player");
    assert_ne!(attacker.identity, "whale");
    app.purchase(&tenant, &attacker, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
    assert_eq!(app.balance(&tenant, &whale, "gems").await, 1_000, "the whale's balance is untouched");
    assert_eq!(app.balance(&tenant, &attacker, "gems").await, 0);
    // The same custom id logs in to the same player again, and the server
    // reaches that player by the identity the login returned.
    assert_eq!(app.login(&tenant, "whale").await.user_id, attacker.user_id);
    app.ledger(&tenant, &attacker, "").await.assert_ok();
    // A custom id and a server identity are not the same namespace even
    // when the server picks an identity that looks like a player id.
    let spoof = format!("/server/users/{}/sessions", attacker.identity);
    let reply = app.call(Method::POST, &spoof, As::Key(&tenant.server_key), None).await;
    assert_eq!(reply.assert_ok()["app_user_id"], attacker.user_id.as_str(), "the server may reach any player");
}

#[tokio::test]
async fn the_server_can_link_a_custom_id_to_its_player() {
    let app = spawn_app().await;
    let (tenant, _) = shop(&app, 100).await;
    let reply = app.call(Method::POST, "/server/users/hero/sessions", As::Key(&tenant.server_key), None).await;
    let hero_id = reply.assert_ok()["app_user_id"].as_str().unwrap().to_owned();
    let link = |custom_id: &str| {
        app.call(
            Method::POST,
            "/server/users/hero/custom-ids",
            As::Key(&tenant.server_key),
            Some(json!({"custom_id": custom_id})),
        )
    };
    assert_eq!(link("device-secret-1").await.assert_ok()["app_user_id"], hero_id.as_str());
    link("device-secret-1").await.assert_ok();
    let device = app.login(&tenant, "device-secret-1").await;
    assert_eq!((device.user_id.as_str(), device.identity.as_str()), (hero_id.as_str(), "hero"));
    // A custom id that already names another player is not moved.
    let other = app.login(&tenant, "device-secret-2").await;
    link("device-secret-2").await.assert_error(409, "CONFLICT");
    assert_eq!(app.login(&tenant, "device-secret-2").await.user_id, other.user_id);
    // The client key cannot link.
    app.call(
        Method::POST,
        "/server/users/hero/custom-ids",
        As::Key(&tenant.client_key),
        Some(json!({"custom_id": "mine"})),
    )
    .await
    .assert_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn a_tenant_can_turn_custom_id_login_off() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 100).await;
    let settings = app.call(Method::GET, "/admin/settings", As::Key(&tenant.admin_key), None).await;
    assert_eq!(settings.assert_ok()["custom_id_login"], true);
    let off = json!({"custom_id_login": false});
    let reply = app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(off)).await;
    assert_eq!(reply.assert_ok()["custom_id_login"], false);
    let login = json!({"custom_id": "player-1"});
    app.call(Method::POST, "/client/auth/custom", As::Key(&tenant.client_key), Some(login.clone()))
        .await
        .assert_error(403, "FORBIDDEN");
    // Sessions already open, and sessions the server opens, still work.
    app.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, &player), None).await.assert_ok();
    let path = format!("/server/users/{}/sessions", player.identity);
    app.call(Method::POST, &path, As::Key(&tenant.server_key), None).await.assert_ok();
    let on = json!({"custom_id_login": true});
    app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(on)).await.assert_ok();
    app.call(Method::POST, "/client/auth/custom", As::Key(&tenant.client_key), Some(login)).await.assert_ok();
    app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(json!({"custom_id_login": "no"})))
        .await
        .assert_error(400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn one_tenant_never_reaches_another() {
    let app = spawn_app().await;
    let (a, a_player) = shop(&app, 1_000).await;
    let sword = priced_item(&app, &a, "sword", "durable", 10).await;
    let b = app.create_tenant("other-game").await;
    app.put_currency(&b, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let b_player = app.login(&b, "player-1").await;

    // A's session with B's key is no session at all.
    app.call(Method::GET, "/client/wallet", As::Session(&b.client_key, &a_player), None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    // B cannot see or buy A's item, nor read A's users.
    app.call(Method::GET, "/admin/catalog/items/sword", As::Key(&b.admin_key), None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.purchase(&b, &b_player, json!({"catalog_item_id": sword, "currency_code": "gems"}))
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(app.balance(&b, &b_player, "gems").await, 1_000);
    // The same identity is a different user in each tenant.
    assert_ne!(a_player.user_id, b_player.user_id);
    app.purchase(&a, &a_player, json!({"catalog_item_id": sword, "currency_code": "gems"})).await.assert_ok();
    let b_ledger = app.ledger(&b, &b_player, "").await;
    assert_eq!(b_ledger.assert_ok()["entries"].as_array().unwrap().len(), 1, "only B's initial grant");
}
