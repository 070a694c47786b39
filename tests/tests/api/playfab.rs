//! PlayFab's client API: `LoginWithCustomID` (a title id names the tenant)
//! and the legacy `GetUserInventory`, against the shapes of PlayFab's public
//! pages: `{"code": 200, "status": "OK", "data"}` and the `ApiErrorWrapper`.

use crate::helpers::{As, Reply, Tenant, TestApp, spawn_app};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

pub async fn title_id(app: &TestApp, slug: &str) -> String {
    let id: uuid::Uuid = match slug {
        "game" => app.pool.scalar("SELECT id FROM tenants WHERE slug = 'game'").await,
        _ => app.pool.scalar("SELECT id FROM tenants WHERE slug = 'other'").await,
    };
    id.to_string()
}

async fn playfab(app: &TestApp, path: &str, ticket: Option<&str>, body: Value) -> Reply {
    let headers: Vec<(&str, &str)> = ticket.map(|ticket| ("X-Authorization", ticket)).into_iter().collect();
    post(app, path, &headers, body).await
}

/// A POST to a PlayFab route with these headers.
pub async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut request = app.http.post(format!("{}{path}", app.address)).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Reply { status, body: response.json().await.expect("a JSON body"), headers }
}

pub async fn login(app: &TestApp, title: &str, custom_id: &str, create: bool) -> Reply {
    let body = json!({"TitleId": title, "CustomId": custom_id, "CreateAccount": create});
    playfab(app, "/Client/LoginWithCustomID", None, body).await
}

/// A PlayFab success's `data`.
pub fn data(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!((&reply.body["code"], &reply.body["status"]), (&json!(200), &json!("OK")), "{}", reply.body);
    &reply.body["data"]
}

/// A PlayFab `ApiErrorWrapper` with this status, name and number.
pub fn assert_playfab_error(reply: &Reply, status: u16, error: &str, number: u32) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["code"], status, "{}", reply.body);
    assert!(reply.body["status"].as_str().is_some_and(|s| !s.is_empty() && !s.contains(' ')), "{}", reply.body);
    assert_eq!((&reply.body["error"], &reply.body["errorCode"]), (&json!(error), &json!(number)), "{}", reply.body);
    assert!(reply.body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{}", reply.body);
}

#[tokio::test]
async fn login_with_custom_id_gives_a_ticket_and_creates_only_when_asked() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("game").await;
    let title = title_id(&app, "game").await;

    assert_playfab_error(&login(&app, &title, "device-7f3a9c", false).await, 400, "AccountNotFound", 1001);
    let first = login(&app, &title, "device-7f3a9c", true).await;
    let created = data(&first).clone();
    assert_eq!(created["NewlyCreated"], true);
    let ticket = created["SessionTicket"].as_str().expect("a session ticket");
    assert!(ticket.starts_with(&format!("{title}.")), "{ticket}");
    assert_eq!(
        created["EntityToken"]["Entity"],
        json!({"Id": created["PlayFabId"], "Type": "title_player_account", "TypeString": "title_player_account"})
    );
    assert!(created["EntityToken"]["EntityToken"].is_string());
    chrono::DateTime::parse_from_rfc3339(created["EntityToken"]["TokenExpiration"].as_str().unwrap()).unwrap();
    let again = login(&app, &title, "device-7f3a9c", false).await;
    assert_eq!(data(&again)["NewlyCreated"], false);
    assert_eq!(data(&again)["PlayFabId"], created["PlayFabId"], "the same player");
    assert_ne!(data(&again)["SessionTicket"], created["SessionTicket"], "a new session");

    // The same custom id through the native login names the same player.
    let native = app.login(&tenant, "device-7f3a9c").await;
    assert_eq!(json!(native.user_id), created["PlayFabId"]);

    let missing = playfab(&app, "/Client/LoginWithCustomID", None, json!({"TitleId": title})).await;
    assert_playfab_error(&missing, 400, "InvalidParams", 1000);
    let missing = playfab(&app, "/Client/LoginWithCustomID", None, json!({"CustomId": "device-1"})).await;
    assert_playfab_error(&missing, 400, "InvalidParams", 1000);
    assert_playfab_error(&login(&app, "not-a-title", "device-1", true).await, 400, "InvalidTitleId", 1004);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_playfab_error(&login(&app, &unknown, "device-1", true).await, 400, "InvalidTitleId", 1004);
    assert_playfab_error(&login(&app, &title, "", true).await, 400, "InvalidParams", 1000);

    let off = json!({"custom_id_login": false});
    app.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(off)).await.assert_ok();
    assert_playfab_error(&login(&app, &title, "device-7f3a9c", true).await, 403, "NotAuthorized", 1089);
}

