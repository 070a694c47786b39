//! `/server/*`: server-to-server calls on one player, named by identity.

use super::AppState;
use super::error::ApiError;
use super::extract::{Answer, ApiJson, ApiPath, ApiQuery, Created, Data, OptionalJson, ServerKey, idempotency_key};
use super::openapi as doc;
use crate::domain::{self, CatalogKey, CurrencyCode, CustomId, Identity, Quantity};
use crate::economy::{Grant, Granted, OpenedSession};
use crate::storage::{Attributes, LedgerEntry, LedgerQuery, LedgerReason};
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Ledger page sizes.
const DEFAULT_LEDGER_LIMIT: i64 = 50;
const MAX_LEDGER_LIMIT: i64 = 100;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with optionally ttl_seconds")]
pub struct SessionBody {
    ttl_seconds: Option<u64>,
}

/// Opens a session for the player, creating the player if new.
#[utoipa::path(post, path = "/server/users/{identity}/sessions", tag = "server", security(("key" = [])), params(("identity" = String, Path)), request_body = SessionBody, responses((status = 201, description = "A session (the player is created if new)", body = doc::Envelope<OpenedSession>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn create_session(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    OptionalJson(body): OptionalJson<SessionBody>,
) -> Result<Created<OpenedSession>, ApiError> {
    let identity = Identity::try_from(identity)?;
    let ttl = body.ttl_seconds.map(Duration::from_secs);
    Ok(Created(state.economy.open_session(tenant_id, &identity, ttl).await?))
}

/// The attributes the game server set on the player, which rules modules
/// read (`attribute(name)` of `economy:plugin/player`).
#[utoipa::path(get, path = "/server/users/{identity}/attributes", tag = "server", security(("key" = [])), params(("identity" = String, Path)), responses((status = 200, description = "The attributes", body = doc::Envelope<doc::AnyObject>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn get_attributes(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
) -> Result<Data<Attributes>, ApiError> {
    let identity = Identity::try_from(identity)?;
    Ok(Data(state.economy.attributes(tenant_id, &identity).await?))
}

/// Replaces the player's attributes (a JSON object of at most 16 KiB, names
/// of 1 to 64 characters), creating the player if new. The rules read them
/// from the next request on.
#[utoipa::path(put, path = "/server/users/{identity}/attributes", tag = "server", security(("key" = [])), params(("identity" = String, Path)), request_body = doc::AnyObject, responses((status = 200, description = "Saved", body = doc::Envelope<doc::AnyObject>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn put_attributes(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    ApiJson(attributes): ApiJson<Attributes>,
) -> Result<Data<Attributes>, ApiError> {
    let identity = Identity::try_from(identity)?;
    Ok(Data(state.economy.set_attributes(tenant_id, &identity, attributes).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with custom_id")]
pub struct LinkBody {
    custom_id: String,
}

/// Links a custom id to the player, so the game's custom-id login (e.g. on
/// a new device) reaches this player. A custom id that already names
/// another player is not moved: 409.
#[utoipa::path(post, path = "/server/users/{identity}/custom-ids", tag = "server", security(("key" = [])), params(("identity" = String, Path)), request_body = LinkBody, responses((status = 200, description = "Linked", body = doc::Envelope<doc::LinkedPlayer>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody), (status = 409, description = "The custom id names another player", body = doc::ErrorBody)))]
pub async fn link_custom_id(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Data<Value>, ApiError> {
    let identity = Identity::try_from(identity)?;
    let custom_id = CustomId::try_from(body.custom_id)?;
    let user = state.economy.link_custom_id(tenant_id, &identity, &custom_id).await?;
    Ok(Data(json!({ "app_user_id": user.id, "identity": user.identity })))
}

/// A grant: `{currency_code, amount, reason?}` or `{item_key, quantity}`,
/// with an optional `idempotency_key`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with either currency_code, amount and optionally reason, or item_key and quantity"
)]
pub struct GrantBody {
    currency_code: Option<String>,
    amount: Option<i64>,
    reason: Option<String>,
    item_key: Option<String>,
    quantity: Option<i64>,
    idempotency_key: Option<String>,
}

/// The two shapes a grant body may take, for the error message.
const GRANT_SHAPES: &str =
    "a grant is {currency_code, amount, reason?} (reason: grant, refund or admin) or {item_key, quantity}";

impl TryFrom<GrantBody> for Grant {
    type Error = ApiError;

    fn try_from(body: GrantBody) -> Result<Self, ApiError> {
        match body {
            GrantBody {
                currency_code: Some(code),
                amount: Some(amount),
                reason,
                item_key: None,
                quantity: None,
                ..
            } => {
                let reason = match reason.as_deref() {
                    None => None,
                    Some("grant") => Some(LedgerReason::Grant),
                    Some("refund") => Some(LedgerReason::Refund),
                    Some("admin") => Some(LedgerReason::Admin),
                    Some(_) => return Err(ApiError::validation(GRANT_SHAPES)),
                };
                Ok(Grant::currency(CurrencyCode::try_from(code)?, amount, reason)?)
            }
            GrantBody {
                item_key: Some(key),
                quantity: Some(quantity),
                currency_code: None,
                amount: None,
                reason: None,
                ..
            } => Ok(Grant::Item { key: CatalogKey::try_from(key)?, quantity: Quantity::try_from(quantity)? }),
            _ => Err(ApiError::validation(GRANT_SHAPES)),
        }
    }
}

/// Credits (or, with a negative amount, debits) a currency, or grants an
/// item, outside the rules module: the server is trusted. At most once per
/// idempotency key; a retry answers as the first did.
#[utoipa::path(post, path = "/server/users/{identity}/grants", tag = "server", security(("key" = [])), params(("identity" = String, Path)), request_body = GrantBody, responses((status = 200, description = "The balance after, or the stack", body = doc::Envelope<Granted>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn grant(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<GrantBody>,
) -> Result<Answer<Granted>, ApiError> {
    let identity = Identity::try_from(identity)?;
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let grant = Grant::try_from(body)?;
    let (_, outcome) = state.economy.grant(tenant_id, &identity, grant, key).await?;
    Ok(Answer(outcome))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerParams {
    currency_code: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerPage {
    entries: Vec<LedgerEntry>,
    next_cursor: Option<Uuid>,
}

/// The player's ledger, newest first, a page at a time.
#[utoipa::path(get, path = "/server/users/{identity}/ledger", tag = "server", security(("key" = [])), params(("identity" = String, Path), ("currency_code" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<Uuid>, Query)), responses((status = 200, description = "Newest first", body = doc::Envelope<LedgerPage>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn ledger(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    ApiQuery(params): ApiQuery<LedgerParams>,
) -> Result<Data<LedgerPage>, ApiError> {
    let identity = Identity::try_from(identity)?;
    let limit = params.limit.unwrap_or(DEFAULT_LEDGER_LIMIT);
    if !(1..=MAX_LEDGER_LIMIT).contains(&limit) {
        return Err(ApiError::validation(format!("limit must be between 1 and {MAX_LEDGER_LIMIT}")));
    }
    let query = LedgerQuery {
        currency_code: params.currency_code.map(CurrencyCode::try_from).transpose()?.map(CurrencyCode::into_inner),
        limit,
        cursor: params.cursor.as_deref().map(|cursor| domain::uuid("cursor", cursor)).transpose()?,
    };
    let entries = state.economy.ledger(tenant_id, &identity, &query).await?;
    let next_cursor = if entries.len() as i64 == limit { entries.last().map(|entry| entry.id) } else { None };
    Ok(Data(LedgerPage { entries, next_cursor }))
}
