//! `/client/*`: what the game calls for the signed-in player.

use super::AppState;
use super::error::ApiError;
use super::extract::{
    Answer, ApiJson, ApiPath, ClientKey, ClientSession, Created, Data, OptionalJson, idempotency_key,
};
use super::openapi as doc;
use crate::domain::{self, CurrencyCode, CustomId, Quantity};
use crate::economy::{ConsumeReceipt, OpenedSession, Outcome, PurchaseReceipt, PurchaseRequest, StorePage};
use crate::storage::{InventoryEntry, WalletEntry};
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with custom_id")]
pub struct LoginBody {
    custom_id: String,
}

/// Signs a player in by custom id: a secret the game keeps on the device.
/// It names its own player (created on first login) or the one the server
/// linked it to, never a player by identity: anyone holding the client key
/// can call this.
#[utoipa::path(post, path = "/client/auth/custom", tag = "client", security(("key" = [])), request_body = LoginBody, responses((status = 201, description = "A session", body = doc::Envelope<OpenedSession>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn login_custom(
    ClientKey(tenant_id): ClientKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Created<OpenedSession>, ApiError> {
    let custom_id = CustomId::try_from(body.custom_id)?;
    Ok(Created(state.economy.login_custom(tenant_id, &custom_id, true).await?.session))
}

#[utoipa::path(get, path = "/client/wallet", tag = "client", security(("key" = [], "session" = [])), responses((status = 200, description = "The balances", body = doc::Envelope<Vec<WalletEntry>>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn wallet(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
) -> Result<Data<Vec<WalletEntry>>, ApiError> {
    Ok(Data(state.economy.wallet(&user).await?))
}

#[utoipa::path(get, path = "/client/inventory", tag = "client", security(("key" = [], "session" = [])), responses((status = 200, description = "The stacks", body = doc::Envelope<Vec<InventoryEntry>>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody)))]
pub async fn inventory(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
) -> Result<Data<Vec<InventoryEntry>>, ApiError> {
    Ok(Data(state.economy.inventory(&user).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with catalog_item_id, currency_code, and optionally store_id, quantity and idempotency_key"
)]
pub struct PurchaseBody {
    catalog_item_id: String,
    currency_code: String,
    store_id: Option<String>,
    quantity: Option<i64>,
    idempotency_key: Option<String>,
}

/// The native purchase answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Purchased {
    purchased: bool,
    purchase_id: Uuid,
    currency_code: String,
    /// The total charged.
    price: i64,
    balance_after: i64,
}

impl From<PurchaseReceipt> for Purchased {
    fn from(receipt: PurchaseReceipt) -> Self {
        Self {
            purchased: true,
            purchase_id: receipt.purchase_id,
            currency_code: receipt.currency_code,
            price: receipt.total,
            balance_after: receipt.balance_after,
        }
    }
}

/// Buys an item: at most once per idempotency key, all or nothing; a retry
/// answers as the first did, with `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/client/inventory/purchase", tag = "client", security(("key" = [], "session" = [])), request_body = PurchaseBody, responses((status = 200, description = "Bought (or the replay of the first request with the key)", body = doc::Envelope<Purchased>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody), (status = 422, description = "The key was used for another request", body = doc::ErrorBody)))]
pub async fn purchase(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<Answer<Purchased>, ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key)?;
    let request = PurchaseRequest::new(
        domain::uuid("catalog_item_id", &body.catalog_item_id)?,
        CurrencyCode::try_from(body.currency_code)?,
        body.store_id.as_deref().map(|id| domain::uuid("store_id", id)).transpose()?,
        Quantity::try_from(body.quantity.unwrap_or(1))?,
    );
    let Outcome { value, replayed } = state.economy.purchase(&user, &request, key).await?;
    Ok(Answer(Outcome { value: value.into(), replayed }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object with optionally quantity and idempotency_key")]
pub struct ConsumeBody {
    quantity: Option<i64>,
    idempotency_key: Option<String>,
}

/// The native consume answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Consumed {
    app_user_id: Uuid,
    catalog_item_id: Uuid,
    /// What the player holds of the item now.
    quantity: i64,
}

/// Uses up a consumable; the body (and its `quantity`) may be left out.
#[utoipa::path(post, path = "/client/inventory/{item_id}/consume", tag = "client", security(("key" = [], "session" = [])), params(("item_id" = Uuid, Path)), request_body = ConsumeBody, responses((status = 200, description = "What is left", body = doc::Envelope<Consumed>), (status = 400, description = "Invalid input (VALIDATION_FAILED)", body = doc::ErrorBody), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn consume(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<ConsumeBody>,
) -> Result<Answer<Consumed>, ApiError> {
    let item_id = domain::uuid("itemId", &item_id)?;
    let key = idempotency_key(&headers, body.idempotency_key)?;
    let quantity = Quantity::try_from(body.quantity.unwrap_or(1))?;
    let Outcome { value, replayed } = state.economy.consume(&user, item_id, quantity, key).await?;
    let ConsumeReceipt { item_id, remaining, .. } = value;
    Ok(Answer(Outcome {
        value: Consumed { app_user_id: user.id, catalog_item_id: item_id, quantity: remaining },
        replayed,
    }))
}

/// A store as the player sees it: each listing priced by the tenant's rules.
#[utoipa::path(get, path = "/client/stores/{key}", tag = "client", security(("key" = [], "session" = [])), params(("key" = String, Path)), responses((status = 200, description = "Listings priced by the rules", body = doc::Envelope<StorePage>), (status = 401, description = "No key, or an unknown one", body = doc::ErrorBody), (status = 403, description = "A key of another kind", body = doc::ErrorBody), (status = 404, description = "Not found in the tenant", body = doc::ErrorBody)))]
pub async fn store(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Data<StorePage>, ApiError> {
    Ok(Data(state.economy.store_page(&user, &key).await?))
}
