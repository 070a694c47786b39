//! Keys, sessions and tenant isolation (SPEC §3).

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
async fn a_server_session_and_a_client_login_name_the_same_user() {
    let app = spawn_app().await;
    let (tenant, player) = shop(&app, 0).await;
    let reply = app.call(Method::POST, "/server/users/player-1/sessions", As::Key(&tenant.server_key), None).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.data()["app_user_id"], player.user_id.as_str());
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
