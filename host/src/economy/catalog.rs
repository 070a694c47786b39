//! The tenant's catalog and settings, as its admin writes them. Writes are
//! upserts by key, checked against the rest of the catalog: prices name
//! existing currencies, bundles name existing items, never contain
//! themselves and can always be bought, listings name existing items, and
//! every amount and duration has a named bound.

use super::Economy;
use super::error::EconomyError;
use crate::catalog::{rules_contents, rules_item, rules_item_type};
use crate::domain::{self, CatalogKey, MAX_AMOUNT, MAX_DURATION_SECONDS, MAX_GRANTED_ITEMS, MAX_QUANTITY, Name};
use crate::storage::{
    Attributes, CatalogItem, Content, Currency, ItemType, Listing, NewCurrency, NewItem, Price, RateLimits, Recharge,
    Store, TenantSettings,
};
use economy_core::bundle;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

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
/// The longest name of a player attribute or module setting.
pub const MAX_VALUE_NAME_CHARS: usize = 64;
/// The most a player's attributes, or a tenant's module settings, may hold,
/// as JSON: each call that reads one loads them all.
pub const MAX_NAMED_VALUES_BYTES: usize = 16 * 1024;

/// A committed write to a tenant's configuration. `applied` is false when
/// this host could not apply it yet: the write stands, and the host catches
/// up on its next refresh.
#[derive(Debug)]
pub struct Applied<T> {
    pub value: T,
    pub applied: bool,
}

impl Economy {
    /// Applies a committed configuration write on this host, so its next
    /// request sees it (other hosts within a refresh).
    pub async fn applied<T>(&self, tenant_id: Uuid, value: T) -> Applied<T> {
        match self.rules.refresh(&[tenant_id]).await {
            Ok(()) => Applied { value, applied: true },
            Err(error) => {
                tracing::warn!(%error, %tenant_id, "a configuration write is saved but this host could not apply it yet");
                Applied { value, applied: false }
            }
        }
    }

    pub async fn put_currency(
        &self,
        tenant_id: Uuid,
        currency: NewCurrency,
    ) -> Result<Applied<Currency>, EconomyError> {
        let initial_balance = domain::amount("initial_balance", currency.initial_balance)?;
        let max_balance = currency.max_balance.map(|max| domain::amount("max_balance", max)).transpose()?;
        if max_balance.is_some_and(|max| initial_balance > max) {
            return Err(EconomyError::invalid("initial_balance must not exceed max_balance"));
        }
        if let Some(recharge) = &currency.recharge {
            check_recharge(recharge, max_balance)?;
        }
        let currency = self.tenant_store(tenant_id).await?.put_currency(&currency).await?;
        Ok(self.applied(tenant_id, currency).await)
    }

    pub async fn currencies(&self, tenant_id: Uuid) -> Result<Vec<Currency>, EconomyError> {
        Ok(self.tenant_store(tenant_id).await?.currencies().await?)
    }

    pub async fn put_item(&self, tenant_id: Uuid, item: NewItem) -> Result<Applied<CatalogItem>, EconomyError> {
        let currencies = self.currency_codes(tenant_id).await?;
        check_prices("prices", &item.prices, &currencies)?;
        check_display_properties(&item.display_properties)?;
        check_text("icon_url", item.icon_url.as_deref())?;
        check_text("category", item.category.as_deref())?;
        if item.duration_seconds.is_some_and(|d| !(1..=MAX_DURATION_SECONDS).contains(&d)) {
            return Err(EconomyError::Invalid(format!(
                "duration_seconds must be between 1 and {MAX_DURATION_SECONDS}"
            )));
        }
        let check = |items: &[CatalogItem]| check_contents(&item, items, &currencies);
        let item = self.tenant_store(tenant_id).await?.put_item(&item, &check).await?.map_err(EconomyError::Invalid)?;
        Ok(self.applied(tenant_id, item).await)
    }

    pub async fn items(&self, tenant_id: Uuid) -> Result<Vec<CatalogItem>, EconomyError> {
        Ok(self.tenant_store(tenant_id).await?.items().await?)
    }

