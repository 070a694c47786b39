//! `/admin/*`: a tenant's currencies, catalog, stores and settings. The
//! economy service checks and writes them; these handlers parse and answer.

use super::AppState;
use super::error::ApiError;
use super::extract::{AdminKey, ApiJson, ApiPath, Data, Saved};
use super::openapi as doc;
use crate::domain::{CatalogKey, CurrencyCode, Name};
use crate::storage::{
    CatalogItem, Content, Currency, ItemType, Listing, NewCurrency, NewItem, Price, Recharge, Store, TenantSettings,
};
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with name, and optionally initial_balance, max_balance and recharge"
)]
pub struct CurrencyBody {
    name: String,
    #[serde(default)]
    initial_balance: i64,
    max_balance: Option<i64>,
    recharge: Option<Recharge>,
}

#[utoipa::path(put, path = "/admin/currencies/{code}", tag = "admin", security(("key" = [])), params(("code" = String, Path)), request_body = CurrencyBody, responses((status = 200, description = "Saved", body = doc::Saved<Currency>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn put_currency(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<CurrencyBody>,
) -> Result<Saved<Currency>, ApiError> {
    let currency = NewCurrency {
        code: CurrencyCode::try_from(code)?.into_inner(),
        name: Name::try_from(body.name)?.into_inner(),
        initial_balance: body.initial_balance,
        max_balance: body.max_balance,
        recharge: body.recharge,
    };
    Ok(Saved(state.economy.put_currency(tenant_id, currency).await?))
}

#[utoipa::path(get, path = "/admin/currencies", tag = "admin", security(("key" = [])), responses((status = 200, description = "The currencies", body = doc::Envelope<Vec<Currency>>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn list_currencies(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<Currency>>, ApiError> {
    Ok(Data(state.economy.currencies(tenant_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with name, item_type, and optionally icon_url, category, display_properties, prices, contents, duration_seconds and store_only"
)]
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
    #[serde(default)]
    store_only: bool,
}

#[utoipa::path(put, path = "/admin/catalog/items/{key}", tag = "admin", security(("key" = [])), params(("key" = String, Path)), request_body = ItemBody, responses((status = 200, description = "Saved", body = doc::Saved<CatalogItem>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn put_item(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<Saved<CatalogItem>, ApiError> {
    let item = NewItem {
        key: CatalogKey::try_from(key)?.into_inner(),
        name: Name::try_from(body.name)?.into_inner(),
        icon_url: body.icon_url,
        item_type: body.item_type,
        category: body.category,
        display_properties: body.display_properties.unwrap_or_else(|| Value::Object(Default::default())),
        prices: body.prices,
        contents: body.contents,
        duration_seconds: body.duration_seconds,
        store_only: body.store_only,
    };
    Ok(Saved(state.economy.put_item(tenant_id, item).await?))
}

#[utoipa::path(get, path = "/admin/catalog/items", tag = "admin", security(("key" = [])), responses((status = 200, description = "The catalog", body = doc::Envelope<Vec<CatalogItem>>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn list_items(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<CatalogItem>>, ApiError> {
    Ok(Data(state.economy.items(tenant_id).await?))
}

#[utoipa::path(get, path = "/admin/catalog/items/{key}", tag = "admin", security(("key" = [])), params(("key" = String, Path)), responses((status = 200, description = "The item", body = doc::Envelope<CatalogItem>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn get_item(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Data<CatalogItem>, ApiError> {
    Ok(Data(state.economy.item(tenant_id, &CatalogKey::try_from(key)?).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with name and optionally listings")]
pub struct StoreBody {
    name: String,
    #[serde(default)]
    listings: Vec<Listing>,
}

#[utoipa::path(put, path = "/admin/stores/{key}", tag = "admin", security(("key" = [])), params(("key" = String, Path)), request_body = StoreBody, responses((status = 200, description = "Saved", body = doc::Saved<Store>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn put_store(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<StoreBody>,
) -> Result<Saved<Store>, ApiError> {
    let key = CatalogKey::try_from(key)?;
    let name = Name::try_from(body.name)?;
    Ok(Saved(state.economy.put_store(tenant_id, &key, &name, &body.listings).await?))
}

#[utoipa::path(get, path = "/admin/stores/{key}", tag = "admin", security(("key" = [])), params(("key" = String, Path)), responses((status = 200, description = "The store", body = doc::Envelope<Store>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn get_store(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Data<Store>, ApiError> {
    Ok(Data(state.economy.store(tenant_id, &CatalogKey::try_from(key)?).await?))
}

/// The tenant's settings.
#[utoipa::path(get, path = "/admin/settings", tag = "admin", security(("key" = [])), responses((status = 200, description = "The settings", body = doc::Envelope<TenantSettings>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn get_settings(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<TenantSettings>, ApiError> {
    Ok(Data(state.economy.settings(tenant_id).await?))
}

/// Replaces the tenant's settings; a setting left out takes its default.
#[utoipa::path(put, path = "/admin/settings", tag = "admin", security(("key" = [])), request_body = TenantSettings, responses((status = 200, description = "Saved", body = doc::Saved<TenantSettings>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn put_settings(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiJson(settings): ApiJson<TenantSettings>,
) -> Result<Saved<TenantSettings>, ApiError> {
    Ok(Saved(state.economy.put_settings(tenant_id, settings).await?))
}
