//! The OpenAPI 3.1 document of every route, native and compatibility,
//! generated from the handlers' `#[utoipa::path]` annotations and the
//! types they take and answer; served at `GET /openapi.json`.
//!
//! The answers a handler builds as JSON directly (the compatibility
//! routes', mostly) are described by the schema-only types below; the
//! tests validate real answers against the document, so a type that
//! drifts from its answer fails them.

#![allow(dead_code)] // Schema-only types: described, never built.

use super::{admin, client, health, modules, operator, playfab, playfab_economy, server, sverse};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

#[derive(OpenApi)]
#[openapi(
    info(title = "economy-host", description = "A virtual-economy server: wallets, catalogs, stores and inventories, with tenant rules in WebAssembly."),
    paths(
        health::healthz, health::readyz, openapi_json,
        operator::create_tenant, operator::put_limits,
        modules::upload, modules::list, modules::activate, modules::deactivate, modules::delete, modules::quote, modules::events,
        admin::put_currency, admin::list_currencies, admin::put_item, admin::list_items, admin::get_item,
        admin::put_store, admin::get_store, admin::get_settings, admin::put_settings,
        server::create_session, server::grant, server::link_custom_id, server::ledger, server::get_attributes,
        server::put_attributes,
        client::login_custom, client::wallet, client::inventory, client::store, client::purchase, client::consume,
        sverse::shop_items, sverse::purchase,
        playfab::login_with_custom_id, playfab::get_user_inventory,
        playfab_economy::purchase_inventory_items, playfab_economy::get_inventory_items,
        playfab_economy::add_inventory_items, playfab_economy::subtract_inventory_items,
    ),
    modifiers(&Keys),
)]
struct ApiDoc;

/// The credentials routes take.
struct Keys;

impl Modify for Keys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(name)));
        components.add_security_scheme("key", header("x-api-key"));
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme("playfab_ticket", header("X-Authorization"));
        components.add_security_scheme("playfab_entity", header("X-EntityToken"));
        components.add_security_scheme("playfab_secret", header("X-SecretKey"));
    }
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).expect("the document serializes"))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document of every route")))]
pub async fn openapi_json() -> Json<&'static Value> {
    Json(document())
}

// ---- The native envelopes ----

/// A success: `{"data": …}`.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    pub data: T,
}

/// A configuration write: `{"data": …}`, with a `warning` when this host
/// could not apply it yet.
#[derive(Serialize, ToSchema)]
pub struct Saved<T> {
    pub data: T,
    pub warning: Option<String>,
}

/// Every native error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code, e.g. `INSUFFICIENT_BALANCE`.
    pub code: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    pub unavailable_tenant_count: u64,
    /// Only with the operator key.
    pub unavailable_tenants: Option<Vec<TenantRef>>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantRef {
    pub id: Uuid,
    pub slug: String,
}

/// A JSON object of named values: a player's attributes.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct AnyObject(crate::storage::Attributes);

#[derive(Serialize, ToSchema)]
pub struct LinkedPlayer {
    pub app_user_id: Uuid,
    pub identity: String,
}

#[derive(Serialize, ToSchema)]
pub struct Limits {
    pub fuel: u64,
    pub deadline_ms: u64,
    pub memory_bytes: u64,
    pub max_import_calls: u32,
}

#[derive(Serialize, ToSchema)]
pub struct BuiltinModule {
    pub sha256: String,
    pub builtin: bool,
    pub active: bool,
}

// ---- Sverse ----

#[derive(Serialize, ToSchema)]
pub struct SverseOk<T> {
    pub error: bool,
    pub data: T,
}

#[derive(Serialize, ToSchema)]
pub struct SverseError {
    pub error: bool,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShopPage {
    pub items: Vec<ShopItem>,
    pub pagination: Pagination,
}

#[derive(Serialize, ToSchema)]
pub struct ShopItem {
    /// `{store id}.{item id}.{currency}`.
    pub id: String,
    pub item_def_id: String,
    pub price: i64,
    pub currency_code: String,
    pub purchasable: bool,
    #[serde(rename = "createdAt")]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub page: u64,
    pub limit: u64,
    pub total: u64,
    pub total_pages: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SversePurchase {
    pub purchase_id: Uuid,
    pub user: String,
    pub item: SversePurchasedItem,
    pub cost: SverseCost,
    pub wallet: SverseWallet,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SversePurchasedItem {
    pub shop_item_id: String,
    pub item_def_id: String,
    pub quantity: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SverseCost {
    pub currency: String,
    pub amount: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SverseWallet {
    pub balance_before: i64,
    pub balance_after: i64,
}

// ---- PlayFab ----

/// A PlayFab success: `{"code": 200, "status": "OK", "data": …}`.
#[derive(Serialize, ToSchema)]
pub struct PlayFabOk<T> {
    pub code: u16,
    pub status: String,
    pub data: T,
}

/// PlayFab's `ApiErrorWrapper`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorWrapper {
    pub code: u16,
    pub status: String,
    pub error: String,
    pub error_code: u32,
    pub error_message: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct LoginResult {
    pub session_ticket: String,
    pub play_fab_id: Uuid,
    pub newly_created: bool,
    pub entity_token: EntityTokenResponse,
    pub settings_for_user: Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct EntityTokenResponse {
    pub entity_token: String,
    pub token_expiration: chrono::DateTime<chrono::Utc>,
    pub entity: Entity,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Entity {
    pub id: Uuid,
    #[serde(rename = "Type")]
    pub kind: String,
    pub type_string: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UserInventory {
    pub inventory: Vec<ItemInstance>,
    pub virtual_currency: BTreeMap<String, i64>,
    pub virtual_currency_recharge_times: BTreeMap<String, RechargeTime>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ItemInstance {
    pub item_id: String,
    pub item_instance_id: String,
    pub display_name: String,
    pub purchase_date: chrono::DateTime<chrono::Utc>,
    pub item_class: Option<String>,
    pub expiration: Option<chrono::DateTime<chrono::Utc>>,
    pub remaining_uses: Option<i64>,
    pub unit_currency: Option<String>,
    pub unit_price: Option<i64>,
    pub custom_data: Option<BTreeMap<String, String>>,
    /// The `ItemInstanceId` of the bundle purchase that created the stack.
    pub bundle_parent: Option<Uuid>,
    /// A bundle's instance: the keys of the items one bundle grants.
    pub bundle_contents: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RechargeTime {
    pub seconds_to_recharge: i64,
    pub recharge_time: chrono::DateTime<chrono::Utc>,
    pub recharge_max: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryItems {
    pub items: Vec<InventoryItem>,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub continuation_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryItem {
    /// A currency's code, or an item's catalog id.
    pub id: String,
    pub stack_id: String,
    pub amount: i64,
    /// `currency` or `catalogItem`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub display_properties: Option<Value>,
    pub expiration_date: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryWritten {
    #[serde(rename = "ETag")]
    pub etag: String,
    pub idempotency_id: Option<String>,
    pub transaction_ids: Vec<Uuid>,
}
