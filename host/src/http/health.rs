//! Liveness and readiness.

use super::AppState;
use super::error::ApiError;
use super::extract::{Data, Operator};
use super::openapi as doc;
use axum::extract::State;
use serde_json::{Value, json};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Up", body = doc::Envelope<doc::Health>)))]
pub async fn healthz() -> Data<Value> {
    Data(json!({ "status": "ok" }))
}

/// The host can serve: its control plane answers. Tenants whose own
/// database does not answer are counted (the host still serves the
/// others); the operator's key also names them.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "Ready to serve", body = doc::Envelope<doc::Readiness>), (status = 503, description = "The control plane does not answer", body = doc::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>, operator: Option<Operator>) -> Result<Data<Value>, ApiError> {
    let unavailable = state.economy.readiness().await?;
    let mut ready = json!({ "status": "ready", "unavailable_tenant_count": unavailable.len() });
    if operator.is_some() {
        ready["unavailable_tenants"] =
            unavailable.iter().map(|tenant| json!({ "id": tenant.id, "slug": tenant.slug })).collect();
    }
    Ok(Data(ready))
}
