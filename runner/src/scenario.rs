//! Scenarios as data: a catalog written as the economy server's admin API
//! takes it, a player's steps (purchases, quotes, consumes) with what each
//! must answer, and what the player holds at the end. The same files are
//! run by this runner, by the server's HTTP tests and by every embedder, and
//! must give the same answers everywhere.
//!
//! An answer is a JSON object: the fields of a success (`unit_price`,
//! `total`, `balance_after` for a purchase; `unit_price`, `total`,
//! `purchasable` for a quote; `remaining` for a consume), or `{"error":
//! CODE}` with the API error code. An expectation names some of those
//! fields; each must be equal in the answer.

use crate::bindings::PurchaseRequest;
use crate::bindings::types::{self, Currency, Item, ItemType, Listing};
use crate::call::{Report, Runner};
use crate::memory::{Catalog, Memory, Store};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The player every scenario's steps act for.
pub const PLAYER: &str = "00000000-0000-4000-8000-00000000000a";
/// The id steps use for a key the catalog does not have.
pub const UNKNOWN_ID: &str = "00000000-0000-4000-8000-0000000000ff";
/// The time of a scenario that does not set one.
pub const DEFAULT_NOW_MS: i64 = 1_767_225_600_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    /// The rules the scenario is written for: the name of an example module
    /// (`vip-pricing`), or none for the built-in rules. A harness runs the
    /// scenario with that module.
    #[serde(default)]
    pub rules: Option<String>,
    /// The time of every step (milliseconds since the Unix epoch).
    #[serde(default)]
    pub now_ms: Option<i64>,
    /// The tenant's module settings (`module_settings` of `PUT
    /// /admin/settings`).
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// Who the player is to the game.
    #[serde(default)]
    pub player: PlayerSpec,
    /// `PUT /admin/currencies/{code}` bodies, with their `code`.
    pub currencies: Vec<Value>,
    /// `PUT /admin/catalog/items/{key}` bodies, with their `key`, in an
    /// order where contents come before their bundles.
    pub items: Vec<Value>,
    /// `PUT /admin/stores/{key}` bodies, with their `key`.
    #[serde(default)]
    pub stores: Vec<Value>,
    pub steps: Vec<Step>,
    /// What the player holds after the last step.
    #[serde(default)]
    pub end: Option<End>,
}

/// The player's identity (`PUT /server/users/{identity}/...`) and the
/// attributes the game server set on it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayerSpec {
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    pub expect: Value,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Purchase(Purchase),
    Quote(Purchase),
    Consume(Consume),
}

/// A purchase or a quote, naming things by key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purchase {
    pub item: String,
    pub currency_code: String,
    #[serde(default)]
    pub store: Option<String>,
    #[serde(default = "one")]
    pub quantity: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consume {
    pub item: String,
    #[serde(default = "one")]
    pub quantity: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// Balances by currency code.
    #[serde(default)]
    pub balances: BTreeMap<String, i64>,
    /// Quantities held by item key.
    #[serde(default)]
    pub holdings: BTreeMap<String, u64>,
}

fn one() -> u64 {
    1
}

