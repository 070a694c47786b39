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

/// The database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Data<Value>, ApiError> {
    state.economy.ready().await?;
    Ok(Data(json!({ "status": "ready" })))
}
