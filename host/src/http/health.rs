//! Liveness and readiness.

use super::AppState;
use super::error::ApiError;
use super::extract::{Data, Operator};
use axum::extract::State;
use serde_json::{Value, json};

/// The process is up.
pub async fn healthz() -> Data<Value> {
    Data(json!({ "status": "ok" }))
}

/// The host can serve: its control plane answers. Tenants whose own
/// database does not answer are counted (the host still serves the
/// others); the operator's key also names them.
pub async fn readyz(State(state): State<AppState>, operator: Option<Operator>) -> Result<Data<Value>, ApiError> {
    let unavailable = state.economy.readiness().await?;
    let mut ready = json!({ "status": "ready", "unavailable_tenant_count": unavailable.len() });
    if operator.is_some() {
        ready["unavailable_tenants"] =
            unavailable.iter().map(|tenant| json!({ "id": tenant.id, "slug": tenant.slug })).collect();
    }
    Ok(Data(ready))
}
