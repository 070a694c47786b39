//! `/admin/modules`: a tenant's rules modules: upload, list, try before
//! activating, activate, back to the built-in rules, and what went wrong.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;
use super::extract::{AdminKey, ApiJson, Created, Data, Saved};
use super::openapi as doc;
use crate::domain::{self, Identity, Quantity};
use crate::economy::{Applied, DryRun, DryRunAnswer, DryRunOutcome, ModuleEntry, Quote, Sample, UploadedModule};
use crate::storage::{ModuleEvent, ModuleInfo};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A module just uploaded: its record, the largest module the host takes,
/// and a sample call (a quote of the tenant's first priced item, by key).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    module: ModuleInfo,
    limit_bytes: usize,
    /// None when no item of the catalog has a price.
    sample: Option<SampleCall>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SampleCall {
    operation: &'static str,
    item_key: String,
    currency_code: String,
    #[serde(flatten)]
    run: DryRunView,
}

/// What a module answered a dry run, and the fuel the call burned.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunView {
    module_sha256: String,
    /// None when the host does not meter its modules.
    fuel_used: Option<u64>,
    /// The quote, when the rules gave one.
    quote: Option<Quote>,
    /// Why not otherwise: a refusal of the rules (its API code), or
    /// `MODULE_FAILED` with the trap or exhausted limit.
    error: Option<DryRunError>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunError {
    code: &'static str,
    message: String,
}

impl From<DryRunOutcome> for DryRunView {
    fn from(outcome: DryRunOutcome) -> Self {
        let DryRunOutcome { module_sha256, fuel_used, answer } = outcome;
        let (quote, error) = match answer {
            DryRunAnswer::Quoted(quote) => (Some(quote), None),
            DryRunAnswer::Refused(refusal) => {
                let message = refusal.to_string();
                (None, Some(DryRunError { code: ApiError::from(refusal).code(), message }))
            }
            DryRunAnswer::Failed(reason) => (None, Some(DryRunError { code: "MODULE_FAILED", message: reason })),
        };
        Self { module_sha256, fuel_used, quote, error }
    }
}

impl From<UploadedModule> for Uploaded {
    fn from(uploaded: UploadedModule) -> Self {
        let UploadedModule { module, limit_bytes, sample } = uploaded;
        let sample = sample.map(|Sample { item_key, currency_code, outcome }| SampleCall {
            operation: "quote",
            item_key,
            currency_code,
            run: outcome.into(),
        });
        Self { module, limit_bytes, sample }
    }
}

/// Checks, compiles and stores a component (`Content-Type:
/// application/wasm`). It runs nothing until activated but a sample quote
/// that writes nothing; the answer says what it cost.
#[utoipa::path(post, path = "/admin/modules", tag = "admin", security(("key" = [])), request_body(content = Vec<u8>, content_type = "application/wasm", description = "A component implementing the economy world"), responses((status = 201, description = "Uploaded (not active yet)", body = doc::Envelope<Uploaded>), (status = 400, description = "Invalid input (VALIDATION_FAILED, INVALID_MODULE)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 409, description = "The tenant keeps as many modules as it may (QUOTA_EXCEEDED)", body = doc::ErrorBody), (status = 413, description = "Too large", body = doc::ErrorBody)))]
pub async fn upload(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Created<Uploaded>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::rules::MAX_MODULE_BYTES),
        _ => ApiError::from(rejection),
    })?;
    let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if content_type.split(';').next().map(str::trim) != Some("application/wasm") {
        return Err(ApiError::validation("a module is uploaded with Content-Type: application/wasm"));
    }
    Ok(Created(state.economy.upload_module(tenant_id, body.to_vec()).await?.into()))
}

/// The tenant's uploaded modules, oldest first, then the built-in rules
/// (`builtin: true`), which run when no upload is active.
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
    let sha256 = sha256(&body.sha256)?;
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

/// Deletes an uploaded module the tenant does not run (409 for the active
/// one): what makes room in the tenant's quota of modules.
#[utoipa::path(delete, path = "/admin/modules/{sha256}", tag = "admin", security(("key" = [])), params(("sha256" = String, Path, description = "The module's SHA-256")), responses((status = 204, description = "Deleted"), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody), (status = 409, description = "The active module (CONFLICT)", body = doc::ErrorBody)))]
pub async fn delete(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(given): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.economy.delete_module(tenant_id, &sha256(&given)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A module's hash as the tenant wrote it: 64 hex digits, any case.
fn sha256(given: &str) -> Result<String, ApiError> {
    let sha256 = given.to_ascii_lowercase();
    match sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(sha256),
        false => Err(ApiError::validation("sha256 must be 64 hex digits")),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with catalog_item_id, currency_code, and optionally store_id, quantity and identity"
)]
pub struct DryRunBody {
    catalog_item_id: String,
    currency_code: String,
    store_id: Option<String>,
    quantity: Option<i64>,
    /// The player to quote for (its history counts); none: a player who
    /// has bought nothing.
    identity: Option<String>,
}

/// Quotes an item with an uploaded module, active or not, or with the
/// built-in rules, as a purchase would price it: nothing is written, and the answer says what the rules
/// said (or why the module failed) and the fuel the call burned.
#[utoipa::path(post, path = "/admin/modules/{sha256}/quote", tag = "admin", security(("key" = [])), params(("sha256" = String, Path, description = "The module's SHA-256")), request_body = DryRunBody, responses((status = 200, description = "What the module answered", body = doc::Envelope<DryRunView>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn quote(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
    ApiPath(given): ApiPath<String>,
    ApiJson(body): ApiJson<DryRunBody>,
) -> Result<Data<DryRunView>, ApiError> {
    let sha256 = sha256(&given)?;
    let player = match body.identity {
        Some(identity) => Some(state.economy.player(tenant_id, &Identity::try_from(identity)?).await?),
        None => None,
    };
    let run = DryRun {
        item_id: domain::uuid("catalog_item_id", &body.catalog_item_id)?,
        currency_code: body.currency_code,
        store_id: body.store_id.as_deref().map(|id| domain::uuid("store_id", id)).transpose()?,
        quantity: Quantity::try_from(body.quantity.unwrap_or(1))?,
        player,
    };
    Ok(Data(state.economy.dry_run(tenant_id, &sha256, &run).await?.into()))
}

/// What went wrong with the tenant's modules, newest first: calls that
/// failed (at most one a second is kept per host) and automatic rollbacks.
#[utoipa::path(get, path = "/admin/modules/events", tag = "admin", security(("key" = [])), responses((status = 200, description = "The latest events", body = doc::Envelope<Vec<ModuleEvent>>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn events(
    AdminKey(tenant_id): AdminKey,
    State(state): State<AppState>,
) -> Result<Data<Vec<ModuleEvent>>, ApiError> {
    Ok(Data(state.economy.module_events(tenant_id).await?))
}
