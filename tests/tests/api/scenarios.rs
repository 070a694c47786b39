//! The shared scenarios (`scenarios/*.json`), through the server's native
//! HTTP API: the same catalog written with the admin API, the module
//! settings and the player's attributes as the admin and the game server
//! set them, the same steps as a game client makes them, the same answers
//! expected as from every other embedder of the rules. Quotes go through
//! the admin's dry run of the tenant's rules, for the same player.

use crate::helpers::{As, Player, Reply, Tenant, TestApp, spawn_app};

use economy_runner::scenario::{self, Action, Scenario};
use economy_tests::components::VIP_PRICING;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// A scenario's tenant: its catalog ids by key, and its player.
struct Played<'a> {
    app: &'a TestApp,
    tenant: Tenant,
    player: Player,
    items: HashMap<String, String>,
    stores: HashMap<String, String>,
    /// The SHA-256 of the rules the tenant runs.
    rules: String,
}

impl Played<'_> {
    fn item(&self, key: &str) -> &str {
        self.items.get(key).map_or(scenario::UNKNOWN_ID, String::as_str)
    }

    fn store(&self, key: &str) -> &str {
        self.stores.get(key).map_or(scenario::UNKNOWN_ID, String::as_str)
    }

    /// The answer as a scenario writes it.
    fn answer(reply: &Reply, fields: impl FnOnce(&Value) -> Value) -> Value {
        match reply.status {
            200 => fields(reply.data()),
            _ => json!({ "error": reply.body["error"]["code"] }),
        }
    }

    async fn step(&self, action: &Action) -> Value {
        let session = As::Session(&self.tenant.client_key, &self.player);
        match action {
            Action::Purchase(p) => {
                let mut body = json!({"catalog_item_id": self.item(&p.item), "currency_code": p.currency_code, "quantity": p.quantity});
                if let Some(store) = &p.store {
                    body["store_id"] = json!(self.store(store));
                }
                let reply = self.app.call(Method::POST, "/client/inventory/purchase", session, Some(body)).await;
                let quantity = p.quantity as i64;
                Self::answer(&reply, |data| {
                    let total = data["price"].as_i64().expect("a total");
                    json!({"unit_price": total / quantity, "total": total, "balance_after": data["balance_after"]})
                })
            }
            Action::Quote(p) => {
                let mut body = json!({"catalog_item_id": self.item(&p.item), "currency_code": p.currency_code,
                    "quantity": p.quantity, "identity": self.player.identity});
                if let Some(store) = &p.store {
                    body["store_id"] = json!(self.store(store));
                }
                let path = format!("/admin/modules/{}/quote", self.rules);
                let reply = self.app.call(Method::POST, &path, As::Key(&self.tenant.admin_key), Some(body)).await;
                let run = reply.assert_ok();
                match &run["error"] {
                    Value::Null => run["quote"].clone(),
                    error => json!({ "error": error["code"] }),
                }
            }
            Action::Consume(c) => {
                let reply = self.app.consume(&self.tenant, &self.player, self.item(&c.item), c.quantity as i64).await;
                Self::answer(&reply, |data| json!({ "remaining": data["quantity"] }))
            }
        }
    }
}

/// Writes the scenario's catalog for a new tenant and signs its player in.
async fn set_up<'a>(app: &'a TestApp, name: &str, scenario: &Scenario) -> Played<'a> {
    let tenant = app.create_tenant(name).await;
    let without = |body: &Value, field: &str| {
        let mut body = body.clone();
        let value = body.as_object_mut().and_then(|fields| fields.remove(field));
        (value.and_then(|value| value.as_str().map(str::to_owned)).expect("a key"), body)
    };
    for currency in &scenario.currencies {
        let (code, body) = without(currency, "code");
        app.put_currency(&tenant, &code, body).await;
    }
    let mut items = HashMap::new();
    for item in &scenario.items {
        let (key, body) = without(item, "key");
        items.insert(key.clone(), app.put_item(&tenant, &key, body).await);
    }
    let mut stores = HashMap::new();
    for store in &scenario.stores {
        let (key, body) = without(store, "key");
        stores.insert(key.clone(), app.put_store(&tenant, &key, body).await);
    }
    let admin = As::Key(&tenant.admin_key);
    if !scenario.settings.is_empty() {
        let body = json!({ "module_settings": scenario.settings });
        app.call(Method::PUT, "/admin/settings", admin, Some(body)).await.assert_ok();
    }
    let identity = scenario.player.identity.as_deref().unwrap_or("player-1");
    let server = As::Key(&tenant.server_key);
    if !scenario.player.attributes.is_empty() {
        let (path, body) =
            (format!("/server/users/{identity}/attributes"), Value::from(scenario.player.attributes.clone()));
        app.call(Method::PUT, &path, server, Some(body)).await.assert_ok();
    }
    let session = app.call(Method::POST, &format!("/server/users/{identity}/sessions"), server, None).await;
    let session = session.assert_ok();
    let player = Player {
        token: session["session_token"].as_str().expect("a token").to_owned(),
        user_id: session["app_user_id"].as_str().expect("a user id").to_owned(),
        identity: identity.to_owned(),
    };
    let rules = match scenario.rules.as_deref() {
        Some("vip-pricing") => app.activate(&tenant, VIP_PRICING).await,
        Some(other) => panic!("no example module {other}"),
        None => {
            let modules = app.call(Method::GET, "/admin/modules", admin, None).await;
            let modules = modules.assert_ok().as_array().expect("a list").clone();
            let builtin = modules.iter().find(|m| m["builtin"] == true).expect("the built-in rules are listed");
            builtin["sha256"].as_str().expect("a hash").to_owned()
        }
    };
    Played { app, tenant, player, items, stores, rules }
}

#[tokio::test]
async fn every_shared_scenario_answers_through_http_as_the_scenario_says() {
    let app = spawn_app().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let scenarios = Scenario::all_in(&dir).expect("the scenarios read");
    assert!(scenarios.len() >= 7, "the scenarios are found");
    let mut failures = Vec::new();
    for (name, scenario) in &scenarios {
        assert!(scenario.now_ms.is_none(), "{name}: a server runs at its own time");
        let played = set_up(&app, name, scenario).await;
        for step in &scenario.steps {
            let answer = played.step(&step.action).await;
            if !scenario::matches(&step.expect, &answer) {
                failures.push(format!("{name}: {}: expected {}, answered {answer}", step.describe(), step.expect));
            }
        }
        let end = scenario.end.clone().unwrap_or_default();
        for (code, expected) in &end.balances {
            let found = app.balance(&played.tenant, &played.player, code).await;
            if found != *expected {
                failures.push(format!("{name}: balance {code} is {found}, not {expected}"));
            }
        }
        for (key, expected) in &end.holdings {
            let found = match played.items.get(key) {
                Some(id) => app.quantity(&played.tenant, &played.player, id).await,
                None => 0,
            };
            if found != *expected as i64 {
                failures.push(format!("{name}: holding {key} is {found}, not {expected}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