    pub async fn item(&self, tenant_id: Uuid, key: &CatalogKey) -> Result<CatalogItem, EconomyError> {
        self.tenant_store(tenant_id)
            .await?
            .item_by_key(key.as_str())
            .await?
            .ok_or_else(|| EconomyError::not_found("item"))
    }

    pub async fn put_store(
        &self,
        tenant_id: Uuid,
        key: &CatalogKey,
        name: &Name,
        listings: &[Listing],
    ) -> Result<Applied<Store>, EconomyError> {
        if listings.len() > MAX_LISTINGS {
            return Err(EconomyError::Invalid(format!("a store has at most {MAX_LISTINGS} listings")));
        }
        let currencies = self.currency_codes(tenant_id).await?;
        let store = self.tenant_store(tenant_id).await?;
        let items: HashSet<String> = store.items().await?.into_iter().map(|item| item.key).collect();
        let mut listed = HashSet::new();
        for listing in listings {
            if !items.contains(&listing.item_key) {
                return Err(EconomyError::Invalid(format!("listing names unknown item {:?}", listing.item_key)));
            }
            if !listed.insert(&listing.item_key) {
                return Err(EconomyError::Invalid(format!("item {:?} is listed twice", listing.item_key)));
            }
            if let Some(prices) = &listing.override_prices {
                check_prices("override_prices", prices, &currencies)?;
            }
            if listing.max_purchases_per_user.is_some_and(|cap| !(1..=MAX_PURCHASE_CAP).contains(&cap)) {
                return Err(EconomyError::Invalid(format!(
                    "max_purchases_per_user must be between 1 and {MAX_PURCHASE_CAP}"
                )));
            }
        }
        let written = store.put_store(key.as_str(), name.as_str(), listings).await?;
        Ok(self.applied(tenant_id, written).await)
    }

    pub async fn store(&self, tenant_id: Uuid, key: &CatalogKey) -> Result<Store, EconomyError> {
        self.tenant_store(tenant_id)
            .await?
            .store_by_key(key.as_str())
            .await?
            .ok_or_else(|| EconomyError::not_found("store"))
    }

    pub async fn settings(&self, tenant_id: Uuid) -> Result<TenantSettings, EconomyError> {
        Ok(self.rules.for_tenant(tenant_id).await?.settings().clone())
    }

    pub async fn put_settings(
        &self,
        tenant_id: Uuid,
        settings: TenantSettings,
    ) -> Result<Applied<TenantSettings>, EconomyError> {
        check_named_values("module_settings", &settings.module_settings)?;
        if let Some(limits) = &settings.rate_limits {
            check_rate_limits(limits)?;
        }
        self.control.set_settings(tenant_id, &settings).await?;
        Ok(self.applied(tenant_id, settings).await)
    }

    async fn currency_codes(&self, tenant_id: Uuid) -> Result<HashSet<String>, EconomyError> {
        Ok(self.tenant_store(tenant_id).await?.currencies().await?.into_iter().map(|c| c.code).collect())
    }
}

/// The most a rate limit may be set to (a million a minute, or a second).
const MAX_RATE: u32 = 1_000_000;

/// Rate limits of at least one request, and at most [`MAX_RATE`].
fn check_rate_limits(limits: &RateLimits) -> Result<(), EconomyError> {
    for (field, rate) in [
        ("player_writes_per_minute", limits.player_writes_per_minute),
        ("key_requests_per_second", limits.key_requests_per_second),
    ] {
        if !(1..=MAX_RATE).contains(&rate) {
            return Err(EconomyError::Invalid(format!(
                "rate_limits.{field} must be from 1 to {MAX_RATE} (rate_limits: null turns the limits off)"
            )));
        }
    }
    Ok(())
}

/// A free-text field: at most [`MAX_TEXT_CHARS`], no control characters.
fn check_text(field: &str, value: Option<&str>) -> Result<(), EconomyError> {
    match value {
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            Err(EconomyError::Invalid(format!("{field} is longer than {MAX_TEXT_CHARS} characters")))
        }
        Some(text) if text.chars().any(char::is_control) => {
            Err(EconomyError::Invalid(format!("{field} must not contain control characters")))
        }
        _ => Ok(()),
    }
}

