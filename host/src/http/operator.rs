//! `/operator/*`: tenants, for the operator of the whole service.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Created, Operator, Saved};
use super::openapi as doc;
use crate::domain::{self, Name, Slug};
use crate::economy::{Applied, CreatedTenant};
use crate::storage::{Backend, DatabaseUrl, LimitOverrides};
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest database URL a tenant may be given.
const MAX_DATABASE_URL_CHARS: usize = 2_048;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with slug, name and optionally database_url")]
pub struct NewTenant {
    slug: String,
    name: String,
    database_url: Option<String>,
}

/// Creates a tenant and returns its three keys; they are shown only here.
/// With `database_url`, the tenant's data lives in that PostgreSQL database
/// or SQLite file (opened and migrated on first use); the URL is never shown
/// again.
#[utoipa::path(post, path = "/operator/tenants", tag = "operator", security(("operator" = [])), request_body = NewTenant, responses((status = 201, description = "The tenant and its keys (shown only now)", body = doc::Envelope<crate::economy::CreatedTenant>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 409, description = "The slug is taken", body = doc::ErrorBody)))]
pub async fn create_tenant(
    _: Operator,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<Created<CreatedTenant>, ApiError> {
    let slug = Slug::try_from(body.slug)?;
    let name = Name::try_from(body.name)?;
    let database = body.database_url.map(database_url).transpose()?;
    Ok(Created(state.economy.create_tenant(&slug, &name, database.as_ref()).await?))
}

/// A tenant's database: a `postgres://` URL or a SQLite file (`sqlite:path`).
fn database_url(url: String) -> Result<DatabaseUrl, ApiError> {
    if url.chars().count() > MAX_DATABASE_URL_CHARS || url.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "database_url must be at most {MAX_DATABASE_URL_CHARS} characters, with no control character"
        )));
    }
    let url = DatabaseUrl::new(url);
    Backend::of(&url).map_err(ApiError::validation)?;
    Ok(url)
}

/// Sets a tenant's sandbox limits (`null` keeps the host's default) and
/// returns the limits its calls now run under.
#[utoipa::path(put, path = "/operator/tenants/{id}/limits", tag = "operator", security(("operator" = [])), params(("id" = Uuid, Path, description = "The tenant")), request_body = crate::storage::LimitOverrides, responses((status = 200, description = "The limits in force", body = doc::Saved<doc::Limits>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
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
