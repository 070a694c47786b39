//! PlayFab's Economy v2 inventory API, for games on PlayFab's SDKs: the
//! player's `X-EntityToken` for purchases and reads, the server's
//! `X-SecretKey` for adding and subtracting. Inventories hold collections
//! of stacks; currencies are held in the default collection, named by their
//! codes. Every write takes an `ETag` (in the body, or the
//! `X-PlayFab-Economy-If-Match` header) and an `IdempotencyId`.
//!
//! Front ends of the same economy service as the native routes: a
//! purchase here is the same purchase, with the same rules, caps, ledger
//! and idempotency namespace.

use super::AppState;
use super::error::ApiError;
use super::extract::OptionalJson;
use super::openapi as doc;
use super::playfab::{Code, EntitySession, PlayFabError, ok, timestamp};
use crate::domain::{IdempotencyKey, MAX_AMOUNT, MAX_DURATION_SECONDS, Quantity};
use crate::economy::{Collection, Holding, Outcome, Placement, PurchaseRequest, StackChange};
use crate::storage::{DEFAULT_STACK, KeyKind, StackKey, User};
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Number, Value, json};
use uuid::Uuid;

/// `GetInventoryItems` page sizes, as PlayFab's.
const DEFAULT_COUNT: u64 = 10;
const MAX_COUNT: u64 = 50;
/// PlayFab's limit on a stack's display properties.
const MAX_DISPLAY_PROPERTIES_BYTES: usize = 1000;
/// The longest collection or stack id.
const MAX_ID_CHARS: usize = 100;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct EntityKey {
    id: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AlternateId {
    #[serde(rename = "Type")]
    kind: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ItemReference {
    id: Option<String>,
    alternate_id: Option<AlternateId>,
    stack_id: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InitialValues {
    display_properties: Option<Value>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PriceAmount {
    #[schema(value_type = Option<f64>)]
    amount: Option<Number>,
    item_id: Option<String>,
    stack_id: Option<String>,
}

/// The fields of `PurchaseInventoryItems`, `AddInventoryItems` and
/// `SubtractInventoryItems` (each uses its own). `CustomTags` and
/// `DeleteEmptyStacks` are accepted and change nothing: an empty stack is
/// never listed, kept or not.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct WriteBody {
    #[schema(value_type = Option<f64>)]
    amount: Option<Number>,
    collection_id: Option<String>,
    #[schema(value_type = Option<f64>)]
    duration_in_seconds: Option<Number>,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    entity: Option<EntityKey>,
    idempotency_id: Option<String>,
    item: Option<ItemReference>,
    new_stack_values: Option<InitialValues>,
    price_amounts: Option<Vec<PriceAmount>>,
    store_id: Option<String>,
}

fn invalid(message: impl Into<String>) -> PlayFabError {
    PlayFabError::refused(Code::InvalidParams, message)
}

/// A whole number field within `1..=max`.
fn whole(field: &str, value: Option<&Number>, max: i64) -> Result<Option<i64>, PlayFabError> {
    let Some(value) = value else { return Ok(None) };
    match value.as_i64() {
        Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(format!("{field} must be a whole number from 1 to {max}"))),
    }
}

/// A collection or stack id: `default` when not given.
fn stack_part(field: &str, value: Option<&str>) -> Result<String, PlayFabError> {
    match value {
        None => Ok(DEFAULT_STACK.into()),
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control) => {
            Ok(id.into())
        }
        Some(_) => Err(invalid(format!("{field} must be 1 to {MAX_ID_CHARS} characters"))),
    }
}

impl WriteBody {
    fn amount(&self) -> Result<i64, PlayFabError> {
        whole("Amount", self.amount.as_ref(), MAX_AMOUNT)?.ok_or_else(|| invalid("Amount is required"))
    }

    /// Where the request's items land.
    fn placement(&self) -> Result<Placement, PlayFabError> {
        let item = self.item.as_ref();
        let stack = StackKey {
            collection_id: stack_part("CollectionId", self.collection_id.as_deref())?,
            stack_id: stack_part("Item.StackId", item.and_then(|item| item.stack_id.as_deref()))?,
        };
        let display_properties = match self
            .new_stack_values
            .as_ref()
            .and_then(|values| values.display_properties.clone())
        {
            None | Some(Value::Null) => None,
            Some(properties @ Value::Object(_)) if properties.to_string().len() <= MAX_DISPLAY_PROPERTIES_BYTES => {
                Some(properties)
            }
            Some(_) => {
                return Err(invalid(format!(
                    "NewStackValues.DisplayProperties must be an object of at most {MAX_DISPLAY_PROPERTIES_BYTES} bytes"
                )));
            }
        };
        let max_duration_seconds = whole("DurationInSeconds", self.duration_in_seconds.as_ref(), MAX_DURATION_SECONDS)?;
        Ok(Placement { stack, display_properties, max_duration_seconds, bundle_purchase_id: None })
    }

    /// The item named by `Item.Id` or `Item.AlternateId` (a `FriendlyId`).
    async fn holding(&self, state: &AppState, tenant_id: Uuid) -> Result<Holding, PlayFabError> {
        let item = self.item.as_ref().ok_or_else(|| invalid("Item is required"))?;
        let friendly = match &item.alternate_id {
            Some(AlternateId { kind: Some(kind), value: Some(value) }) if kind == "FriendlyId" => Some(value.as_str()),
            Some(_) => return Err(invalid("Item.AlternateId must be of Type FriendlyId with a Value")),
            None => None,
        };
        if item.id.is_none() && friendly.is_none() {
            return Err(invalid("Item.Id or Item.AlternateId is required"));
        }
        Ok(state.economy.holding(tenant_id, item.id.as_deref(), friendly).await?)
    }

    fn idempotency_key(&self) -> Result<Option<IdempotencyKey>, PlayFabError> {
        Ok(self.idempotency_id.clone().map(IdempotencyKey::try_from).transpose().map_err(ApiError::from)?)
    }

    /// The collection version the write depends on: the body's `ETag`, or
    /// the `X-PlayFab-Economy-If-Match` header.
    fn if_match(&self, headers: &HeaderMap) -> Option<String> {
        let header = headers.get("x-playfab-economy-if-match").and_then(|value| value.to_str().ok());
        self.etag.clone().or_else(|| header.map(str::to_owned)).filter(|etag| !etag.is_empty())
    }
}

/// A write's answer: the collection's new version, the idempotency id, and
/// what was done.
fn written(etag: String, idempotency_id: Option<String>, transaction_id: Uuid) -> Response {
    ok(json!({ "ETag": etag, "IdempotencyId": idempotency_id, "TransactionIds": [transaction_id] }))
}

/// The entity a player's request names must be the player.
fn own_entity(user: &User, entity: Option<&EntityKey>) -> Result<(), PlayFabError> {
    match entity.and_then(|entity| entity.id.as_deref()) {
        Some(id) if id != user.id.to_string() => Err(ApiError::Forbidden.into()),
        _ => Ok(()),
    }
}

/// `POST /Inventory/PurchaseInventoryItems`: buys `Amount` of the item at
/// the one price in `PriceAmounts` (which must be what the rules charge),
/// through `StoreId` if given, into the collection and stack named.
#[utoipa::path(post, path = "/Inventory/PurchaseInventoryItems", tag = "playfab", security(("playfab_entity" = [])), request_body = WriteBody, responses((status = 200, description = "Bought", body = doc::PlayFabOk<doc::InventoryWritten>), (status = 400, description = "Refused", body = doc::ApiErrorWrapper), (status = 401, description = "No valid entity token", body = doc::ApiErrorWrapper), (status = 403, description = "Another player's entity", body = doc::ApiErrorWrapper), (status = 412, description = "The ETag is stale", body = doc::ApiErrorWrapper)))]
pub async fn purchase_inventory_items(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Result<EntitySession, PlayFabError>,
    body: Result<OptionalJson<WriteBody>, ApiError>,
) -> Result<Response, PlayFabError> {
    let EntitySession(user) = session?;
    let OptionalJson(body) = body?;
    own_entity(&user, body.entity.as_ref())?;
    let quantity = Quantity::try_from(body.amount()?).map_err(ApiError::from)?;
    let Holding::Item(item_id) = body.holding(&state, user.tenant_id).await? else {
        return Err(PlayFabError::refused(Code::InvalidCatalogItemConfiguration, "A currency is not sold"));
    };
    let [price] = body.price_amounts.as_deref().unwrap_or_default() else {
        return Err(invalid("PriceAmounts must hold exactly one price"));
    };
    let currency = price.item_id.as_deref().ok_or_else(|| invalid("PriceAmounts.ItemId is required"))?;
    let Holding::Currency(currency_code) = state.economy.holding(user.tenant_id, Some(currency), None).await? else {
        return Err(PlayFabError::refused(Code::InvalidCatalogItemConfiguration, "A price must be in a currency"));
    };
    if stack_part("PriceAmounts.StackId", price.stack_id.as_deref())? != DEFAULT_STACK {
        return Err(invalid("a currency is held in the default stack"));
    }
    let unit_price = match price.amount.as_ref().and_then(Number::as_i64) {
        Some(amount) if (0..=MAX_AMOUNT).contains(&amount) => amount,
        _ => return Err(invalid(format!("PriceAmounts.Amount must be a whole number from 0 to {MAX_AMOUNT}"))),
    };
    let store_id = match body.store_id.as_deref() {
        None => None,
        Some(id) => {
            Some(Uuid::parse_str(id).map_err(|_| PlayFabError::refused(Code::StoreNotFound, "Store not found"))?)
        }
    };
    let placement = body.placement()?;
    let request = PurchaseRequest {
        placement,
        expected_unit_price: Some(unit_price),
        if_match: body.if_match(&headers),
        ..PurchaseRequest::new(item_id, currency_code, store_id, quantity)
    };
    let key = body.idempotency_key()?;
    let (Outcome { value, .. }, etag) = state.economy.purchase_versioned(&user, &request, key).await?;
    Ok(written(etag, body.idempotency_id, value.purchase_id))
}

/// `POST /Inventory/AddInventoryItems` (server): adds `Amount` of an item
/// (into the collection and stack named) or of a currency.
#[utoipa::path(post, path = "/Inventory/AddInventoryItems", tag = "playfab", security(("playfab_secret" = [])), request_body = WriteBody, responses((status = 200, description = "Added", body = doc::PlayFabOk<doc::InventoryWritten>), (status = 400, description = "Refused", body = doc::ApiErrorWrapper), (status = 401, description = "No secret key", body = doc::ApiErrorWrapper), (status = 403, description = "Not a server key", body = doc::ApiErrorWrapper), (status = 412, description = "The ETag is stale", body = doc::ApiErrorWrapper)))]
pub async fn add_inventory_items(
    State(state): State<AppState>,
    headers: HeaderMap,
    key: Result<SecretKey, PlayFabError>,
    body: Result<OptionalJson<WriteBody>, ApiError>,
) -> Result<Response, PlayFabError> {
    change(state, headers, key, body, 1).await
}

/// `POST /Inventory/SubtractInventoryItems` (server): takes `Amount` of an
/// item from the stack named, or of a currency; never below zero.
#[utoipa::path(post, path = "/Inventory/SubtractInventoryItems", tag = "playfab", security(("playfab_secret" = [])), request_body = WriteBody, responses((status = 200, description = "Taken", body = doc::PlayFabOk<doc::InventoryWritten>), (status = 400, description = "Refused", body = doc::ApiErrorWrapper), (status = 401, description = "No secret key", body = doc::ApiErrorWrapper), (status = 403, description = "Not a server key", body = doc::ApiErrorWrapper), (status = 412, description = "The ETag is stale", body = doc::ApiErrorWrapper)))]
pub async fn subtract_inventory_items(
    State(state): State<AppState>,
    headers: HeaderMap,
    key: Result<SecretKey, PlayFabError>,
    body: Result<OptionalJson<WriteBody>, ApiError>,
) -> Result<Response, PlayFabError> {
    change(state, headers, key, body, -1).await
}

async fn change(
    state: AppState,
    headers: HeaderMap,
    key: Result<SecretKey, PlayFabError>,
    body: Result<OptionalJson<WriteBody>, ApiError>,
    sign: i64,
) -> Result<Response, PlayFabError> {
    let SecretKey(tenant_id) = key?;
    let OptionalJson(body) = body?;
    let user = entity(&state, tenant_id, body.entity.as_ref()).await?;
    let change = StackChange {
        holding: body.holding(&state, tenant_id).await?,
        amount: sign * body.amount()?,
        placement: body.placement()?,
        if_match: body.if_match(&headers),
    };
    let Outcome { value, .. } = state.economy.change_stack(&user, &change, body.idempotency_key()?).await?;
    let etag = state.economy.collection_version(&user, &change.placement.stack.collection_id).await?;
    Ok(written(etag, body.idempotency_id, value.transaction_id))
}

/// The player a server's request names: `Entity.Id` is the player's id
/// (`PlayFabId`, our `app_user_id`), looked up within the key's tenant.
async fn entity(state: &AppState, tenant_id: Uuid, entity: Option<&EntityKey>) -> Result<User, PlayFabError> {
    let id = entity.and_then(|entity| entity.id.as_deref()).ok_or_else(|| invalid("Entity.Id is required"))?;
    let not_found = || PlayFabError::refused(Code::AccountNotFound, "User not found");
    let user_id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.economy.player_by_id(tenant_id, user_id).await?.ok_or_else(not_found)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ReadBody {
    collection_id: Option<String>,
    continuation_token: Option<String>,
    #[schema(value_type = Option<f64>)]
    count: Option<Number>,
    entity: Option<EntityKey>,
    filter: Option<String>,
}

/// `POST /Inventory/GetInventoryItems`: a page of the player's collection
/// (currencies first, then stacks by item and stack), with its ETag.
/// `Filter` takes PlayFab's `type`, `id` and `stackId` equalities joined
/// by `and`.
#[utoipa::path(post, path = "/Inventory/GetInventoryItems", tag = "playfab", security(("playfab_entity" = [])), request_body = ReadBody, responses((status = 200, description = "A page of the collection", body = doc::PlayFabOk<doc::InventoryItems>), (status = 400, description = "Refused", body = doc::ApiErrorWrapper), (status = 401, description = "No valid entity token", body = doc::ApiErrorWrapper)))]
pub async fn get_inventory_items(
    State(state): State<AppState>,
    session: Result<EntitySession, PlayFabError>,
    body: Result<OptionalJson<ReadBody>, ApiError>,
) -> Result<Response, PlayFabError> {
    let EntitySession(user) = session?;
    let OptionalJson(body) = body?;
    own_entity(&user, body.entity.as_ref())?;
    let count = match body.count.as_ref() {
        None => DEFAULT_COUNT,
        Some(count) => match count.as_u64() {
            Some(n) if (1..=MAX_COUNT).contains(&n) => n,
            _ => return Err(invalid(format!("Count must be a whole number from 1 to {MAX_COUNT}"))),
        },
    };
    let start = match body.continuation_token.as_deref() {
        None | Some("") => 0,
        Some(token) => token.parse::<usize>().map_err(|_| invalid("ContinuationToken is not valid"))?,
    };
    let filter = Filter::parse(body.filter.as_deref().unwrap_or_default())?;
    let collection_id = stack_part("CollectionId", body.collection_id.as_deref())?;
    let Collection { stacks, balances, etag } = state.economy.collection(&user, &collection_id).await?;
    let currencies = balances.iter().map(|balance| {
        json!({ "Id": balance.currency_code, "StackId": DEFAULT_STACK, "Amount": balance.balance, "Type": "currency" })
    });
    let items = stacks.iter().map(|stack| {
        let mut item = json!({
            "Id": stack.catalog_item_id,
            "StackId": stack.stack_id,
            "Amount": stack.quantity,
            "Type": "catalogItem",
        });
        if let Some(properties) = &stack.display_properties {
            item["DisplayProperties"] = properties.clone();
        }
        if let Some(expires_at) = stack.expires_at {
            item["ExpirationDate"] = json!(timestamp(expires_at));
        }
        item
    });
    let all: Vec<Value> = currencies.chain(items).filter(|item| filter.matches(item)).collect();
    let end = start.saturating_add(count as usize).min(all.len());
    let page = all.get(start..end).unwrap_or_default();
    let mut data = json!({ "Items": page, "ETag": etag });
    if end < all.len() {
        data["ContinuationToken"] = json!(end.to_string());
    }
    Ok(ok(data))
}

/// PlayFab's inventory filter, as far as a collection of stacks needs it:
/// `type eq '…'`, `id eq '…'` and `stackId eq '…'`, joined by `and`.
#[derive(Default)]
struct Filter(Vec<(&'static str, String)>);

impl Filter {
    fn parse(text: &str) -> Result<Self, PlayFabError> {
        let mut terms = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(terms));
        }
        let unsupported = || invalid("Filter supports type, id and stackId eq 'value', joined by and");
        for term in text.split(" and ") {
            let mut words = term.trim().splitn(3, ' ');
            let (Some(field), Some("eq"), Some(value)) = (words.next(), words.next(), words.next()) else {
                return Err(unsupported());
            };
            let field = match field {
                "type" => "Type",
                "id" => "Id",
                "stackId" => "StackId",
                _ => return Err(unsupported()),
            };
            let value = value.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).ok_or_else(unsupported)?;
            terms.push((field, value.to_owned()));
        }
        Ok(Self(terms))
    }

    fn matches(&self, item: &Value) -> bool {
        self.0.iter().all(|(field, value)| match &item[*field] {
            Value::String(text) => text == value,
            other => other.to_string().trim_matches('"') == value,
        })
    }
}

/// A tenant's server key in PlayFab's `X-SecretKey` header.
pub struct SecretKey(pub Uuid);

impl FromRequestParts<AppState> for SecretKey {
    type Rejection = PlayFabError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PlayFabError> {
        let key = parts.headers.get("x-secretkey").and_then(|value| value.to_str().ok());
        let missing = || PlayFabError::credentials(Code::NotAuthenticated, "This API requires the title's secret key");
        let record = state.credentials.api_key(&state.economy, key.ok_or_else(missing)?).await?;
        match record {
            Some(record) if matches!(record.kind, KeyKind::Server | KeyKind::Admin) => {
                state.economy.admit_key(record.tenant_id, record.kind).await?;
                Ok(Self(record.tenant_id))
            }
            Some(_) => Err(PlayFabError::from(ApiError::Forbidden)),
            None => Err(missing()),
        }
    }
}