/// Whether a key or string of the JSON value holds a NUL character (which
/// no store can keep).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(values) => values.iter().any(has_nul),
        Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || has_nul(value)),
        _ => false,
    }
}

/// A JSON value a request keeps with what it writes (a purchase's `meta`,
/// a stack's display properties): no NUL character, which no store can keep.
pub(super) fn check_storable(field: &str, value: &Value) -> Result<(), EconomyError> {
    match has_nul(value) {
        true => Err(EconomyError::Invalid(format!("{field} must not contain NUL characters"))),
        false => Ok(()),
    }
}

/// Named values a rules module reads (a player's attributes, a tenant's
/// module settings): names of 1 to [`MAX_VALUE_NAME_CHARS`] characters, no
/// NUL anywhere, at most [`MAX_NAMED_VALUES_BYTES`] as JSON.
pub(super) fn check_named_values(field: &str, values: &Attributes) -> Result<(), EconomyError> {
    if let Some(name) = values.keys().find(|name| name.is_empty() || name.chars().count() > MAX_VALUE_NAME_CHARS) {
        return Err(EconomyError::Invalid(format!(
            "{field}: the name {name:?} is not 1 to {MAX_VALUE_NAME_CHARS} characters"
        )));
    }
    if values.iter().any(|(name, value)| name.contains('\0') || has_nul(value)) {
        return Err(EconomyError::Invalid(format!("{field} must not contain NUL characters")));
    }
    let bytes = serde_json::to_vec(values).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_NAMED_VALUES_BYTES {
        return Err(EconomyError::Invalid(format!(
            "{field} is {bytes} bytes as JSON; the limit is {MAX_NAMED_VALUES_BYTES}"
        )));
    }
    Ok(())
}

/// `display_properties` is a JSON object with no NUL character.
fn check_display_properties(properties: &Value) -> Result<(), EconomyError> {
    if !properties.is_object() {
        return Err(EconomyError::invalid("display_properties must be a JSON object"));
    }
    check_storable("display_properties", properties)
}

/// A recharge gains 1 to [`MAX_AMOUNT`] every 1 to
/// [`MAX_RECHARGE_PERIOD_SECONDS`], up to a max of at least 1 that is no
/// higher than the currency's `max_balance`.
fn check_recharge(recharge: &Recharge, max_balance: Option<i64>) -> Result<(), EconomyError> {
    if !(1..=MAX_AMOUNT).contains(&recharge.amount) {
        return Err(EconomyError::invalid(format!("recharge.amount must be between 1 and {MAX_AMOUNT}")));
    }
    if !(1..=MAX_RECHARGE_PERIOD_SECONDS).contains(&recharge.period_seconds) {
        return Err(EconomyError::invalid(format!(
            "recharge.period_seconds must be between 1 and {MAX_RECHARGE_PERIOD_SECONDS}"
        )));
    }
    if !(1..=MAX_AMOUNT).contains(&recharge.max) {
        return Err(EconomyError::invalid(format!("recharge.max must be between 1 and {MAX_AMOUNT}")));
    }
    if max_balance.is_some_and(|max_balance| recharge.max > max_balance) {
        return Err(EconomyError::invalid("recharge.max must not exceed max_balance"));
    }
    Ok(())
}

/// Prices name known currencies, at most once each, with amounts in range.
fn check_prices(field: &str, prices: &[Price], currencies: &HashSet<String>) -> Result<(), EconomyError> {
    if prices.len() > MAX_ENTRIES {
        return Err(EconomyError::invalid(format!("{field} has more than {MAX_ENTRIES} entries")));
    }
    let mut seen = HashSet::new();
    for price in prices {
        if !currencies.contains(&price.currency_code) {
            return Err(EconomyError::invalid(format!("{field} names unknown currency {:?}", price.currency_code)));
        }
        if !seen.insert(&price.currency_code) {
            return Err(EconomyError::invalid(format!("{field} names currency {:?} twice", price.currency_code)));
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
