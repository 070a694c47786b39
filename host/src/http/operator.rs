//! `/operator/*`: tenants, for the operator of the whole service.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Created, Operator};
use crate::domain::{Name, Slug};
use crate::secrets;
use crate::storage::KeyKind;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
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
        return Err(ApiError::validation(
            "per-tenant databases are not available on this server yet",
        ));
    }
    let keys =
        KeyKind::ALL.map(|kind| (kind, secrets::generate(&format!("ek_{}_", kind.as_str()))));
    let hashes = keys.clone().map(|(kind, key)| (kind, secrets::hash(&key)));
    let tenant = state
        .storage
        .create_tenant(slug.as_str(), name.as_str(), &hashes)
        .await?;
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
