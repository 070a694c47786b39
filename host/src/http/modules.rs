//! `/admin/modules`: a tenant's rules modules: upload, list, activate, and
//! back to the built-in rules.

use super::AppState;
use super::error::ApiError;
use super::extract::{AdminKey, ApiJson, Created, Data, Saved};
use super::openapi as doc;
use crate::economy::{Applied, ModuleEntry};
use crate::storage::ModuleInfo;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// Checks, compiles and stores a component (`Content-Type:
/// application/wasm`). It runs nothing until activated.
#[utoipa::path(post, path = "/admin/modules", tag = "admin", security(("key" = [])), request_body(content = Vec<u8>, content_type = "application/wasm", description = "A component implementing the economy world"), responses((status = 201, description = "Uploaded (not active yet)", body = doc::Envelope<crate::storage::ModuleInfo>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 413, description = "Too large", body = doc::ErrorBody)))]
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
    Ok(Created(state.economy.upload_module(tenant_id, body.to_vec()).await?))
}

/// The tenant's uploaded modules; when none is active, the built-in rules run.
#[utoipa::path(get, path = "/admin/modules", tag = "admin", security(("key" = [])), responses((status = 200, description = "Uploaded modules", body = doc::Envelope<Vec<crate::economy::ModuleEntry>>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn list(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<ModuleEntry>>, ApiError> {
    Ok(Data(state.economy.modules(tenant_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with sha256")]
pub struct ActivateBody {
    sha256: String,
}

/// Swaps the tenant's rules to an uploaded module; rollback is activating
/// an older one. Requests already running finish on the module they began.
#[utoipa::path(put, path = "/admin/modules/active", tag = "admin", security(("key" = [])), request_body = ActivateBody, responses((status = 200, description = "Now active", body = doc::Saved<crate::economy::ModuleEntry>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn activate(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<Saved<ModuleEntry>, ApiError> {
    let sha256 = body.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::validation("sha256 must be 64 hex digits"));
    }
    Ok(Saved(state.economy.activate_module(tenant_id, &sha256).await?))
}

/// Back to the built-in `economy-core` rules.
#[utoipa::path(delete, path = "/admin/modules/active", tag = "admin", security(("key" = [])), responses((status = 200, description = "The built-in module is active again", body = doc::Saved<doc::BuiltinModule>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn deactivate(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Saved<Value>, ApiError> {
    let Applied { value: sha256, applied } = state.economy.deactivate_module(tenant_id).await?;
    Ok(Saved(Applied { value: json!({ "sha256": sha256, "builtin": true, "active": true }), applied }))
}
