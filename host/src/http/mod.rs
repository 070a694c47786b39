//! The HTTP API: the native routes, one module per route family, one error
//! type; and the compatibility routes (`sverse`, `playfab`) in their
//! systems' shapes.

mod admin;
mod client;
mod credentials;
pub mod error;
mod extract;
mod health;
mod modules;
mod openapi;
mod operator;
mod playfab;
mod playfab_economy;
pub mod serve;
mod server;
mod sverse;

use crate::economy::Economy;
use crate::secrets;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use credentials::Credentials;
use error::ApiError;
use std::ops::Deref;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// The largest JSON body any route accepts.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler needs, shared by all requests.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub economy: Arc<Economy>,
    pub operator_key_hash: Option<[u8; 32]>,
    /// Keys and sessions served from memory.
    pub credentials: Credentials,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(economy: Arc<Economy>, operator_key: Option<&str>) -> Self {
        Self(Arc::new(AppInner {
            economy,
            operator_key_hash: operator_key.map(secrets::hash),
            credentials: Credentials::default(),
        }))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/readyz", get(health::readyz))
        .route("/operator/tenants", post(operator::create_tenant))
        .route("/operator/tenants/{id}/limits", put(operator::put_limits))
        .route(
            "/admin/modules",
            post(modules::upload).get(modules::list).layer(DefaultBodyLimit::max(crate::rules::MAX_MODULE_BYTES)),
        )
        .route("/admin/modules/active", put(modules::activate).delete(modules::deactivate))
        .route("/admin/modules/events", get(modules::events))
        .route("/admin/modules/{sha256}", axum::routing::delete(modules::delete))
        .route("/admin/modules/{sha256}/quote", post(modules::quote))
        .route("/admin/currencies", get(admin::list_currencies))
        .route("/admin/currencies/{code}", put(admin::put_currency))
        .route("/admin/catalog/items", get(admin::list_items))
        .route("/admin/catalog/items/{key}", put(admin::put_item).get(admin::get_item))
        .route("/admin/stores/{key}", put(admin::put_store).get(admin::get_store))
        .route("/admin/settings", get(admin::get_settings).put(admin::put_settings))
        .route("/server/users/{identity}/sessions", post(server::create_session))
        .route("/server/users/{identity}/grants", post(server::grant))
        .route("/server/users/{identity}/custom-ids", post(server::link_custom_id))
        .route("/server/users/{identity}/ledger", get(server::ledger))
        .route("/server/users/{identity}/attributes", get(server::get_attributes).put(server::put_attributes))
        .route("/api/private/shop-items", get(sverse::shop_items))
        .route("/api/private/users/{identity}/purchases", post(sverse::purchase))
        .route("/Client/LoginWithCustomID", post(playfab::login_with_custom_id))
        .route("/Client/GetUserInventory", post(playfab::get_user_inventory))
        .route("/Inventory/PurchaseInventoryItems", post(playfab_economy::purchase_inventory_items))
        .route("/Inventory/GetInventoryItems", post(playfab_economy::get_inventory_items))
        .route("/Inventory/AddInventoryItems", post(playfab_economy::add_inventory_items))
        .route("/Inventory/SubtractInventoryItems", post(playfab_economy::subtract_inventory_items))
        .route("/client/auth/custom", post(client::login_custom))
        .route("/client/wallet", get(client::wallet))
        .route("/client/inventory", get(client::inventory))
        .route("/client/stores/{key}", get(client::store))
        .route("/client/inventory/purchase", post(client::purchase))
        .route("/client/inventory/{item_id}/consume", post(client::consume))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
