//! `/admin/*`: a tenant's currencies, catalog and stores. Writes are
//! upserts by key and are validated against the rest of the catalog:
//! prices name existing currencies, bundles name existing items and never
//! contain themselves, listings name existing items.

use super::error::ApiError;
use super::extract::{AdminKey, ApiJson, ApiPath, Data, Saved};
use super::{AppState, applied};
use crate::catalog::{rules_contents, rules_item, rules_item_type};
use crate::domain::{self, CatalogKey, CurrencyCode, MAX_AMOUNT, MAX_GRANTED_ITEMS, MAX_QUANTITY, Name};
use crate::storage::{
    CatalogItem, Content, Currency, ItemType, Listing, NewCurrency, NewItem, Price, Recharge, Store, TenantSettings,
};
use axum::extract::State;
use economy_core::bundle;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The longest a granted stack may live: 100 years.
const MAX_DURATION_SECONDS: i64 = 100 * 366 * 24 * 3600;
/// The longest recharge period: a year.
const MAX_RECHARGE_PERIOD_SECONDS: i64 = 366 * 24 * 3600;
/// The highest per-user cap a listing may have.
const MAX_PURCHASE_CAP: u64 = 1_000_000_000_000;
/// The most listings one store may have.
const MAX_LISTINGS: usize = 1_000;
/// The most prices or contents one item may have.
const MAX_ENTRIES: usize = 100;
/// The longest free-text field (URL, category).
const MAX_TEXT_CHARS: usize = 2_048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencyBody {
    name: String,
    #[serde(default)]
    initial_balance: i64,
    max_balance: Option<i64>,
    recharge: Option<Recharge>,
}

pub async fn put_currency(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<CurrencyBody>,
) -> Result<Saved<Currency>, ApiError> {
    let code = CurrencyCode::try_from(code)?;
    let initial_balance = domain::amount("initial_balance", body.initial_balance)?;
    let max_balance = body.max_balance.map(|max| domain::amount("max_balance", max)).transpose()?;
    if max_balance.is_some_and(|max| initial_balance > max) {
        return Err(ApiError::validation("initial_balance must not exceed max_balance"));
    }
    if let Some(recharge) = &body.recharge {
        check_recharge(recharge, max_balance)?;
    }
    let currency = NewCurrency {
        code: code.into_inner(),
        name: Name::try_from(body.name)?.into_inner(),
        initial_balance,
        max_balance,
        recharge: body.recharge,
    };
    let currency = state.storage.put_currency(tenant_id, &currency).await?;
    Ok(applied(&state, tenant_id, currency).await)
}

