//! Sverse's shop API, for studios whose game servers call Sverse: the
//! server key in `x-api-key`, bodies `{"error": false, "data": …}` and
//! errors `{"error": true, "message": …}`. Front ends of the same economy
//! service as the native routes: a purchase here is a purchase there.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, ServerKey};
use super::openapi as doc;
use crate::domain::{CurrencyCode, IdempotencyKey, Identity, Quantity};
use crate::economy::{EconomyError, Outcome, PurchaseReceipt, ShopItem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// Shop-item page sizes.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// An error in Sverse's shape.
pub struct SverseError(ApiError);

impl<E: Into<ApiError>> From<E> for SverseError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for SverseError {
    fn into_response(self) -> Response {
        let error = self.0;
        let (status, message) = match &error {
            // Sverse has one kind of key: any other answers as invalid.
            ApiError::Unauthorized | ApiError::Forbidden => (StatusCode::UNAUTHORIZED, "Invalid API key".to_owned()),
            ApiError::Economy(EconomyError::IdempotencyKeyReused) => {
                (StatusCode::CONFLICT, "idempotencyKey was already used for a different purchase".to_owned())
            }
            other => (other.status(), other.to_string()),
        };
        error.respond(status, json!({ "error": true, "message": message }))
    }
}

fn invalid(message: impl Into<String>) -> SverseError {
    SverseError(ApiError::validation(message))
}

/// `GET /api/private/shop-items`'s query; every parameter is optional and
/// checked here, so each mistake gets its own message.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopQuery {
    purchasable: Option<String>,
    currency: Option<String>,
    sort_by: Option<String>,
    order: Option<String>,
    page: Option<String>,
    limit: Option<String>,
}

/// A number parameter within `min..=max`.
fn number(name: &str, value: Option<&str>, default: usize, min: usize, max: usize) -> Result<usize, SverseError> {
    let Some(value) = value else { return Ok(default) };
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(format!("{name} must be an integer from {min} to {max}"))),
    }
}

/// The tenant's shop items: filtered, sorted and paged as asked.
#[utoipa::path(get, path = "/api/private/shop-items", tag = "sverse", security(("key" = [])), params(("purchasable" = Option<bool>, Query), ("currency" = Option<String>, Query), ("sortBy" = Option<String>, Query, description = "createdAt or price"), ("order" = Option<String>, Query, description = "asc or desc"), ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)), responses((status = 200, description = "A page of shop items", body = doc::SverseOk<doc::ShopPage>), (status = 400, description = "Invalid parameter", body = doc::SverseError), (status = 401, description = "Invalid API key", body = doc::SverseError)))]
pub async fn shop_items(
    key: Result<ServerKey, ApiError>,
    State(state): State<AppState>,
    query: Result<ApiQuery<ShopQuery>, ApiError>,
) -> Result<Response, SverseError> {
    let ServerKey(tenant_id) = key?;
    let ApiQuery(query) = query?;
    let purchasable = match query.purchasable.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(invalid("purchasable must be true or false")),
    };
    let currency = query.currency.map(CurrencyCode::try_from).transpose()?;
    let by_price = match query.sort_by.as_deref() {
        None | Some("createdAt") => false,
        Some("price") => true,
        Some(_) => return Err(invalid("sortBy must be createdAt or price")),
    };
    let descending = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid("order must be asc or desc")),
    };
    let page = number("page", query.page.as_deref(), 1, 1, u32::MAX as usize)?;
    let limit = number("limit", query.limit.as_deref(), DEFAULT_LIMIT, 1, MAX_LIMIT)?;

    let mut items: Vec<ShopItem> = state.economy.shop_items(tenant_id).await?;
    items.retain(|item| {
        purchasable.is_none_or(|wanted| item.purchasable == wanted)
            && currency.as_ref().is_none_or(|code| item.currency_code == code.as_str())
    });
    // A stable sort: ties keep the service's order (oldest first, then by
    // id), so pages do not shift between calls.
    items.sort_by(|a, b| {
        let order = if by_price { a.price.cmp(&b.price) } else { a.created_at.cmp(&b.created_at) };
        if descending { order.reverse() } else { order }
    });
    let total = items.len();
    let shown: Vec<Value> = items
        .iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .map(|item| {
            json!({
                "id": item.id,
                "item_def_id": item.item_key,
                "price": item.price,
                "currency_code": item.currency_code,
                "purchasable": item.purchasable,
                "createdAt": item.created_at,
            })
        })
        .collect();
    let pagination = json!({ "page": page, "limit": limit, "total": total, "total_pages": total.div_ceil(limit) });
    Ok(axum::Json(json!({ "error": false, "data": { "items": shown, "pagination": pagination } })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SversePurchaseBody)]
