//! The OpenAPI document at `/openapi.json`: it names every route the host
//! serves, native and compatibility, and real answers of each validate
//! against the schema it gives for their status.

use crate::helpers::{As, Reply, Tenant, TestApp, spawn_app};
use crate::playfab::{legacy_shop, login, post, title_id};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every route, as `METHOD /path`.
const ROUTES: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /openapi.json",
    "POST /operator/tenants",
    "PUT /operator/tenants/{id}/limits",
    "POST /admin/modules",
    "GET /admin/modules",
    "PUT /admin/modules/active",
    "DELETE /admin/modules/active",
    "DELETE /admin/modules/{sha256}",
    "GET /admin/modules/events",
    "POST /admin/modules/{sha256}/quote",
    "PUT /admin/currencies/{code}",
    "GET /admin/currencies",
    "PUT /admin/catalog/items/{key}",
    "GET /admin/catalog/items",
    "GET /admin/catalog/items/{key}",
    "PUT /admin/stores/{key}",
    "GET /admin/stores/{key}",
    "GET /admin/settings",
    "PUT /admin/settings",
    "POST /server/users/{identity}/sessions",
    "POST /server/users/{identity}/grants",
    "POST /server/users/{identity}/custom-ids",
    "GET /server/users/{identity}/ledger",
    "GET /server/users/{identity}/attributes",
    "PUT /server/users/{identity}/attributes",
    "POST /client/auth/custom",
    "GET /client/wallet",
    "GET /client/inventory",
    "GET /client/stores/{key}",
    "POST /client/inventory/purchase",
    "POST /client/inventory/{item_id}/consume",
    "GET /api/private/shop-items",
    "POST /api/private/users/{identity}/purchases",
    "POST /Client/LoginWithCustomID",
    "POST /Client/GetUserInventory",
    "POST /Inventory/PurchaseInventoryItems",
    "POST /Inventory/GetInventoryItems",
    "POST /Inventory/AddInventoryItems",
    "POST /Inventory/SubtractInventoryItems",
];