#[tokio::test]
async fn racing_first_logins_with_one_custom_id_make_one_player() {
    let app = spawn_app().await;
    app.create_tenant("game").await;
    let title = title_id(&app, "game").await;
    let replies = join_all((0..16).map(|_| login(&app, &title, "device-race", true))).await;
    let players: Vec<&Value> = replies.iter().map(|reply| &data(reply)["PlayFabId"]).collect();
    assert!(players.iter().all(|player| *player == players[0]), "{players:?}");
    let created = replies.iter().filter(|reply| reply.body["data"]["NewlyCreated"] == true).count();
    assert_eq!(created, 1, "exactly one login made the player");
    let users: i64 = app.pool.scalar("SELECT count(*) FROM users").await;
    assert_eq!(users, 1);
}

/// Gems (1,000) and regenerating energy (0, one a minute up to 5); a
/// consumable potion (class `potions`, 10 gems), a sword (100), a boost
/// lasting an hour (5), a flash lasting one second (1), and a chest
/// bundle (50: two potions and a sword).
pub async fn legacy_shop(app: &TestApp) -> Tenant {
    let tenant = app.create_tenant("game").await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": 1_000})).await;
    let energy = json!({"name": "Energy", "max_balance": 5, "recharge": {"amount": 1, "period_seconds": 60, "max": 5}});
    app.put_currency(&tenant, "energy", energy).await;
    let price = |gems: i64| json!([{"currency_code": "gems", "amount": gems}]);
    let potion = json!({"name": "Potion", "item_type": "consumable", "category": "potions", "prices": price(10)});
    app.put_item(&tenant, "potion", potion).await;
    app.put_item(&tenant, "sword", json!({"name": "Sword", "item_type": "durable", "prices": price(100)})).await;
    let boost = json!({"name": "Boost", "item_type": "durable", "duration_seconds": 3600, "prices": price(5)});
    app.put_item(&tenant, "boost", boost).await;
    let flash = json!({"name": "Flash", "item_type": "durable", "duration_seconds": 1, "prices": price(1)});
    app.put_item(&tenant, "flash", flash).await;
    let chest = json!({"name": "Chest", "item_type": "bundle", "prices": price(50),
        "contents": [{"item_key": "potion", "quantity": 2}, {"item_key": "sword", "quantity": 1}]});
    app.put_item(&tenant, "chest", chest).await;
    tenant
}

