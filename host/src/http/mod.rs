//! The HTTP API (SPEC §3-§6): one module per route family, one error type.

mod admin;
mod client;
mod credentials;
pub mod error;
mod extract;
mod health;
mod modules;
mod operator;
mod queue;
pub mod serve;
mod server;

use crate::rules::Rules;
use crate::secrets;
use crate::storage::{Storage, Tx};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use credentials::Credentials;
use error::ApiError;
use extract::Saved;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

/// The largest JSON body any route accepts.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler needs, shared by all requests.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub storage: Arc<dyn Storage>,
    pub rules: Arc<Rules>,
    pub session_ttl: Duration,
    pub operator_key_hash: Option<[u8; 32]>,
    pub credentials: Credentials,
    /// Serialises each user's purchases and consumes on this host.
    pub user_queue: queue::UserQueue,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        storage: Arc<dyn Storage>,
        rules: Arc<Rules>,
        session_ttl: Duration,
        operator_key: Option<&str>,
    ) -> Self {
        Self(Arc::new(AppInner {
            storage,
            rules,
            session_ttl,
            operator_key_hash: operator_key.map(secrets::hash),
            credentials: Credentials::default(),
            user_queue: queue::UserQueue::default(),
        }))
    }
}

/// Answers a committed write to a tenant's configuration (catalog, module,
/// limits, settings) once this host has applied it, so the next request
/// here sees it (other hosts within a refresh). If applying fails, the write
/// stands all the same: the answer says so, and this host catches up on its
/// next refresh.
pub(crate) async fn applied<T>(state: &AppState, tenant_id: Uuid, written: T) -> Saved<T> {
    let warning = match state.rules.refresh(&[tenant_id]).await {
        Ok(()) => None,
        Err(error) => {
            tracing::warn!(%error, %tenant_id, "a configuration write is saved but this host could not apply it yet");
            Some(format!(
                "saved; this host could not apply it yet and will within {} ms",
                crate::rules::REFRESH_INTERVAL.as_millis()
            ))
        }
    };
    Saved { data: written, warning }
}

/// Ends a request's transaction: commits on success, rolls back (explicitly:
/// a dropped transaction rolls back late) on failure.
pub(crate) async fn finish<T>(tx: Box<dyn Tx>, result: Result<T, ApiError>) -> Result<T, ApiError> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            rollback(tx).await;
            Err(error)
        }
    }
}

/// Rolls a transaction back now; a failure only costs the connection.
pub(crate) async fn rollback(tx: Box<dyn Tx>) {
    if let Err(error) = tx.rollback().await {
        tracing::warn!(%error, "rollback failed; the connection is discarded");
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/operator/tenants", post(operator::create_tenant))
        .route("/operator/tenants/{id}/limits", put(operator::put_limits))
        .route(
            "/admin/modules",
            post(modules::upload).get(modules::list).layer(DefaultBodyLimit::max(crate::rules::MAX_MODULE_BYTES)),
        )
        .route("/admin/modules/active", put(modules::activate).delete(modules::deactivate))
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
        .route("/client/auth/custom", post(client::login_custom))
        .route("/client/wallet", get(client::wallet))
        .route("/client/inventory", get(client::inventory))
        .route("/client/stores/{key}", get(client::store))
        .route("/client/inventory/purchase", post(client::purchase))
        .route("/client/inventory/{item_id}/consume", post(client::consume))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
