//! Liveness and readiness.

use super::AppState;
use super::error::ApiError;
use super::extract::Data;
use axum::extract::State;
use serde_json::{Value, json};

/// The process is up.
pub async fn healthz() -> Data<Value> {
    Data(json!({ "status": "ok" }))
}

/// The host can serve: its control plane answers. Tenants whose own
/// database does not answer are named (the host still serves the others).
pub async fn readyz(State(state): State<AppState>) -> Result<Data<Value>, ApiError> {
    let unavailable = state.economy.readiness().await?;
    let unavailable: Vec<Value> =
        unavailable.iter().map(|tenant| json!({ "id": tenant.id, "slug": tenant.slug })).collect();
    Ok(Data(json!({ "status": "ready", "unavailable_tenants": unavailable })))
}