impl Scenario {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }

    /// Every scenario (`*.json`) in `dir`, by file name.
    pub fn all_in(dir: &Path) -> anyhow::Result<Vec<(String, Self)>> {
        let mut paths: Vec<_> =
            std::fs::read_dir(dir)?.map(|entry| entry.map(|entry| entry.path())).collect::<Result<_, _>>()?;
        paths.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                Ok((name, Self::from_file(&path)?))
            })
            .collect()
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms.unwrap_or(DEFAULT_NOW_MS)
    }

    /// The catalog, with ids the runner gives (`…-0000000000NN`).
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        let id = |kind: u8, n: usize| format!("00000000-0000-4000-8{kind:03x}-{n:012x}");
        let currencies = self
            .currencies
            .iter()
            .map(|body| {
                Ok(Currency {
                    code: text(body, "code")?,
                    name: text(body, "name")?,
                    initial_balance: body["initial_balance"].as_i64().unwrap_or(0),
                    max_balance: body["max_balance"].as_i64(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let items: Vec<Item> =
            self.items.iter().enumerate().map(|(n, body)| item(id(1, n), body)).collect::<anyhow::Result<_>>()?;
        let stores = self
            .stores
            .iter()
            .enumerate()
            .map(|(n, body)| {
                let store_id = id(2, n);
                let listings = body["listings"].as_array().cloned().unwrap_or_default();
                let listings = listings
                    .iter()
                    .filter_map(|listing| {
                        let item = items.iter().find(|item| listing["item_key"] == item.key.as_str())?;
                        Some(Listing {
                            store_id: store_id.clone(),
                            store_key: body["key"].as_str().unwrap_or_default().to_owned(),
                            item_id: item.id.clone(),
                            override_prices: prices(&listing["override_prices"]),
                            max_purchases_per_user: listing["max_purchases_per_user"].as_u64(),
                            purchasable: listing["purchasable"].as_bool().unwrap_or(true),
                        })
                    })
                    .collect();
                Ok(Store { id: store_id, key: text(body, "key")?, listings })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Catalog { items, stores, currencies })
    }
}

fn text(body: &Value, field: &str) -> anyhow::Result<String> {
    body[field].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{field} is required in {body}"))
}

fn prices(value: &Value) -> Vec<types::Price> {
    let prices = value.as_array().cloned().unwrap_or_default();
    prices
        .iter()
        .map(|price| types::Price {
            currency_code: price["currency_code"].as_str().unwrap_or_default().to_owned(),
            amount: price["amount"].as_i64().unwrap_or(0),
        })
        .collect()
}

fn item(id: String, body: &Value) -> anyhow::Result<Item> {
    let item_type = match body["item_type"].as_str() {
        Some("consumable") => ItemType::Consumable,
        Some("durable") => ItemType::Durable,
        Some("bundle") => ItemType::Bundle,
        other => anyhow::bail!("unknown item_type {other:?}"),
    };
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    let contents = contents
        .iter()
        .map(|content| match (content["item_key"].as_str(), content["currency_code"].as_str()) {
            (Some(item_key), _) => types::Content::Item(types::ItemQuantity {
                item_key: item_key.to_owned(),
                quantity: content["quantity"].as_u64().unwrap_or(1),
            }),
            (None, _) => types::Content::Currency(prices(&json!([content])).remove(0)),
        })
        .collect();
    let display_properties = match &body["display_properties"] {
        Value::Null => "{}".to_owned(),
        properties => properties.to_string(),
    };
    Ok(Item {
        id,
        key: text(body, "key")?,
        name: text(body, "name")?,
        item_type,
        category: body["category"].as_str().map(str::to_owned),
        prices: prices(&body["prices"]),
        contents,
        duration_seconds: body["duration_seconds"].as_u64(),
        display_properties,
    })
}

/// Whether `answer` has every field `expected` names, equal.
pub fn matches(expected: &Value, answer: &Value) -> bool {
    match (expected, answer) {
        (Value::Object(expected), Value::Object(answer)) => {
            expected.iter().all(|(field, value)| answer.get(field) == Some(value))
        }
        _ => false,
    }
}

/// What one step did, against what it should have.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The step, in words.
    pub step: String,
    pub expected: Value,
    pub answer: Value,
    pub fuel_used: u64,
    pub memory_bytes: usize,
}

impl StepOutcome {
    pub fn passed(&self) -> bool {
        matches(&self.expected, &self.answer)
    }
}

/// What a scenario did: each step, and the player's end against `end`.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub steps: Vec<StepOutcome>,
    /// `(what, expected, found)` for every end figure that differs.
    pub end_differences: Vec<(String, i64, i64)>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(StepOutcome::passed) && self.end_differences.is_empty()
    }
}

impl Step {
    /// The step in words, the same from every embedder.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Purchase(p) | Action::Quote(p) => {
                let verb = if matches!(self.action, Action::Purchase(_)) { "purchase" } else { "quote" };
                let store = p.store.as_deref().map(|store| format!(" in {store}")).unwrap_or_default();
                format!("{verb} {} × {} in {}{store}", p.quantity, p.item, p.currency_code)
            }
            Action::Consume(c) => format!("consume {} × {}", c.quantity, c.item),
        }
    }
}