pub struct PurchaseBody {
    shop_item_id: Option<String>,
    quantity: Option<i64>,
    idempotency_key: Option<String>,
    meta: Option<Value>,
}

/// Buys a shop item for the player `identity`: 200 with the purchase, or
/// 409 with the same purchase when its idempotency key was used before.
#[utoipa::path(post, path = "/api/private/users/{identity}/purchases", tag = "sverse", security(("key" = [])), params(("identity" = String, Path)), request_body = PurchaseBody, responses((status = 200, description = "Bought", body = doc::SverseOk<doc::SversePurchase>), (status = 409, description = "The idempotency key was used: the first purchase (or a message, for another request)", body = doc::SverseOk<doc::SversePurchase>), (status = 400, description = "Refused", body = doc::SverseError), (status = 401, description = "Invalid API key", body = doc::SverseError), (status = 404, description = "No such player or shop item", body = doc::SverseError)))]
pub async fn purchase(
    key: Result<ServerKey, ApiError>,
    State(state): State<AppState>,
    identity: Result<ApiPath<String>, ApiError>,
    body: Result<ApiJson<PurchaseBody>, ApiError>,
) -> Result<Response, SverseError> {
    let ServerKey(tenant_id) = key?;
    let ApiPath(identity) = identity?;
    let ApiJson(body) = body?;
    let shop_item_id = body.shop_item_id.ok_or_else(|| invalid("shopItemId is required"))?;
    let quantity = body.quantity.ok_or_else(|| invalid("quantity is required"))?;
    let quantity = Quantity::try_from(quantity)?;
    let key = body.idempotency_key.ok_or_else(|| invalid("idempotencyKey is required"))?;
    let key = IdempotencyKey::try_from(key)?;
    let meta = match body.meta {
        None | Some(Value::Null) => None,
        Some(meta @ Value::Object(_)) => Some(meta),
        Some(_) => return Err(invalid("meta must be an object")),
    };
    let identity = Identity::try_from(identity)?;
    let user = state.credentials.player(&state.economy, tenant_id, &identity).await?;
    let item = match state.economy.shop_item(tenant_id, &shop_item_id).await {
        Ok(item) => item,
        // A retry of a purchase made before the shop item went gets its
        // first answer; anything else is told the shop item is gone.
        Err(gone) => {
            let replayed = state.economy.replay_shop_purchase(&user, &shop_item_id, quantity, meta, key).await?;
            let (item_key, Outcome { value, .. }) = replayed.ok_or(gone)?;
            let data = purchased(&user.identity, &shop_item_id, &item_key, &value);
            return Ok((StatusCode::CONFLICT, axum::Json(json!({ "error": true, "data": data }))).into_response());
        }
    };
    let request = item.purchase(quantity, meta)?;
    let Outcome { value, replayed } = state.economy.purchase(&user, &request, Some(key)).await?;
    let data = purchased(&user.identity, &item.id, &item.item_key, &value);
    Ok(match replayed {
        false => axum::Json(json!({ "error": false, "data": data })).into_response(),
        true => (StatusCode::CONFLICT, axum::Json(json!({ "error": true, "data": data }))).into_response(),
    })
}

/// A purchase as Sverse answers it.
fn purchased(identity: &str, shop_item_id: &str, item_key: &str, receipt: &PurchaseReceipt) -> Value {
    // A receipt recorded before balances before were kept: exact unless a
    // bundle credited the currency it was paid in.
    let balance_before = receipt.balance_before.unwrap_or(receipt.balance_after + receipt.total);
    json!({
        "purchaseId": receipt.purchase_id,
        "user": identity,
        "item": { "shopItemId": shop_item_id, "itemDefId": item_key, "quantity": receipt.quantity },
        "cost": { "currency": receipt.currency_code, "amount": receipt.total },
        "wallet": { "balanceBefore": balance_before, "balanceAfter": receipt.balance_after },
    })
}
