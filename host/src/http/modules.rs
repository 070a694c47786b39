//! `/admin/modules`: a tenant's rules modules: upload, list, activate, and
//! back to the built-in rules.

use super::error::ApiError;
use super::extract::{AdminKey, ApiJson, Created, Data, Saved};
use super::{AppState, applied};
use crate::storage::ModuleInfo;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct ModuleEntry {
    #[serde(flatten)]
    module: ModuleInfo,
    active: bool,
}

/// Checks, compiles and stores a component (`Content-Type:
/// application/wasm`). It runs nothing until activated.
pub async fn upload(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Created<ModuleInfo>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::rules::MAX_MODULE_BYTES),
        _ => ApiError::from(rejection),
    })?;
    let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if content_type.split(';').next().map(str::trim) != Some("application/wasm") {
        return Err(ApiError::validation("a module is uploaded with Content-Type: application/wasm"));
    }
    Ok(Created(state.rules.upload(tenant_id, body.to_vec()).await?))
}

/// The tenant's uploaded modules; when none is active, the built-in rules run.
pub async fn list(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<ModuleEntry>>, ApiError> {
    let active = state.rules.for_tenant(tenant_id).await?.module.sha256.clone();
    let modules = state.storage.modules(tenant_id).await?;
    Ok(Data(modules.into_iter().map(|module| ModuleEntry { active: module.sha256 == active, module }).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    sha256: String,
}

/// Swaps the tenant's rules to an uploaded module; rollback is activating
/// an older one. Requests already running finish on the module they began.
pub async fn activate(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<Saved<ModuleEntry>, ApiError> {
    let sha256 = body.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::validation("sha256 must be 64 hex digits"));
    }
    let module = state.rules.activate(tenant_id, Some(&sha256)).await?;
    let module = module.ok_or_else(|| ApiError::internal("an activated module has no record"))?;
    Ok(applied(&state, tenant_id, ModuleEntry { module, active: true }).await)
}

/// Back to the built-in `economy-core` rules.
pub async fn deactivate(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Saved<serde_json::Value>, ApiError> {
    state.rules.activate(tenant_id, None).await?;
    let builtin = state.rules.runtime().default_module();
    Ok(applied(&state, tenant_id, serde_json::json!({ "sha256": builtin.sha256, "builtin": true, "active": true }))
        .await)
}
