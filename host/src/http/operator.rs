//! `/operator/*`: tenants, for the operator of the whole service.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Created, Operator, Saved};
use crate::domain::{self, Name, Slug};
use crate::economy::{Applied, CreatedTenant};
use crate::storage::LimitOverrides;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with slug and name")]
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
) -> Result<Created<CreatedTenant>, ApiError> {
    let slug = Slug::try_from(body.slug)?;
    let name = Name::try_from(body.name)?;
    if body.database_url.is_some() {
        return Err(ApiError::validation("per-tenant databases are not available on this server yet"));
    }
    Ok(Created(state.economy.create_tenant(&slug, &name).await?))
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
    let Applied { value: limits, applied } = state.economy.set_limits(tenant_id, &limits).await?;
    let value = json!({
        "fuel": limits.fuel,
        "deadline_ms": limits.deadline.as_millis() as u64,
        "memory_bytes": limits.memory_bytes,
        "max_import_calls": limits.max_import_calls,
    });
    Ok(Saved(Applied { value, applied }))
}
