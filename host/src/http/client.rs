//! `/client/*`: what the game calls for the logged-in user. Purchases and
//! consumes run the tenant's rules module inside one transaction.

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ClientKey, ClientSession, Created, Data, OptionalJson};
use super::server::open_session;
use super::{AppState, finish, rollback};
use crate::domain::{self, CurrencyCode, CustomId, IdempotencyKey, Quantity};
use crate::rules::TenantContext;
use crate::runtime::{
    CallFailure, Invocation, PurchaseCheck, PurchaseOutcome, PurchaseRequest, RequestContext, RuleError,
};
use crate::storage::{
    InventoryEntry, NewGrant, PurchaseRecord, Recorded, StorageError, StoredResponse, Tx, User, WalletEntry,
};
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
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    custom_id: String,
}

/// Logs a player in by a custom id: a secret the game keeps on the device.
/// The custom id names its own player (created on first login, with its id
/// as its identity) or the player the server linked it to; it never names
/// a player by identity, since anyone holding the client key can call this.
pub async fn login_custom(
    ClientKey(tenant_id): ClientKey,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Created<Value>, ApiError> {
    let custom_id = CustomId::try_from(body.custom_id)?;
    if !state.rules.for_tenant(tenant_id).await?.settings().custom_id_login {
        return Err(ApiError::forbidden("custom-id login is turned off for this tenant"));
    }
    let user = state.storage.custom_id_user(tenant_id, &custom_id.hash()).await?;
    Ok(Created(open_session(&state, &user, state.session_ttl).await?))
}

pub async fn wallet(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
) -> Result<Data<Vec<WalletEntry>>, ApiError> {
    let tenant = state.rules.for_tenant(user.tenant_id).await?;
    Ok(Data(state.storage.wallet(&user, tenant.catalog.recharging()).await?))
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
            Some(value) => {
                Some(value.to_str().map_err(|_| ApiError::validation("Idempotency-Key must be text"))?.to_owned())
            }
            None => None,
        };
        let idempotency_key = match (header_key, body.idempotency_key) {
            (Some(header), Some(body)) if header != body => {
                return Err(ApiError::validation("the Idempotency-Key header and idempotency_key differ"));
            }
            (header, body) => header.or(body).map(IdempotencyKey::try_from).transpose()?,
        };
        Ok(Self {
            item_id: domain::uuid("catalog_item_id", &body.catalog_item_id)?,
            currency_code: CurrencyCode::try_from(body.currency_code)?,
            store_id: body.store_id.as_deref().map(|id| domain::uuid("store_id", id)).transpose()?,
            quantity: Quantity::try_from(body.quantity.unwrap_or(1))?,
            idempotency_key,
        })
    }

    /// What the host re-checks the guest's effects against.
    fn check(&self) -> PurchaseCheck<'_> {
        PurchaseCheck {
            item_id: self.item_id,
            currency_code: self.currency_code.as_str(),
            quantity: self.quantity.get(),
        }
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
///
/// A purchase first runs optimistically: the rules see the balance this
/// host last saw, and it commits in one statement guarded on that balance
/// (shared with the other purchases waiting to commit).
/// If the guess was stale, or the rules needed more than that statement
/// covers, it runs again under row locks. Either way the key is claimed by
/// the statement that records the purchase: a concurrent request with the
/// same key waits there for this one to end, then finds the key taken and
/// replays the stored response. A keyed request that fails may be the retry
/// of one that succeeded: before answering with its error it looks for that
/// earlier response.
pub async fn purchase(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<Response, ApiError> {
    let purchase = ValidPurchase::parse(body, &headers)?;
    let tenant = state.rules.for_tenant(user.tenant_id).await?;
    let _turn = state.user_queue.turn(user.id).await;
    // A regenerating balance is settled under its row lock: no guess to try.
    let optimistic = match tenant.catalog.recharges(purchase.currency_code.as_str()) {
        true => None,
        false => buy(&state, &user, &tenant, &purchase, Locking::Optimistic).await,
    };
    let result = match optimistic {
        Some(result) => result,
        None => buy(&state, &user, &tenant, &purchase, Locking::RowLocks)
            .await
            .unwrap_or_else(|| Err(ApiError::internal("a purchase under row locks came back unconfirmed"))),
    };
    match (result, &purchase.idempotency_key) {
        (Ok(body), _) => Ok(axum::Json(body).into_response()),
        (Err(error), None) => Err(error),
        (Err(error), Some(key)) => match state.storage.idempotency_record(user.id, key.as_str()).await {
            Ok(Some(earlier)) if earlier.request_hash == purchase.request_hash() => Ok(replayed(earlier.response)),
            Ok(Some(_)) => Err(ApiError::IdempotencyKeyReused),
            Ok(None) | Err(_) => Err(error),
        },
    }
}

#[derive(Clone, Copy)]
enum Locking {
    Optimistic,
    RowLocks,
}

/// One attempt at a purchase. `None`: an optimistic attempt that cannot
/// vouch for its answer (it wrote nothing); the purchase runs again under
/// row locks.
async fn buy(
    state: &AppState,
    user: &User,
    tenant: &TenantContext,
    purchase: &ValidPurchase,
    locking: Locking,
) -> Option<Result<Value, ApiError>> {
    let scope = tenant.scope(user, true);
    let begun = match locking {
        Locking::Optimistic => state.storage.begin_optimistic(scope).await,
        Locking::RowLocks => state.storage.begin(scope).await,
    };
    let tx = match begun {
        Ok(tx) => tx,
        Err(error) => return Some(Err(error.into())),
    };
    let purchase_id = Uuid::now_v7();
    let request = PurchaseRequest {
        item_id: purchase.item_id.to_string(),
        currency_code: purchase.currency_code.to_string(),
        store_id: purchase.store_id.map(|id| id.to_string()),
        quantity: purchase.quantity.get(),
    };
    let call = tenant.call(context(user, purchase_id));
    let Invocation { mut tx, journal, pending_grants, result } =
        state.rules.runtime().purchase(call, tx, request).await;
    if tx.unconfirmed() && !matches!(result, Ok(Ok(_))) {
        rollback(tx).await;
        return None;
    }
    let result = match module_answer(&tenant.module.sha256, result) {
        Ok(outcome) => {
            match journal.check_purchase(&purchase.check(), outcome.unit_price, outcome.total, outcome.balance_after) {
                Ok(()) => record(tx.as_mut(), purchase, purchase_id, outcome, &pending_grants).await,
                Err(reason) => Err(module_misbehaved(&tenant.module.sha256, &reason)),
            }
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(body) => match tx.commit().await {
            Ok(()) => Some(Ok(body)),
            Err(StorageError::Stale) => None,
            Err(error) => Some(Err(error.into())),
        },
        Err(error) => {
            rollback(tx).await;
            Some(Err(error))
        }
    }
}

/// Records the purchase, its grants and the response (for replays) in the
/// purchase's transaction.
async fn record(
    tx: &mut dyn Tx,
    purchase: &ValidPurchase,
    purchase_id: Uuid,
    outcome: PurchaseOutcome,
    grants: &[NewGrant],
) -> Result<Value, ApiError> {
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
        request_hash: purchase.request_hash(),
    };
    match tx.record_purchase(&record, grants, &StoredResponse { status: 200, body: body.clone() }).await? {
        Recorded::Done => Ok(body),
        // The caller rolls back and replays the earlier response.
        Recorded::KeyTaken => Err(ApiError::Conflict("idempotency key".into())),
        Recorded::UnknownItem => Err(ApiError::internal("a granted item is missing from the catalog")),
    }
}

fn replayed(response: StoredResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut reply = (status, axum::Json(response.body)).into_response();
    reply.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
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
    OptionalJson(body): OptionalJson<ConsumeBody>,
) -> Result<Data<Value>, ApiError> {
    let item_id = domain::uuid("itemId", &item_id)?;
    let quantity = Quantity::try_from(body.quantity.unwrap_or(1))?;
    let tenant = state.rules.for_tenant(user.tenant_id).await?;
    let _turn = state.user_queue.turn(user.id).await;
    let tx = state.storage.begin(tenant.scope(&user, true)).await?;
    let consume_id = Uuid::now_v7();
    let call = tenant.call(context(&user, consume_id));
    let Invocation { mut tx, journal, result, .. } =
        state.rules.runtime().consume(call, tx, item_id.to_string(), quantity.get()).await;
    let result = match module_answer(&tenant.module.sha256, result) {
        Ok(left) => match journal.check_consume() {
            Ok(()) => {
                let left = i64::try_from(left).map_err(ApiError::internal)?;
                tx.record_consume(consume_id, item_id, quantity.get() as i64, left)
                    .await
                    .map(|()| left)
                    .map_err(Into::into)
            }
            Err(reason) => Err(module_misbehaved(&tenant.module.sha256, &reason)),
        },
        Err(error) => Err(error),
    };
    let left = finish(tx, result).await?;
    Ok(Data(json!({ "app_user_id": user.id, "catalog_item_id": item_id, "quantity": left })))
}

/// A store as the player sees it: each listing with the prices the tenant's
/// rules module quotes now (not the catalog's).
pub async fn store(
    ClientSession(user): ClientSession,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Data<Value>, ApiError> {
    let tenant = state.rules.for_tenant(user.tenant_id).await?;
    let store = tenant.catalog.store_by_key(&key).ok_or_else(|| ApiError::not_found("store"))?;
    let mut tx = state.storage.begin(tenant.scope(&user, true)).await?;
    let mut listings = Vec::with_capacity(store.listings.len());
    let mut failure = None;
    'listings: for listing in &store.listings {
        let Some(item) = tenant.catalog.item_by_key(&listing.item_key) else { continue };
        let mut currencies: Vec<&str> = item.prices.iter().map(|price| price.currency_code.as_str()).collect();
        for price in listing.override_prices.iter().flatten() {
            if !currencies.contains(&price.currency_code.as_str()) {
                currencies.push(&price.currency_code);
            }
        }
        let mut prices = Vec::new();
        let mut purchasable = listing.purchasable;
        for currency_code in currencies {
            let request = PurchaseRequest {
                item_id: item.id.to_string(),
                currency_code: currency_code.to_owned(),
                store_id: Some(store.id.to_string()),
                quantity: 1,
            };
            let call = tenant.call(context(&user, Uuid::now_v7()));
            let invocation = state.rules.runtime().quote(call, tx, request).await;
            tx = invocation.tx;
            match module_answer(&tenant.module.sha256, invocation.result) {
                Ok(quote) if quote.unit_price >= 0 => {
                    purchasable &= quote.purchasable;
                    prices.push(json!({ "currency_code": currency_code, "amount": quote.unit_price }));
                }
                Ok(quote) => {
                    failure = Some(module_misbehaved(&tenant.module.sha256, &format!("quoted {}", quote.unit_price)));
                    break 'listings;
                }
                // A currency the rules do not price is left out.
                Err(ApiError::NoPrice | ApiError::NotPurchasable) => {}
                Err(error) => {
                    failure = Some(error);
                    break 'listings;
                }
            }
        }
        listings.push(json!({
            "item_id": item.id,
            "item_key": item.key,
            "name": item.name,
            "icon_url": item.icon_url,
            "item_type": item.item_type,
            "category": item.category,
            "prices": prices,
            "purchasable": purchasable,
            "max_purchases_per_user": listing.max_purchases_per_user,
        }));
    }
    // Quotes change nothing: the transaction only gave them a consistent view.
    rollback(tx).await;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(Data(json!({ "id": store.id, "key": store.key, "name": store.name, "listings": listings })))
}

/// The guest's answer as an API result: its rule errors become their codes;
/// a trap or an exhausted limit becomes `MODULE_FAILED`, logged as the
/// module's fault; a storage failure while it ran is the host's.
fn module_answer<T>(sha256: &str, result: Result<Result<T, RuleError>, CallFailure>) -> Result<T, ApiError> {
    match result {
        Ok(answer) => answer.map_err(ApiError::from),
        Err(CallFailure::Module(failure)) => {
            tracing::error!(module = %sha256, error = %failure.message, fault = "module", "rules module failed");
            Err(ApiError::ModuleFailed)
        }
        Err(CallFailure::Host(failure)) => {
            tracing::warn!(module = %sha256, error = %failure, fault = "host", "storage failed while the rules module ran");
            Err(failure.into())
        }
    }
}

/// A module that answered but broke the host's re-check.
fn module_misbehaved(sha256: &str, reason: &str) -> ApiError {
    tracing::error!(module = %sha256, reason, "rules module returned an outcome the host refused");
    ApiError::ModuleFailed
}

/// The request context a rules module sees.
fn context(user: &User, request_id: Uuid) -> RequestContext {
    RequestContext {
        tenant_id: user.tenant_id.to_string(),
        user_id: user.id.to_string(),
        request_id: request_id.to_string(),
        now_ms: Utc::now().timestamp_millis(),
    }
}