pub async fn list_currencies(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<Currency>>, ApiError> {
    Ok(Data(state.storage.currencies(tenant_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    name: String,
    icon_url: Option<String>,
    item_type: ItemType,
    category: Option<String>,
    display_properties: Option<Value>,
    #[serde(default)]
    prices: Vec<Price>,
    #[serde(default)]
    contents: Vec<Content>,
    duration_seconds: Option<i64>,
}

pub async fn put_item(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<Saved<CatalogItem>, ApiError> {
    let key = CatalogKey::try_from(key)?;
    let currencies = currency_codes(&state, tenant_id).await?;
    check_prices("prices", &body.prices, &currencies)?;
    let display_properties = body.display_properties.unwrap_or_else(|| Value::Object(Default::default()));
    if !display_properties.is_object() {
        return Err(ApiError::validation("display_properties must be a JSON object"));
    }
    if body.duration_seconds.is_some_and(|d| !(1..=MAX_DURATION_SECONDS).contains(&d)) {
        return Err(ApiError::validation(format!("duration_seconds must be between 1 and {MAX_DURATION_SECONDS}")));
    }
    let item = NewItem {
        key: key.into_inner(),
        name: Name::try_from(body.name)?.into_inner(),
        icon_url: text("icon_url", body.icon_url)?,
        item_type: body.item_type,
        category: text("category", body.category)?,
        display_properties,
        prices: body.prices,
        contents: body.contents,
        duration_seconds: body.duration_seconds,
    };
    let check = |items: &[CatalogItem]| check_contents(&item, items, &currencies);
    let item = state.storage.put_item(tenant_id, &item, &check).await?.map_err(ApiError::Validation)?;
    Ok(applied(&state, tenant_id, item).await)
}

pub async fn list_items(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<CatalogItem>>, ApiError> {
    Ok(Data(state.storage.items(tenant_id).await?))
}

pub async fn get_item(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Data<CatalogItem>, ApiError> {
    let item = state.storage.item_by_key(tenant_id, &key).await?;
    Ok(Data(item.ok_or_else(|| ApiError::not_found("item"))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreBody {
    name: String,
    #[serde(default)]
    listings: Vec<Listing>,
}

pub async fn put_store(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<StoreBody>,
) -> Result<Saved<Store>, ApiError> {
    let key = CatalogKey::try_from(key)?;
    let name = Name::try_from(body.name)?;
    if body.listings.len() > MAX_LISTINGS {
        return Err(ApiError::validation(format!("a store has at most {MAX_LISTINGS} listings")));
    }
    let currencies = currency_codes(&state, tenant_id).await?;
    let items: HashSet<String> = state.storage.items(tenant_id).await?.into_iter().map(|item| item.key).collect();
    let mut listed = HashSet::new();
    for listing in &body.listings {
        if !items.contains(&listing.item_key) {
            return Err(ApiError::validation(format!("listing names unknown item {:?}", listing.item_key)));
        }
        if !listed.insert(&listing.item_key) {
            return Err(ApiError::validation(format!("item {:?} is listed twice", listing.item_key)));
        }
        if let Some(prices) = &listing.override_prices {
            check_prices("override_prices", prices, &currencies)?;
        }
        if listing.max_purchases_per_user.is_some_and(|cap| !(1..=MAX_PURCHASE_CAP).contains(&cap)) {
            return Err(ApiError::validation(format!(
                "max_purchases_per_user must be between 1 and {MAX_PURCHASE_CAP}"
            )));
        }
    }
    let store = state.storage.put_store(tenant_id, key.as_str(), name.as_str(), &body.listings).await?;
    Ok(applied(&state, tenant_id, store).await)
}

pub async fn get_store(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Data<Store>, ApiError> {
    let store = state.storage.store_by_key(tenant_id, &key).await?;
    Ok(Data(store.ok_or_else(|| ApiError::not_found("store"))?))
}

/// The tenant's settings.
pub async fn get_settings(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<TenantSettings>, ApiError> {
    Ok(Data(state.rules.for_tenant(tenant_id).await?.settings().clone()))
}

/// Replaces the tenant's settings; a setting left out takes its default.
pub async fn put_settings(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiJson(settings): ApiJson<TenantSettings>,
) -> Result<Saved<TenantSettings>, ApiError> {
    state.storage.set_settings(tenant_id, &settings).await?;
    Ok(applied(&state, tenant_id, settings).await)
}

async fn currency_codes(state: &AppState, tenant_id: uuid::Uuid) -> Result<HashSet<String>, ApiError> {
    Ok(state.storage.currencies(tenant_id).await?.into_iter().map(|c| c.code).collect())
}

fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            Err(ApiError::validation(format!("{field} is longer than {MAX_TEXT_CHARS} characters")))
        }
        other => Ok(other),
    }
}

/// A recharge gains 1 to [`MAX_AMOUNT`] every 1 to
/// [`MAX_RECHARGE_PERIOD_SECONDS`], up to a max of at least 1 that is no
/// higher than the currency's `max_balance`.
fn check_recharge(recharge: &Recharge, max_balance: Option<i64>) -> Result<(), ApiError> {
    if !(1..=MAX_AMOUNT).contains(&recharge.amount) {
        return Err(ApiError::validation(format!("recharge.amount must be between 1 and {MAX_AMOUNT}")));
    }
    if !(1..=MAX_RECHARGE_PERIOD_SECONDS).contains(&recharge.period_seconds) {
        return Err(ApiError::validation(format!(
            "recharge.period_seconds must be between 1 and {MAX_RECHARGE_PERIOD_SECONDS}"
        )));
    }
    if !(1..=MAX_AMOUNT).contains(&recharge.max) {
        return Err(ApiError::validation(format!("recharge.max must be between 1 and {MAX_AMOUNT}")));
    }
    if max_balance.is_some_and(|max_balance| recharge.max > max_balance) {
        return Err(ApiError::validation("recharge.max must not exceed max_balance"));
    }
    Ok(())
}

/// Prices name known currencies, at most once each, with amounts in range.
fn check_prices(field: &str, prices: &[Price], currencies: &HashSet<String>) -> Result<(), ApiError> {
    if prices.len() > MAX_ENTRIES {
        return Err(ApiError::validation(format!("{field} has more than {MAX_ENTRIES} entries")));
    }
    let mut seen = HashSet::new();
    for price in prices {
        if !currencies.contains(&price.currency_code) {
            return Err(ApiError::validation(format!("{field} names unknown currency {:?}", price.currency_code)));
        }
        if !seen.insert(&price.currency_code) {
            return Err(ApiError::validation(format!("{field} names currency {:?} twice", price.currency_code)));
        }
        domain::amount(field, price.amount)?;
    }
    Ok(())
}

/// Only bundles have contents; they name known items and currencies, no
/// bundle may (transitively) contain itself, and with `item` written every
/// bundle of the catalog can still be bought (see [`check_expansion`]).
fn check_contents(item: &NewItem, items: &[CatalogItem], currencies: &HashSet<String>) -> Result<(), String> {
    if item.item_type != ItemType::Bundle {
        return if item.contents.is_empty() { Ok(()) } else { Err("only bundles have contents".into()) };
    }
    if item.contents.is_empty() || item.contents.len() > MAX_ENTRIES {
        return Err(format!("a bundle has 1 to {MAX_ENTRIES} contents"));
    }
    let key = item.key.as_str();
    let mut graph: HashMap<&str, Vec<&str>> =
        items.iter().map(|item| (item.key.as_str(), content_keys(&item.contents))).collect();
    graph.insert(key, content_keys(&item.contents));
    for content in &item.contents {
        match content {
            Content::Item { item_key, quantity } => {
                if !graph.contains_key(item_key.as_str()) {
                    return Err(format!("contents name unknown item {item_key:?}"));
                }
                if !(1..=MAX_QUANTITY).contains(quantity) {
                    return Err(format!("content quantities must be between 1 and {MAX_QUANTITY}"));
                }
            }
            Content::Currency { currency_code, amount } => {
                if !currencies.contains(currency_code) {
                    return Err(format!("contents name unknown currency {currency_code:?}"));
                }
                if !(1..=MAX_AMOUNT).contains(amount) {
                    return Err(format!("content amounts must be between 1 and {MAX_AMOUNT}"));
                }
            }
        }
    }
    if reaches(&graph, key, key, &mut HashSet::new()) {
        return Err(format!("bundle {key:?} would contain itself"));
    }
    check_expansion(item, items)
}

/// With `written` in the catalog, one of every bundle grants at most
/// [`MAX_QUANTITY`] of each item, [`MAX_AMOUNT`] of each currency and
/// [`MAX_GRANTED_ITEMS`] distinct items, nested at most
/// [`bundle::MAX_BUNDLE_DEPTH`] deep: a bundle past these could never be
/// bought, so it is refused when written rather than when bought.
fn check_expansion(written: &NewItem, items: &[CatalogItem]) -> Result<(), String> {
    let mut by_key: HashMap<&str, economy_core::Item> =
        items.iter().map(|item| (item.key.as_str(), rules_item(item))).collect();
    let id = by_key.get(written.key.as_str()).map_or_else(|| "new".to_owned(), |item| item.id.clone());
    let written_rules = economy_core::Item {
        id,
        key: written.key.clone(),
        item_type: rules_item_type(written.item_type),
        prices: vec![],
        contents: rules_contents(&written.contents),
        duration_seconds: None,
        display_properties: String::new(),
    };
    by_key.insert(written.key.as_str(), written_rules);
    for bundle in by_key.values().filter(|item| item.item_type == economy_core::ItemType::Bundle) {
        let expansion = bundle::expand(bundle, 1, &mut |key| by_key.get(key).cloned())
            .map_err(|error| format!("bundle {:?} cannot be bought: {}", bundle.key, describe(&error)))?;
        let too_many_items = expansion.items.len() > MAX_GRANTED_ITEMS;
        let too_much = expansion.items.iter().any(|grant| grant.quantity > MAX_QUANTITY)
            || expansion.currencies.iter().any(|(_, amount)| *amount > MAX_AMOUNT);
        if too_many_items || too_much {
            return Err(format!(
                "bundle {:?} would grant more than {MAX_QUANTITY} of an item, {MAX_AMOUNT} of a currency or \
                 {MAX_GRANTED_ITEMS} distinct items",
                bundle.key
            ));
        }
    }
    Ok(())
}

fn describe(error: &economy_core::RuleError) -> String {
    match error {
        economy_core::RuleError::Invalid(message) => message.clone(),
        other => format!("{other:?}"),
    }
}

fn content_keys(contents: &[Content]) -> Vec<&str> {
    contents
        .iter()
        .filter_map(|content| match content {
            Content::Item { item_key, .. } => Some(item_key.as_str()),
            Content::Currency { .. } => None,
        })
        .collect()
}

/// Whether `target` is reachable from `from`'s contents.
fn reaches<'a>(
    graph: &HashMap<&'a str, Vec<&'a str>>,
    from: &'a str,
    target: &str,
    seen: &mut HashSet<&'a str>,
) -> bool {
    graph
        .get(from)
        .into_iter()
        .flatten()
        .any(|&next| next == target || (seen.insert(next) && reaches(graph, next, target, seen)))
}