async fn document(app: &TestApp) -> Value {
    let reply = app.call(Method::GET, "/openapi.json", As::Nobody, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// The document's operations, as `METHOD /path`.
fn operations(document: &Value) -> BTreeSet<String> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("a path item").keys().map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_names_every_route_and_every_route_it_names_is_served() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert!(document["openapi"].as_str().is_some_and(|version| version.starts_with("3.1")), "{}", document["openapi"]);
    let expected: BTreeSet<String> = ROUTES.iter().map(|route| route.to_string()).collect();
    assert_eq!(operations(&document), expected);

    // Each is routed: called without credentials, none answers "no such route".
    for route in ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{item_id}", &uuid::Uuid::now_v7().to_string());
        let path = path.replace("{code}", "gems").replace("{key}", "sword").replace("{identity}", "player-1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = app.call(method, &path, As::Nobody, Some(json!({}))).await;
        let unrouted = reply.status == 405 || reply.body["error"]["message"] == "route not found";
        assert!(!unrouted, "{route}: {} {}", reply.status, reply.body);
    }
    // And a route it does not name is not served.
    let reply = app.call(Method::GET, "/client/nothing-here", As::Nobody, None).await;
    assert_eq!(reply.body["error"]["message"], "route not found");
}

/// Checks answers against the schema the document gives them.
struct Schemas(Value);

impl Schemas {
    /// `reply` must be documented for `route` (`METHOD /path`) and its
    /// status, and validate against that schema.
    fn check(&self, route: &str, reply: &Reply) {
        let (method, path) = route.split_once(' ').unwrap();
        let responses = &self.0["paths"][path][method.to_lowercase()]["responses"];
        let response = &responses[reply.status.to_string()];
        assert!(
            response.is_object(),
            "{route} answered {} {}, which the document does not list",
            reply.status,
            reply.body
        );
        if response["content"].is_null() {
            assert!(reply.body.is_null(), "{route} {}: a body the document does not describe", reply.status);
            return;
        }
        let mut schema = response["content"]["application/json"]["schema"].clone();
        assert!(schema.is_object(), "{route} {}: no JSON schema", reply.status);
        schema["components"] = self.0["components"].clone();
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> =
            validator.iter_errors(&reply.body).map(|error| format!("{error} at {}", error.instance_path)).collect();
        assert!(errors.is_empty(), "{route} {}: {errors:?}\n{}", reply.status, reply.body);
    }
}

async fn as_key(app: &TestApp, method: Method, path: &str, key: &str, body: Option<Value>) -> Reply {
    app.call(method, path, As::Key(key), body).await
}

#[tokio::test]
async fn real_answers_validate_against_the_document() {
    let app = spawn_app().await;
    let schemas = Schemas(document(&app).await);
    let check = |route: &str, reply: &Reply| schemas.check(route, reply);
    check("GET /healthz", &app.call(Method::GET, "/healthz", As::Nobody, None).await);
    check("GET /readyz", &app.call(Method::GET, "/readyz", As::Operator(&app.operator_key), None).await);

    let created = app
        .call(
            Method::POST,
            "/operator/tenants",
            As::Operator(&app.operator_key),
            Some(json!({"slug": "doc", "name": "Doc"})),
        )
        .await;
    check("POST /operator/tenants", &created);
    let tenant_id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let taken = app
        .call(
            Method::POST,
            "/operator/tenants",
            As::Operator(&app.operator_key),
            Some(json!({"slug": "doc", "name": "Doc"})),
        )
        .await;
    check("POST /operator/tenants", &taken);
    let limits = app
        .call(
            Method::PUT,
            &format!("/operator/tenants/{tenant_id}/limits"),
            As::Operator(&app.operator_key),
            Some(json!({"fuel": 5_000_000})),
        )
        .await;
    check("PUT /operator/tenants/{id}/limits", &limits);

    let tenant = legacy_shop(&app).await;
    let admin = tenant.admin_key.as_str();
    let currency = json!({"name": "Stars", "initial_balance": 3});
    check(
        "PUT /admin/currencies/{code}",
        &as_key(&app, Method::PUT, "/admin/currencies/stars", admin, Some(currency)).await,
    );
    check("GET /admin/currencies", &as_key(&app, Method::GET, "/admin/currencies", admin, None).await);
    let item = json!({"name": "Shield", "item_type": "durable", "prices": [{"currency_code": "gems", "amount": 20}]});
    check(
        "PUT /admin/catalog/items/{key}",
        &as_key(&app, Method::PUT, "/admin/catalog/items/shield", admin, Some(item)).await,
    );
    check("GET /admin/catalog/items", &as_key(&app, Method::GET, "/admin/catalog/items", admin, None).await);
    check(
        "GET /admin/catalog/items/{key}",
        &as_key(&app, Method::GET, "/admin/catalog/items/chest", admin, None).await,
    );
    check(
        "GET /admin/catalog/items/{key}",
        &as_key(&app, Method::GET, "/admin/catalog/items/ghost", admin, None).await,
    );
    let store = json!({"name": "Shop", "listings": [{"item_key": "sword", "max_purchases_per_user": 2}, {"item_key": "potion"}]});
    check("PUT /admin/stores/{key}", &as_key(&app, Method::PUT, "/admin/stores/shop", admin, Some(store)).await);
    check("GET /admin/stores/{key}", &as_key(&app, Method::GET, "/admin/stores/shop", admin, None).await);
    check("GET /admin/settings", &as_key(&app, Method::GET, "/admin/settings", admin, None).await);
    let settings = json!({"custom_id_login": true});
    check("PUT /admin/settings", &as_key(&app, Method::PUT, "/admin/settings", admin, Some(settings)).await);
    let uploaded = app.upload(&tenant, economy_tests::components::SALE_PRICING).await;
    check("POST /admin/modules", &uploaded);
    assert!(uploaded.data()["sample"].is_object(), "{}", uploaded.body);
    check("GET /admin/modules", &as_key(&app, Method::GET, "/admin/modules", admin, None).await);
    let sale = uploaded.data()["sha256"].as_str().unwrap();
    let dry_run = json!({"catalog_item_id": uploaded.data()["sample"]["item_key"], "currency_code": "gems"});
    let quote = format!("/admin/modules/{sale}/quote");
    check("POST /admin/modules/{sha256}/quote", &as_key(&app, Method::POST, &quote, admin, Some(dry_run)).await);
    let chest = app.call(Method::GET, "/admin/catalog/items/chest", As::Key(admin), None).await;
    let dry_run = json!({"catalog_item_id": chest.data()["id"], "currency_code": "gems"});
    check("POST /admin/modules/{sha256}/quote", &as_key(&app, Method::POST, &quote, admin, Some(dry_run)).await);
    check("GET /admin/modules/events", &as_key(&app, Method::GET, "/admin/modules/events", admin, None).await);
    check("DELETE /admin/modules/active", &as_key(&app, Method::DELETE, "/admin/modules/active", admin, None).await);
    let delete = format!("/admin/modules/{sale}");
    check("DELETE /admin/modules/{sha256}", &as_key(&app, Method::DELETE, &delete, admin, None).await);
    check("DELETE /admin/modules/{sha256}", &as_key(&app, Method::DELETE, &delete, admin, None).await);
    let unknown = json!({"sha256": "0".repeat(64)});
    check("PUT /admin/modules/active", &as_key(&app, Method::PUT, "/admin/modules/active", admin, Some(unknown)).await);
    check("GET /admin/settings", &as_key(&app, Method::GET, "/admin/settings", &tenant.client_key, None).await);

    let server = tenant.server_key.as_str();
    check(
        "POST /server/users/{identity}/sessions",
        &as_key(&app, Method::POST, "/server/users/hero/sessions", server, Some(json!({}))).await,
    );
    let grant = json!({"currency_code": "gems", "amount": 5});
    check(
        "POST /server/users/{identity}/grants",
        &as_key(&app, Method::POST, "/server/users/hero/grants", server, Some(grant)).await,
    );
    let grant = json!({"item_key": "potion", "quantity": 2});
    check(
        "POST /server/users/{identity}/grants",
        &as_key(&app, Method::POST, "/server/users/hero/grants", server, Some(grant)).await,
    );
    let link = json!({"custom_id": "device-hero-0123456789"});
    check(
        "POST /server/users/{identity}/custom-ids",
        &as_key(&app, Method::POST, "/server/users/hero/custom-ids", server, Some(link)).await,
    );
    check(
        "GET /server/users/{identity}/ledger",
        &as_key(&app, Method::GET, "/server/users/hero/ledger?limit=1", server, None).await,
    );
    check(
        "GET /server/users/{identity}/ledger",
        &as_key(&app, Method::GET, "/server/users/nobody/ledger", server, None).await,
    );
    let attributes = json!({"vip": true, "tier": "gold"});
    check(
        "PUT /server/users/{identity}/attributes",
        &as_key(&app, Method::PUT, "/server/users/hero/attributes", server, Some(attributes)).await,
    );
    check(
        "GET /server/users/{identity}/attributes",
        &as_key(&app, Method::GET, "/server/users/hero/attributes", server, None).await,
    );

    let login_reply = as_key(
        &app,
        Method::POST,
        "/client/auth/custom",
        &tenant.client_key,
        Some(json!({"custom_id": "device-hero-0123456789"})),
    )
    .await;
    check("POST /client/auth/custom", &login_reply);
    let player = app.login(&tenant, "device-hero-0123456789").await;
    let session = As::Session(&tenant.client_key, &player);
    check("GET /client/wallet", &app.call(Method::GET, "/client/wallet", session, None).await);
    check("GET /client/stores/{key}", &app.call(Method::GET, "/client/stores/shop", session, None).await);
    let potion = item_id(&app, &tenant, "potion").await;
    let chest = item_id(&app, &tenant, "chest").await;
    let buy = json!({"catalog_item_id": chest, "currency_code": "gems", "idempotency_key": "doc-1"});
    check("POST /client/inventory/purchase", &app.purchase(&tenant, &player, buy).await);
    let broke = json!({"catalog_item_id": chest, "currency_code": "gems", "quantity": 1000});
    check("POST /client/inventory/purchase", &app.purchase(&tenant, &player, broke).await);
    let reused = json!({"catalog_item_id": potion, "currency_code": "gems", "idempotency_key": "doc-1"});
    check("POST /client/inventory/purchase", &app.purchase(&tenant, &player, reused).await);
    check("GET /client/inventory", &app.call(Method::GET, "/client/inventory", session, None).await);
    check("POST /client/inventory/{item_id}/consume", &app.consume(&tenant, &player, &potion, 1).await);
    check("POST /client/inventory/{item_id}/consume", &app.consume(&tenant, &player, &potion, 100).await);
    check("GET /client/wallet", &app.call(Method::GET, "/client/wallet", As::Nobody, None).await);

    // Sverse.
    let shop = as_key(&app, Method::GET, "/api/private/shop-items?sortBy=price", server, None).await;
    check("GET /api/private/shop-items", &shop);
    check(
        "GET /api/private/shop-items",
        &as_key(&app, Method::GET, "/api/private/shop-items?limit=0", server, None).await,
    );
    check("GET /api/private/shop-items", &app.call(Method::GET, "/api/private/shop-items", As::Nobody, None).await);
    let shop_item = shop.body["data"]["items"][0]["id"].as_str().unwrap().to_owned();
    let buy = json!({"shopItemId": shop_item, "quantity": 1, "idempotencyKey": "doc-sverse-1", "meta": {"order": 7}});
    let path = "/api/private/users/hero/purchases";
    check(
        "POST /api/private/users/{identity}/purchases",
        &as_key(&app, Method::POST, path, server, Some(buy.clone())).await,
    );
    check("POST /api/private/users/{identity}/purchases", &as_key(&app, Method::POST, path, server, Some(buy)).await);
    let missing = json!({"shopItemId": shop_item, "quantity": 1});
    check(
        "POST /api/private/users/{identity}/purchases",
        &as_key(&app, Method::POST, path, server, Some(missing)).await,
    );
    let nobody = json!({"shopItemId": shop_item, "quantity": 1, "idempotencyKey": "doc-sverse-2"});
    let nobody_path = "/api/private/users/nobody/purchases";
    check(
        "POST /api/private/users/{identity}/purchases",
        &as_key(&app, Method::POST, nobody_path, server, Some(nobody)).await,
    );

    // PlayFab, legacy and Economy v2.
    let title = title_id(&app, "game").await;
    let logged_in = login(&app, &title, "device-doc-0123456789", true).await;
    check("POST /Client/LoginWithCustomID", &logged_in);
    check("POST /Client/LoginWithCustomID", &login(&app, &title, "device-none-0123456789", false).await);
    let ticket = logged_in.body["data"]["SessionTicket"].as_str().unwrap().to_owned();
    let player_id = logged_in.body["data"]["PlayFabId"].as_str().unwrap().to_owned();
    let entity = [("X-EntityToken", ticket.as_str())];
    let bought = json!({"Item": {"AlternateId": {"Type": "FriendlyId", "Value": "boost"}}, "Amount": 1,
        "PriceAmounts": [{"ItemId": "gems", "Amount": 5}], "NewStackValues": {"DisplayProperties": {"glow": true}},
        "IdempotencyId": "doc-pf-1"});
    check(
        "POST /Inventory/PurchaseInventoryItems",
        &post(&app, "/Inventory/PurchaseInventoryItems", &entity, bought).await,
    );
    let stale = json!({"Item": {"Id": potion}, "Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 10}], "ETag": "stale"});
    check(
        "POST /Inventory/PurchaseInventoryItems",
        &post(&app, "/Inventory/PurchaseInventoryItems", &entity, stale).await,
    );
    check(
        "POST /Inventory/PurchaseInventoryItems",
        &post(&app, "/Inventory/PurchaseInventoryItems", &[], json!({})).await,
    );
    check(
        "POST /Inventory/GetInventoryItems",
        &post(&app, "/Inventory/GetInventoryItems", &entity, json!({"Count": 1})).await,
    );
    check("POST /Inventory/GetInventoryItems", &post(&app, "/Inventory/GetInventoryItems", &entity, json!({})).await);
    check(
        "POST /Inventory/GetInventoryItems",
        &post(&app, "/Inventory/GetInventoryItems", &entity, json!({"Count": 99})).await,
    );
    let secret = [("X-SecretKey", server)];
    let add = json!({"Entity": {"Id": player_id}, "Item": {"Id": "gems"}, "Amount": 7});
    check("POST /Inventory/AddInventoryItems", &post(&app, "/Inventory/AddInventoryItems", &secret, add).await);
    let take = json!({"Entity": {"Id": player_id}, "Item": {"Id": potion}, "Amount": 50});
    check(
        "POST /Inventory/SubtractInventoryItems",
        &post(&app, "/Inventory/SubtractInventoryItems", &secret, take).await,
    );
    let take = json!({"Entity": {"Id": player_id}, "Item": {"Id": "gems"}, "Amount": 1, "IdempotencyId": "doc-take"});
    check(
        "POST /Inventory/SubtractInventoryItems",
        &post(&app, "/Inventory/SubtractInventoryItems", &secret, take).await,
    );
    let client = [("X-SecretKey", tenant.client_key.as_str())];
    check("POST /Inventory/AddInventoryItems", &post(&app, "/Inventory/AddInventoryItems", &client, json!({})).await);
    let grant = json!({"currency_code": "energy", "amount": 2});
    // A regenerating balance below its max shows its recharge times.
    let player_identity = player_id.clone();
    as_key(&app, Method::POST, &format!("/server/users/{player_identity}/grants"), server, Some(grant))
        .await
        .assert_ok();
    let inventory = post(&app, "/Client/GetUserInventory", &[("X-Authorization", ticket.as_str())], json!({})).await;
    assert!(inventory.body["data"]["VirtualCurrencyRechargeTimes"]["energy"].is_object(), "{}", inventory.body);
    check("POST /Client/GetUserInventory", &inventory);
    check("POST /Client/GetUserInventory", &post(&app, "/Client/GetUserInventory", &[], json!({})).await);
}

async fn item_id(app: &TestApp, tenant: &Tenant, key: &str) -> String {
    let reply = app.call(Method::GET, &format!("/admin/catalog/items/{key}"), As::Key(&tenant.admin_key), None).await;
    reply.assert_ok()["id"].as_str().unwrap().to_owned()
}
