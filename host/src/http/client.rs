//! `/client/*`: what the game calls for the logged-in user. Purchases and
//! consumes run the tenant's rules module inside one transaction.

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ClientKey, ClientSession, Created, Data, optional_json};
use super::server::open_session;
use super::{AppState, finish};
use crate::domain::{self, CurrencyCode, IdempotencyKey, Identity, Quantity};
use crate::runtime::{Invocation, PurchaseOutcome, PurchaseRequest, RequestContext};
use crate::storage::{
    IdempotencyClaim, InventoryEntry, PurchaseRecord, StoredResponse, Tx, User, WalletEntry,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The header that marks a replayed idempotent response.
const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Deserialize)]
pub struct LoginBody {
    custom_id: String,
}

/// Logs a player in by a custom id (the user's identity), creating the user
/// if new.
pub async fn login_custom(
    ClientKey(tenant_id): ClientKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Created<Value>, ApiError> {
    let identity = Identity::try_from(body.custom_id)?;
    let user = state
        .storage
        .find_or_create_user(tenant_id, identity.as_str())
        .await?;
    Ok(Created(
        open_session(&state, &user, state.session_ttl).await?,
    ))
}

pub async fn wallet(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
) -> Result<Data<Vec<WalletEntry>>, ApiError> {
    Ok(Data(state.storage.wallet(&user).await?))
}

pub async fn inventory(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
) -> Result<Data<Vec<InventoryEntry>>, ApiError> {
    Ok(Data(state.storage.inventory(&user).await?))
}

#[derive(Deserialize)]
pub struct PurchaseBody {
    catalog_item_id: String,
    currency_code: String,
    store_id: Option<String>,
    quantity: Option<i64>,
    idempotency_key: Option<String>,
}

/// A purchase after validation.
struct ValidPurchase {
    item_id: Uuid,
    currency_code: CurrencyCode,
    store_id: Option<Uuid>,
    quantity: Quantity,
    idempotency_key: Option<IdempotencyKey>,
}

impl ValidPurchase {
    fn parse(body: PurchaseBody, headers: &HeaderMap) -> Result<Self, ApiError> {
        let header_key = match headers.get("idempotency-key") {
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| ApiError::validation("Idempotency-Key must be text"))?
                    .to_owned(),
            ),
            None => None,
        };
        let idempotency_key = match (header_key, body.idempotency_key) {
            (Some(header), Some(body)) if header != body => {
                return Err(ApiError::validation(
                    "the Idempotency-Key header and idempotency_key differ",
                ));
            }
            (header, body) => header.or(body).map(IdempotencyKey::try_from).transpose()?,
        };
        Ok(Self {
            item_id: domain::uuid("catalog_item_id", &body.catalog_item_id)?,
            currency_code: CurrencyCode::try_from(body.currency_code)?,
            store_id: body
                .store_id
                .as_deref()
                .map(|id| domain::uuid("store_id", id))
                .transpose()?,
            quantity: Quantity::try_from(body.quantity.unwrap_or(1))?,
            idempotency_key,
        })
    }

    /// What a retry must repeat to be the same request: every field but the
    /// idempotency key, with defaults filled in.
    fn request_hash(&self) -> Vec<u8> {
        let canonical = json!({
            "route": "client/inventory/purchase",
            "catalog_item_id": self.item_id,
            "currency_code": self.currency_code.as_str(),
            "store_id": self.store_id,
            "quantity": self.quantity.get(),
        });
        Sha256::digest(canonical.to_string().as_bytes()).to_vec()
    }
}