/// The answer of a call as a scenario writes it.
fn answer<T>(report: &Report<T>, fields: impl FnOnce(&T) -> Value) -> Value {
    match &report.result {
        Ok(value) => fields(value),
        Err(failure) => json!({ "error": failure.code() }),
    }
}

/// Runs `scenario` against the component of `runner`, in a fresh memory.
pub fn run(runner: &Runner, scenario: &Scenario) -> anyhow::Result<Outcome> {
    let mut memory = Memory::new(scenario.catalog()?);
    memory.settings = Arc::new(scenario.settings.clone());
    memory.set_player(PLAYER, scenario.player.identity.clone(), scenario.player.attributes.clone());
    let now_ms = scenario.now_ms();
    let id_of = |memory: &Memory, key: &str| {
        memory.catalog.item_by_key(key).map_or(UNKNOWN_ID.to_owned(), |item| item.id.clone())
    };
    let mut steps = Vec::new();
    for step in &scenario.steps {
        let (answer, fuel_used, memory_bytes) = match &step.action {
            Action::Purchase(p) | Action::Quote(p) => {
                let store_id = p.store.as_deref().map(|key| {
                    memory.catalog.store_by_key(key).map_or(UNKNOWN_ID.to_owned(), |store| store.id.clone())
                });
                let request = PurchaseRequest {
                    item_id: id_of(&memory, &p.item),
                    currency_code: p.currency_code.clone(),
                    store_id,
                    quantity: p.quantity,
                };
                match step.action {
                    Action::Purchase(_) => {
                        let report = runner.purchase(&mut memory, PLAYER, &request, now_ms);
                        let fields = |o: &crate::bindings::PurchaseOutcome| json!({"unit_price": o.unit_price, "total": o.total, "balance_after": o.balance_after});
                        (answer(&report, fields), report.fuel_used, report.memory_bytes)
                    }
                    _ => {
                        let report = runner.quote(&memory, PLAYER, &request, now_ms);
                        let fields = |q: &crate::bindings::PriceQuote| json!({"unit_price": q.unit_price, "total": q.total, "purchasable": q.purchasable});
                        (answer(&report, fields), report.fuel_used, report.memory_bytes)
                    }
                }
            }
            Action::Consume(c) => {
                let item_id = id_of(&memory, &c.item);
                let report = runner.consume(&mut memory, PLAYER, &item_id, c.quantity, now_ms);
                (answer(&report, |remaining| json!({ "remaining": remaining })), report.fuel_used, report.memory_bytes)
            }
        };
        steps.push(StepOutcome {
            step: step.describe(),
            expected: step.expect.clone(),
            answer,
            fuel_used,
            memory_bytes,
        });
    }
    let end = scenario.end.clone().unwrap_or_default();
    let mut end_differences = Vec::new();
    for (code, expected) in &end.balances {
        let found = memory.balance(PLAYER, code).unwrap_or(0);
        if found != *expected {
            end_differences.push((format!("balance {code}"), *expected, found));
        }
    }
    for (key, expected) in &end.holdings {
        let found = memory.held(PLAYER, key, now_ms);
        if found != *expected {
            end_differences.push((format!("holding {key}"), *expected as i64, found as i64));
        }
    }
    Ok(Outcome { steps, end_differences })
}

/// The fields a step's answer object has, for printing.
pub fn fields(answer: &Value) -> String {
    match answer {
        Value::Object(fields) => fields.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