#[tokio::test]
async fn get_user_inventory_lists_instances_balances_and_recharges() {
    let app = spawn_app().await;
    let tenant = legacy_shop(&app).await;
    let title = title_id(&app, "game").await;
    let login = login(&app, &title, "device-inv", true).await;
    let ticket = data(&login)["SessionTicket"].as_str().unwrap().to_owned();
    let player = app.login(&tenant, "device-inv").await;
    let id = |key: &str| {
        let key = key.to_owned();
        let app = &app;
        let tenant = &tenant;
        async move {
            let reply =
                app.call(Method::GET, &format!("/admin/catalog/items/{key}"), As::Key(&tenant.admin_key), None).await;
            reply.assert_ok()["id"].as_str().unwrap().to_owned()
        }
    };
    let buy = |item: String, quantity: i64| {
        app.purchase(&tenant, &player, json!({"catalog_item_id": item, "currency_code": "gems", "quantity": quantity}))
    };
    buy(id("potion").await, 3).await.assert_ok();
    buy(id("sword").await, 1).await.assert_ok();
    buy(id("boost").await, 1).await.assert_ok();
    buy(id("chest").await, 1).await.assert_ok();
    buy(id("flash").await, 1).await.assert_ok();
    let repriced = json!({"name": "Potion", "item_type": "consumable", "category": "potions",
        "prices": [{"currency_code": "gems", "amount": 12}]});
    app.put_item(&tenant, "potion", repriced).await;
    buy(id("potion").await, 1).await.assert_ok();
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let inventory = playfab(&app, "/Client/GetUserInventory", Some(&ticket), json!({})).await;
    let got = data(&inventory).clone();
    let instances = got["Inventory"].as_array().expect("Inventory").clone();
    let instance = |key: &str| instances.iter().find(|i| i["ItemId"] == key).cloned();
    assert!(instance("flash").is_none(), "an expired stack is left out: {instances:?}");
    let chest = instance("chest").expect("the bundle's own instance");
    assert_eq!(chest["BundleContents"], json!(["potion", "sword"]));
    assert_eq!((&chest["UnitPrice"], &chest["UnitCurrency"]), (&json!(50), &json!("gems")));
    assert_eq!(instances.len(), 4, "{instances:?}");

    let potion = instance("potion").expect("the potions");
    assert_eq!(potion["RemainingUses"], 6, "3 bought, 2 from the chest, 1 more");
    assert_eq!((&potion["UnitPrice"], &potion["UnitCurrency"]), (&json!(12), &json!("gems")), "the latest price paid");
    assert_eq!((&potion["ItemClass"], &potion["DisplayName"]), (&json!("potions"), &json!("Potion")));
    assert!(potion.get("Expiration").is_none());
    let sword = instance("sword").expect("the swords");
    assert_eq!(sword["RemainingUses"], 2, "a durable held twice says so");
    assert_eq!(sword["UnitPrice"], 100);
    assert!(sword.get("ItemClass").is_none(), "no class, no field");
    let boost = instance("boost").expect("the boost");
    assert!(boost.get("RemainingUses").is_none(), "a single durable has no uses");
    let expires = chrono::DateTime::parse_from_rfc3339(boost["Expiration"].as_str().unwrap()).unwrap();
    let bought = chrono::DateTime::parse_from_rfc3339(boost["PurchaseDate"].as_str().unwrap()).unwrap();
    assert_eq!((expires - bought).num_seconds(), 3600);
    let ids: std::collections::HashSet<&str> =
        instances.iter().map(|i| i["ItemInstanceId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "instance ids are distinct");
    assert!(potion.get("BundleParent").is_none(), "the potions' stack was bought before the chest");

    let spent = 3 * 10 + 100 + 5 + 50 + 1 + 12;
    assert_eq!(got["VirtualCurrency"], json!({"gems": 1_000 - spent, "energy": 0}));
    let energy = &got["VirtualCurrencyRechargeTimes"]["energy"];
    assert_eq!(energy["RechargeMax"], 5);
    let seconds = energy["SecondsToRecharge"].as_i64().unwrap();
    assert!((0..=60).contains(&seconds), "{energy}");
    chrono::DateTime::parse_from_rfc3339(energy["RechargeTime"].as_str().unwrap()).unwrap();
    assert!(got["VirtualCurrencyRechargeTimes"].get("gems").is_none(), "gems do not regenerate");

    // Stacks a bundle created name it as their parent.
    let login_b = crate::playfab::login(&app, &title, "device-chest", true).await;
    let ticket_b = data(&login_b)["SessionTicket"].as_str().unwrap().to_owned();
    let player_b = app.login(&tenant, "device-chest").await;
    let bought =
        app.purchase(&tenant, &player_b, json!({"catalog_item_id": id("chest").await, "currency_code": "gems"})).await;
    let purchase_id = bought.assert_ok()["purchase_id"].clone();
    let inventory_b = playfab(&app, "/Client/GetUserInventory", Some(&ticket_b), json!({})).await;
    let instances_b = data(&inventory_b)["Inventory"].as_array().unwrap().clone();
    assert_eq!(instances_b.len(), 3, "{instances_b:?}");
    let chest_b = instances_b.iter().find(|i| i["ItemId"] == "chest").unwrap();
    assert_eq!(chest_b["ItemInstanceId"], purchase_id);
    for key in ["potion", "sword"] {
        let stack = instances_b.iter().find(|i| i["ItemId"] == key).unwrap();
        assert_eq!(stack["BundleParent"], purchase_id, "{stack}");
    }

    // A stack used up is left out.
    app.consume(&tenant, &player, &id("potion").await, 6).await.assert_ok();
    let inventory = playfab(&app, "/Client/GetUserInventory", Some(&ticket), json!({})).await;
    assert!(data(&inventory)["Inventory"].as_array().unwrap().iter().all(|i| i["ItemId"] != "potion"));
}

#[tokio::test]
async fn a_ticket_is_checked_within_its_tenant() {
    let app = spawn_app().await;
    legacy_shop(&app).await;
    app.create_tenant("other").await;
    let title = title_id(&app, "game").await;
    let other = title_id(&app, "other").await;
    let login = login(&app, &title, "device-a", true).await;
    let ticket = data(&login)["SessionTicket"].as_str().unwrap().to_owned();
    let token = ticket.split_once('.').unwrap().1;

    let path = "/Client/GetUserInventory";
    assert_playfab_error(&playfab(&app, path, None, json!({})).await, 401, "NotAuthenticated", 1074);
    for forged in [
        "garbage".to_owned(),
        format!("{other}.{token}"),
        format!("{}.{token}", uuid::Uuid::now_v7()),
        format!("{title}.es_not-a-session"),
        format!("{title}.{token}x"),
    ] {
        assert_playfab_error(&playfab(&app, path, Some(&forged), json!({})).await, 401, "NotAuthenticated", 1074);
    }
    data(&playfab(&app, path, Some(&ticket), json!({})).await);
}