/// Buys an item: at most once per idempotency key, all or nothing.
pub async fn purchase(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<Response, ApiError> {
    let purchase = ValidPurchase::parse(body, &headers)?;
    let mut tx = state.storage.begin(user.tenant_id, user.id).await?;
    if let Some(key) = &purchase.idempotency_key {
        let replay = match tx
            .claim_idempotency_key(key.as_str(), &purchase.request_hash())
            .await
        {
            Ok(IdempotencyClaim::Claimed) => None,
            Ok(IdempotencyClaim::Existing {
                request_hash,
                response,
            }) if request_hash == purchase.request_hash() => Some(Ok(replayed(response))),
            Ok(IdempotencyClaim::Existing { .. }) => Some(Err(ApiError::IdempotencyKeyReused)),
            Err(error) => Some(Err(error.into())),
        };
        if let Some(replay) = replay {
            return finish(tx, replay).await;
        }
    }

    let module = state.runtime.default_module();
    let ctx = context(&user);
    let purchase_id = Uuid::parse_str(&ctx.request_id).map_err(ApiError::internal)?;
    let request = PurchaseRequest {
        item_id: purchase.item_id.to_string(),
        currency_code: purchase.currency_code.to_string(),
        store_id: purchase.store_id.map(|id| id.to_string()),
        quantity: purchase.quantity.get(),
    };
    let Invocation { mut tx, result } = state.runtime.purchase(&module, tx, ctx, request).await;
    let result = match result {
        Ok(Ok(outcome)) => record(tx.as_mut(), &purchase, purchase_id, outcome).await,
        Ok(Err(rule)) => Err(rule.into()),
        Err(failure) => {
            tracing::error!(module = %failure.sha256, error = %failure.message, "rules module failed a purchase");
            Err(ApiError::ModuleFailed)
        }
    };
    let body = finish(tx, result).await?;
    Ok(axum::Json(body).into_response())
}

/// Checks the guest's outcome, then records the purchase and the response
/// (for replays) in the purchase's transaction.
async fn record(
    tx: &mut dyn Tx,
    purchase: &ValidPurchase,
    purchase_id: Uuid,
    outcome: PurchaseOutcome,
) -> Result<Value, ApiError> {
    let consistent = outcome.unit_price >= 0
        && outcome.balance_after >= 0
        && outcome
            .unit_price
            .checked_mul(purchase.quantity.get() as i64)
            == Some(outcome.total);
    if !consistent {
        tracing::error!(
            ?outcome,
            "rules module returned an inconsistent purchase outcome"
        );
        return Err(ApiError::ModuleFailed);
    }
    let body = json!({ "data": {
        "purchased": true,
        "purchase_id": purchase_id,
        "currency_code": purchase.currency_code.as_str(),
        "price": outcome.total,
        "balance_after": outcome.balance_after,
    }});
    let record = PurchaseRecord {
        id: purchase_id,
        item_id: purchase.item_id,
        store_id: purchase.store_id,
        quantity: purchase.quantity.get() as i64,
        currency_code: purchase.currency_code.to_string(),
        unit_price: outcome.unit_price,
        total: outcome.total,
        idempotency_key: purchase.idempotency_key.as_ref().map(|key| key.to_string()),
    };
    tx.record_purchase(
        &record,
        &StoredResponse {
            status: 200,
            body: body.clone(),
        },
    )
    .await?;
    Ok(body)
}

fn replayed(response: StoredResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut reply = (status, axum::Json(response.body)).into_response();
    reply
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    reply
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConsumeBody {
    quantity: Option<i64>,
}

/// Uses up a consumable; the body (and its `quantity`) may be left out.
pub async fn consume(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<String>,
    body: Bytes,
) -> Result<Data<Value>, ApiError> {
    let item_id = domain::uuid("itemId", &item_id)?;
    let body: ConsumeBody = optional_json(&body)?;
    let quantity = Quantity::try_from(body.quantity.unwrap_or(1))?;
    let tx = state.storage.begin(user.tenant_id, user.id).await?;
    let module = state.runtime.default_module();
    let Invocation { tx, result } = state
        .runtime
        .consume(
            &module,
            tx,
            context(&user),
            item_id.to_string(),
            quantity.get(),
        )
        .await;
    let result = match result {
        Ok(Ok(left)) => Ok(left),
        Ok(Err(rule)) => Err(rule.into()),
        Err(failure) => {
            tracing::error!(module = %failure.sha256, error = %failure.message, "rules module failed a consume");
            Err(ApiError::ModuleFailed)
        }
    };
    let left = finish(tx, result).await?;
    Ok(Data(
        json!({ "app_user_id": user.id, "catalog_item_id": item_id, "quantity": left }),
    ))
}

/// The request context a rules module sees.
fn context(user: &User) -> RequestContext {
    RequestContext {
        tenant_id: user.tenant_id.to_string(),
        user_id: user.id.to_string(),
        request_id: Uuid::now_v7().to_string(),
        now_ms: Utc::now().timestamp_millis(),
    }
}
