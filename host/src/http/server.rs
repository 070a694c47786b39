//! `/server/*`: server-to-server calls on one user, named by identity.

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, Created, Data, OptionalJson, ServerKey};
use super::{AppState, finish};
use crate::catalog::Catalog;
use crate::domain::{self, CatalogKey, CurrencyCode, CustomId, Identity, MAX_AMOUNT, Quantity};
use crate::secrets;
use crate::storage::{ItemType, LedgerEntry, LedgerQuery, LedgerReason, NewGrant, Stack, Tx, User, WalletRefusal};
use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// The longest session a server may ask for: 30 days.
const MAX_SESSION_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// Ledger page sizes.
const DEFAULT_LEDGER_LIMIT: i64 = 50;
const MAX_LEDGER_LIMIT: i64 = 100;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    ttl_seconds: Option<u64>,
}

/// Opens a session for the user, creating the user if new.
pub async fn create_session(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    OptionalJson(body): OptionalJson<SessionBody>,
) -> Result<Created<Value>, ApiError> {
    let identity = Identity::try_from(identity)?;
    let ttl = match body.ttl_seconds {
        Some(seconds) if (1..=MAX_SESSION_TTL_SECONDS).contains(&seconds) => Duration::from_secs(seconds),
        Some(_) => {
            return Err(ApiError::validation(format!("ttl_seconds must be between 1 and {MAX_SESSION_TTL_SECONDS}")));
        }
        None => state.session_ttl,
    };
    let user = state.storage.find_or_create_user(tenant_id, identity.as_str()).await?;
    Ok(Created(open_session(&state, &user, ttl).await?))
}

