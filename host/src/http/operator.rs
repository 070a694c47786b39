//! `/operator/*`: tenants, for the operator of the whole service.

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Created, Operator, Saved};
use super::{AppState, applied};
use crate::domain::{self, Name, Slug};
use crate::secrets;
use crate::storage::{KeyKind, LimitOverrides};
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

/// The most fuel a tenant's calls may be given (about a minute of wasm).
const MAX_FUEL: i64 = 1_000_000_000_000;
/// The longest deadline a tenant's calls may be given.
const MAX_DEADLINE_MS: i64 = 60_000;
/// The most linear memory a tenant's calls may be given (the host's own
/// instance size caps it further).
const MAX_MEMORY_BYTES: i64 = 4 << 30;
/// The most storage calls a tenant's calls may be given.
const MAX_IMPORT_CALLS: i64 = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    slug: String,
    name: String,
    database_url: Option<String>,
}

/// Creates a tenant and returns its three keys; they are shown only here.
pub async fn create_tenant(
    _: Operator,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<Created<Value>, ApiError> {
    let slug = Slug::try_from(body.slug)?;
    let name = Name::try_from(body.name)?;
    if body.database_url.is_some() {
        return Err(ApiError::validation("per-tenant databases are not available on this server yet"));
    }
    let keys = KeyKind::ALL.map(|kind| (kind, secrets::generate(&format!("ek_{}_", kind.as_str()))));
    let hashes = keys.clone().map(|(kind, key)| (kind, secrets::hash(&key)));
    let tenant = state.storage.create_tenant(slug.as_str(), name.as_str(), &hashes).await?;
    let [(_, client_key), (_, server_key), (_, admin_key)] = keys;
    Ok(Created(json!({
        "id": tenant.id,
        "slug": tenant.slug,
        "name": tenant.name,
        "created_at": tenant.created_at,
        "client_key": client_key,
        "server_key": server_key,
        "admin_key": admin_key,
    })))
}

/// Sets a tenant's sandbox limits (`null` keeps the host's default) and
/// returns the limits its calls now run under.
pub async fn put_limits(
    _: Operator,
    State(state): State<AppState>,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(limits): ApiJson<LimitOverrides>,
) -> Result<Saved<Value>, ApiError> {
    let tenant_id = domain::uuid("id", &tenant_id)?;
    let bounded = [
        ("fuel", limits.fuel, MAX_FUEL),
        ("deadline_ms", limits.deadline_ms, MAX_DEADLINE_MS),
        ("memory_bytes", limits.memory_bytes, MAX_MEMORY_BYTES),
        ("max_import_calls", limits.max_import_calls.map(i64::from), MAX_IMPORT_CALLS),
    ];
    for (name, value, max) in bounded {
        if value.is_some_and(|value| !(1..=max).contains(&value)) {
            return Err(ApiError::validation(format!("{name} must be between 1 and {max}")));
        }
    }
    if !state.storage.set_limits(tenant_id, &limits).await? {
        return Err(ApiError::not_found("tenant"));
    }
    let effective = state.rules.runtime().limits().for_call(&limits);
    let effective = json!({
        "fuel": effective.fuel,
        "deadline_ms": effective.deadline.as_millis() as u64,
        "memory_bytes": effective.memory_bytes,
        "max_import_calls": effective.max_import_calls,
    });
    Ok(applied(&state, tenant_id, effective).await)
}