/// Creates a session token for `user`; the token is shown only here.
pub async fn open_session(state: &AppState, user: &User, ttl: Duration) -> Result<Value, ApiError> {
    let token = secrets::generate("es_");
    let ttl = chrono::Duration::from_std(ttl).map_err(ApiError::internal)?;
    let expires_at = Utc::now() + ttl;
    state.storage.create_session(user, &secrets::hash(&token), expires_at).await?;
    Ok(json!({ "session_token": token, "expires_at": expires_at, "app_user_id": user.id, "identity": user.identity }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    custom_id: String,
}

/// Links a custom id to the player, so the game's custom-id login (e.g. on
/// a new device) reaches this player. A custom id that already names
/// another player is not moved: 409.
pub async fn link_custom_id(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Data<Value>, ApiError> {
    let custom_id = CustomId::try_from(body.custom_id)?;
    let user = find_user(&state, tenant_id, identity).await?;
    if !state.storage.link_custom_id(&user, &custom_id.hash()).await? {
        return Err(ApiError::Conflict("a link of this custom id to another player".into()));
    }
    Ok(Data(json!({ "app_user_id": user.id, "identity": user.identity })))
}

/// A grant: an amount of a currency, or a quantity of an item.
#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum GrantBody {
    Currency { currency_code: String, amount: i64, reason: Option<LedgerReason> },
    Item { item_key: String, quantity: i64 },
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Granted {
    Currency { balance_after: i64 },
    Item(Stack),
}

/// A grant after validation.
enum ValidGrant {
    Currency { code: CurrencyCode, amount: i64, reason: LedgerReason },
    Item { key: CatalogKey, quantity: Quantity },
}

impl TryFrom<GrantBody> for ValidGrant {
    type Error = ApiError;

    fn try_from(body: GrantBody) -> Result<Self, ApiError> {
        match body {
            GrantBody::Currency { currency_code, amount, reason } => {
                if amount == 0 || !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount) {
                    return Err(ApiError::validation(format!("amount must be non-zero and within ±{MAX_AMOUNT}")));
                }
                let reason = reason.unwrap_or(LedgerReason::Grant);
                if !matches!(reason, LedgerReason::Grant | LedgerReason::Refund | LedgerReason::Admin) {
                    return Err(ApiError::validation("reason must be grant, refund or admin"));
                }
                Ok(Self::Currency { code: CurrencyCode::try_from(currency_code)?, amount, reason })
            }
            GrantBody::Item { item_key, quantity } => {
                Ok(Self::Item { key: CatalogKey::try_from(item_key)?, quantity: Quantity::try_from(quantity)? })
            }
        }
    }
}

/// Credits (or, with a negative amount, debits) a currency, or grants an
/// item, outside the rules module: the server is trusted.
pub async fn grant(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Data<Granted>, ApiError> {
    let grant = ValidGrant::try_from(body)?;
    let user = find_user(&state, tenant_id, identity).await?;
    let tenant = state.rules.for_tenant(tenant_id).await?;
    let mut tx = state.storage.begin(tenant.scope(&user, false)).await?;
    let result = apply_grant(tx.as_mut(), &tenant.catalog, grant).await;
    finish(tx, result).await.map(Data)
}

async fn apply_grant(tx: &mut dyn Tx, catalog: &Catalog, grant: ValidGrant) -> Result<Granted, ApiError> {
    match grant {
        ValidGrant::Currency { code, amount, reason } => {
            match tx.change_balance(code.as_str(), amount, reason, None).await? {
                Ok(balance_after) => Ok(Granted::Currency { balance_after }),
                Err(WalletRefusal::UnknownCurrency) => Err(ApiError::not_found("currency")),
                Err(WalletRefusal::InsufficientBalance) => Err(ApiError::InsufficientBalance),
                Err(WalletRefusal::MaxBalanceExceeded) => Err(ApiError::MaxBalanceExceeded(code.into_inner())),
            }
        }
        ValidGrant::Item { key, quantity } => {
            let item = catalog.item_by_key(key.as_str()).ok_or_else(|| ApiError::not_found("item"))?;
            if item.item_type == ItemType::Bundle {
                return Err(ApiError::validation("a bundle is granted through a purchase, which expands it"));
            }
            let grant = NewGrant {
                item_id: item.id,
                quantity: quantity.get() as i64,
                acquired_via: "grant".into(),
                duration_seconds: item.duration_seconds,
            };
            let mut stacks = tx.grant_items(&[grant]).await?.map_err(|_| ApiError::not_found("item"))?;
            Ok(Granted::Item(stacks.pop().ok_or_else(|| ApiError::internal("grant returned no stack"))?))
        }
    }
}

#[derive(Deserialize)]
pub struct LedgerParams {
    currency_code: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct LedgerPage {
    entries: Vec<LedgerEntry>,
    next_cursor: Option<Uuid>,
}

/// The user's ledger, newest first, a page at a time.
pub async fn ledger(
    ServerKey(tenant_id): ServerKey,
    State(state): State<AppState>,
    ApiPath(identity): ApiPath<String>,
    ApiQuery(params): ApiQuery<LedgerParams>,
) -> Result<Data<LedgerPage>, ApiError> {
    let user = find_user(&state, tenant_id, identity).await?;
    let limit = params.limit.unwrap_or(DEFAULT_LEDGER_LIMIT);
    if !(1..=MAX_LEDGER_LIMIT).contains(&limit) {
        return Err(ApiError::validation(format!("limit must be between 1 and {MAX_LEDGER_LIMIT}")));
    }
    let query = LedgerQuery {
        currency_code: params.currency_code.map(CurrencyCode::try_from).transpose()?.map(CurrencyCode::into_inner),
        limit,
        cursor: params.cursor.as_deref().map(|cursor| domain::uuid("cursor", cursor)).transpose()?,
    };
    let entries = state.storage.ledger(&user, &query).await?;
    let next_cursor = if entries.len() as i64 == limit { entries.last().map(|entry| entry.id) } else { None };
    Ok(Data(LedgerPage { entries, next_cursor }))
}

async fn find_user(state: &AppState, tenant_id: Uuid, identity: String) -> Result<User, ApiError> {
    let identity = Identity::try_from(identity)?;
    state.storage.find_user(tenant_id, identity.as_str()).await?.ok_or_else(|| ApiError::not_found("user"))
}
