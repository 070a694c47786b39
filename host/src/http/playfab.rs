//! PlayFab's client API, for games built on PlayFab's SDKs: the custom-id
//! login that gives a client its session ticket, and the legacy economy's
//! inventory. Answers are `{"code": 200, "status": "OK", "data": …}`,
//! errors PlayFab's `ApiErrorWrapper` with its error names and numbers.
//! Front ends of the same economy service as the native routes.
//!
//! A title id names a tenant (its id). A session ticket is
//! `{tenant id}.{session token}`: the tenant is read from the ticket, and
//! the session is looked up within it.

use super::AppState;
use super::error::ApiError;
use super::extract::OptionalJson;
use super::openapi as doc;
use crate::domain::CustomId;
use crate::economy::{CustomLogin, EconomyError};
use crate::storage::{
    BundlePurchase, CatalogItem, Content, InventoryEntry, ItemType, KeyKind, PaidPrice, User, WalletEntry,
};
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// PlayFab's error names and numbers (its `PlayFabErrorCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Code {
    InvalidParams,
    AccountNotFound,
    InvalidTitleId,
    ItemNotFound,
    WrongPrice,
    InsufficientFunds,
    BodyTooLarge,
    InvalidRequest,
    NotAuthenticated,
    NotAuthorized,
    InternalServerError,
    DatabaseThroughputExceeded,
    ServiceUnavailable,
    StoreNotFound,
    EntityTokenMissing,
    EntityTokenInvalid,
    EntityTokenExpired,
    PreconditionFailed,
    InvalidCatalogItemConfiguration,
    /// `APIClientRequestRateLimitExceeded`.
    RateLimitExceeded,
}

impl Code {
    fn name_and_number(self) -> (&'static str, u32) {
        match self {
            Self::InvalidParams => ("InvalidParams", 1000),
            Self::AccountNotFound => ("AccountNotFound", 1001),
            Self::InvalidTitleId => ("InvalidTitleId", 1004),
            Self::ItemNotFound => ("ItemNotFound", 1047),
            Self::WrongPrice => ("WrongPrice", 1053),
            Self::InsufficientFunds => ("InsufficientFunds", 1059),
            Self::BodyTooLarge => ("BodyTooLarge", 1068),
            Self::InvalidRequest => ("InvalidRequest", 1071),
            Self::NotAuthenticated => ("NotAuthenticated", 1074),
            Self::NotAuthorized => ("NotAuthorized", 1089),
            Self::InternalServerError => ("InternalServerError", 1110),
            Self::DatabaseThroughputExceeded => ("DatabaseThroughputExceeded", 1113),
            Self::ServiceUnavailable => ("ServiceUnavailable", 1123),
            Self::StoreNotFound => ("StoreNotFound", 1221),
            Self::EntityTokenMissing => ("EntityTokenMissing", 1334),
            Self::EntityTokenInvalid => ("EntityTokenInvalid", 1335),
            Self::EntityTokenExpired => ("EntityTokenExpired", 1336),
            Self::RateLimitExceeded => ("APIClientRequestRateLimitExceeded", 1199),
            Self::PreconditionFailed => ("PreconditionFailed", 1610),
            Self::InvalidCatalogItemConfiguration => ("InvalidCatalogItemConfiguration", 4015),
        }
    }

    /// PlayFab answers every refusal 400, but for credentials (401, 403)
    /// and a stale ETag (412).
    fn status(self) -> Option<StatusCode> {
        match self {
            Self::NotAuthenticated | Self::EntityTokenMissing | Self::EntityTokenInvalid | Self::EntityTokenExpired => {
                Some(StatusCode::UNAUTHORIZED)
            }
            Self::NotAuthorized => Some(StatusCode::FORBIDDEN),
            Self::PreconditionFailed => Some(StatusCode::PRECONDITION_FAILED),
            Self::RateLimitExceeded => Some(StatusCode::TOO_MANY_REQUESTS),
            _ => None,
        }
    }
}

/// An error in PlayFab's `ApiErrorWrapper`.
pub struct PlayFabError {
    code: Code,
    message: String,
    /// What the host logs and answers the status of.
    cause: ApiError,
}

impl PlayFabError {
    /// A refusal of the request as sent (answered 400).
    pub(super) fn refused(code: Code, message: impl Into<String>) -> Self {
        let message = message.into();
        Self { code, cause: ApiError::validation(message.clone()), message }
    }

    /// A refusal of the caller's credentials.
    pub(super) fn credentials(code: Code, message: &str) -> Self {
        Self { code, message: message.into(), cause: ApiError::Unauthorized }
    }

    fn not_authenticated() -> Self {
        Self::credentials(Code::NotAuthenticated, "This API method does not allow anonymous callers.")
    }
}

impl From<ApiError> for PlayFabError {
    fn from(error: ApiError) -> Self {
        let code = match &error {
            ApiError::Validation(_) | ApiError::Economy(EconomyError::Invalid(_)) => Code::InvalidParams,
            ApiError::Unauthorized => Code::NotAuthenticated,
            ApiError::Forbidden | ApiError::Economy(EconomyError::TurnedOff(_)) => Code::NotAuthorized,
            ApiError::PayloadTooLarge(_) => Code::BodyTooLarge,
            ApiError::Economy(economy) => match economy {
                EconomyError::NotFound(what) if what == "store" => Code::StoreNotFound,
                EconomyError::NotFound(what) if what == "user" || what == "player" => Code::AccountNotFound,
                EconomyError::NotFound(_) => Code::ItemNotFound,
                EconomyError::InsufficientBalance | EconomyError::InsufficientQuantity => Code::InsufficientFunds,
                EconomyError::NoPrice | EconomyError::NotPurchasable(_) => Code::InvalidCatalogItemConfiguration,
                EconomyError::PriceChanged(_) => Code::WrongPrice,
                EconomyError::CollectionChanged => Code::PreconditionFailed,
                EconomyError::Busy(_) => Code::DatabaseThroughputExceeded,
                EconomyError::Unavailable(_) => Code::ServiceUnavailable,
                EconomyError::RateLimited(_) => Code::RateLimitExceeded,
                EconomyError::Internal(_) | EconomyError::ModuleFailed => Code::InternalServerError,
                _ => Code::InvalidRequest,
            },
            _ => Code::InvalidRequest,
        };
        Self { code, message: error.to_string(), cause: error }
    }
}

impl From<EconomyError> for PlayFabError {
    fn from(error: EconomyError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for PlayFabError {
    fn into_response(self) -> Response {
        let status = match self.code.status() {
            Some(status) => status,
            None if self.cause.status().is_server_error() => self.cause.status(),
            None => StatusCode::BAD_REQUEST,
        };
        let (error, number) = self.code.name_and_number();
        let body = json!({
            "code": status.as_u16(),
            "status": status.canonical_reason().unwrap_or_default().replace(' ', ""),
            "error": error,
            "errorCode": number,
            "errorMessage": self.message,
        });
        self.cause.respond(status, body)
    }
}

/// A PlayFab success: `{"code": 200, "status": "OK", "data": …}`.
pub(super) fn ok(data: Value) -> Response {
    axum::Json(json!({ "code": 200, "status": "OK", "data": data })).into_response()
}

/// PlayFab's timestamps: UTC, milliseconds, `Z`.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = PlayFabLoginBody)]
pub struct LoginBody {
    title_id: Option<String>,
    custom_id: Option<String>,
    create_account: Option<bool>,
}

/// `POST /Client/LoginWithCustomID`: a session ticket (and entity token)
/// for the player a custom id names; with `CreateAccount: true`, a custom
/// id that names no player yet makes one.
#[utoipa::path(post, path = "/Client/LoginWithCustomID", tag = "playfab", request_body = LoginBody, responses((status = 200, description = "Signed in", body = doc::PlayFabOk<doc::LoginResult>), (status = 400, description = "Refused", body = doc::ApiErrorWrapper), (status = 403, description = "Custom-id login is turned off", body = doc::ApiErrorWrapper)))]
pub async fn login_with_custom_id(
    State(state): State<AppState>,
    body: Result<OptionalJson<LoginBody>, ApiError>,
) -> Result<Response, PlayFabError> {
    let OptionalJson(body) = body?;
    let required = |field: &str| {
        PlayFabError::refused(Code::InvalidParams, format!("Invalid input parameters: {field} is required"))
    };
    let title_id = body.title_id.ok_or_else(|| required("TitleId"))?;
    let custom_id = body.custom_id.ok_or_else(|| required("CustomId"))?;
    let custom_id = CustomId::try_from(custom_id).map_err(ApiError::from)?;
    let invalid_title = || PlayFabError::refused(Code::InvalidTitleId, "Invalid title id");
    let tenant_id = Uuid::parse_str(&title_id).map_err(|_| invalid_title())?;
    let refused = |error| match error {
        EconomyError::UnknownTenant => invalid_title(),
        EconomyError::NotFound(_) => PlayFabError::refused(Code::AccountNotFound, "User not found"),
        other => other.into(),
    };
    // A login needs no key: it counts on the title's client key.
    state.economy.admit_key(tenant_id, KeyKind::Client).await.map_err(refused)?;
    let login = state.economy.login_custom(tenant_id, &custom_id, body.create_account.unwrap_or(false)).await;
    let CustomLogin { session, newly_created } = login.map_err(refused)?;
    let ticket = format!("{tenant_id}.{}", session.session_token);
    let entity =
        json!({ "Id": session.app_user_id, "Type": "title_player_account", "TypeString": "title_player_account" });
    Ok(ok(json!({
        "SessionTicket": ticket,
        "PlayFabId": session.app_user_id,
        "NewlyCreated": newly_created,
        "EntityToken": { "EntityToken": ticket, "TokenExpiration": timestamp(session.expires_at), "Entity": entity },
        "SettingsForUser": { "NeedsAttribution": false, "GatherDeviceInfo": false, "GatherFocusInfo": false },
    })))
}

/// The player of a PlayFab session ticket (`X-Authorization`).
pub struct PlayFabSession(pub User);

/// The player of a PlayFab entity token (`X-EntityToken`).
pub struct EntitySession(pub User);

/// What a ticket (or entity token) names.
enum Ticket {
    Live(User),
    Expired,
    Unknown,
}

/// Looks a ticket up: the tenant is read from it, the session looked up
/// within that tenant.
async fn ticket(state: &AppState, ticket: &str) -> Result<Ticket, PlayFabError> {
    let Some((tenant, token)) = ticket.split_once('.') else { return Ok(Ticket::Unknown) };
    let Ok(tenant_id) = Uuid::parse_str(tenant) else { return Ok(Ticket::Unknown) };
    let session = match state.credentials.session(&state.economy, tenant_id, token).await {
        Ok(session) => session,
        Err(EconomyError::UnknownTenant) => None,
        Err(error) => return Err(error.into()),
    };
    Ok(match session {
        Some(session) if session.user.tenant_id == tenant_id => match session.expires_at > Utc::now() {
            true => {
                // A title's players call with their tickets, counted on its client key.
                state.economy.admit_key(tenant_id, KeyKind::Client).await?;
                Ticket::Live(session.user)
            }
            false => Ticket::Expired,
        },
        _ => Ticket::Unknown,
    })
}

impl FromRequestParts<AppState> for PlayFabSession {
    type Rejection = PlayFabError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PlayFabError> {
        let header = parts.headers.get("x-authorization").and_then(|value| value.to_str().ok());
        match header {
            Some(header) => match ticket(state, header).await? {
                Ticket::Live(user) => Ok(Self(user)),
                Ticket::Expired | Ticket::Unknown => Err(PlayFabError::not_authenticated()),
            },
            None => Err(PlayFabError::not_authenticated()),
        }
    }
}

impl FromRequestParts<AppState> for EntitySession {
    type Rejection = PlayFabError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PlayFabError> {
        let header = parts.headers.get("x-entitytoken").and_then(|value| value.to_str().ok());
        let Some(header) = header else {
            return Err(PlayFabError::credentials(Code::EntityTokenMissing, "This API requires an entity token"));
        };
        match ticket(state, header).await? {
            Ticket::Live(user) => Ok(Self(user)),
            Ticket::Expired => Err(PlayFabError::credentials(Code::EntityTokenExpired, "The entity token has expired")),
            Ticket::Unknown => Err(PlayFabError::credentials(Code::EntityTokenInvalid, "The entity token is invalid")),
        }
    }
}

/// `POST /Client/GetUserInventory`: the player's item instances, balances
/// and regenerating currencies' next recharges. Expired and used-up stacks
/// are left out.
#[utoipa::path(post, path = "/Client/GetUserInventory", tag = "playfab", security(("playfab_ticket" = [])), responses((status = 200, description = "The legacy inventory", body = doc::PlayFabOk<doc::UserInventory>), (status = 401, description = "No valid session ticket", body = doc::ApiErrorWrapper)))]
pub async fn get_user_inventory(
    State(state): State<AppState>,
    session: Result<PlayFabSession, PlayFabError>,
) -> Result<Response, PlayFabError> {
    let PlayFabSession(user) = session?;
    let (stacks, wallet, paid, bundles) = tokio::try_join!(
        state.economy.inventory(&user),
        state.economy.wallet(&user),
        state.economy.paid_prices(&user),
        state.economy.bundle_purchases(&user),
    )?;
    let bundles = bundles.iter().map(|(purchase, item)| bundle_instance(purchase, item));
    let inventory: Vec<Value> = bundles.chain(stacks.iter().map(|stack| item_instance(stack, &paid))).collect();
    let balances: Map<String, Value> =
        wallet.iter().map(|entry| (entry.currency_code.clone(), json!(entry.balance))).collect();
    let recharges: Map<String, Value> = wallet.iter().filter_map(recharge_time).collect();
    Ok(ok(json!({ "Inventory": inventory, "VirtualCurrency": balances, "VirtualCurrencyRechargeTimes": recharges })))
}

/// A bundle's purchase as a legacy `ItemInstance`: its id is the
/// purchase's, the `BundleParent` of the stacks the purchase created;
/// `BundleContents` names the items one bundle grants.
fn bundle_instance(purchase: &BundlePurchase, item: &CatalogItem) -> Value {
    let contents: Vec<&str> = item
        .contents
        .iter()
        .filter_map(|content| match content {
            Content::Item { item_key, .. } => Some(item_key.as_str()),
            Content::Currency { .. } => None,
        })
        .collect();
    let mut instance = json!({
        "ItemId": item.key,
        "ItemInstanceId": purchase.id,
        "DisplayName": item.name,
        "PurchaseDate": timestamp(purchase.created_at),
        "BundleContents": contents,
        "UnitCurrency": purchase.currency_code,
        "UnitPrice": purchase.unit_price,
    });
    if let Some(class) = &item.category {
        instance["ItemClass"] = json!(class);
    }
    instance
}

/// One stack as a legacy `ItemInstance`. A stack of more than one (or any
/// consumable) says how many in `RemainingUses`.
fn item_instance(stack: &InventoryEntry, paid: &[PaidPrice]) -> Value {
    let item = &stack.catalog_items;
    let mut instance = json!({
        "ItemId": item.key,
        "ItemInstanceId": format!("{}.{}.{}", stack.catalog_item_id, stack.collection_id, stack.stack_id),
        "DisplayName": item.name,
        "PurchaseDate": timestamp(stack.acquired_at),
    });
    if let Some(class) = &item.category {
        instance["ItemClass"] = json!(class);
    }
    if let Some(expires_at) = stack.expires_at {
        instance["Expiration"] = json!(timestamp(expires_at));
    }
    if item.item_type == ItemType::Consumable || stack.quantity > 1 {
        instance["RemainingUses"] = json!(stack.quantity);
    }
    if let Some(price) = paid.iter().find(|price| price.item_id == stack.catalog_item_id) {
        instance["UnitCurrency"] = json!(price.currency_code);
        instance["UnitPrice"] = json!(price.unit_price);
    }
    if let Some(bundle) = stack.bundle_purchase_id {
        instance["BundleParent"] = json!(bundle);
    }
    // A stack's own values (given when a request created it) are its
    // custom data; PlayFab's are strings.
    if let Some(Value::Object(properties)) = &stack.display_properties {
        let custom: Map<String, Value> = properties
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), Value::String(text))
            })
            .collect();
        instance["CustomData"] = Value::Object(custom);
    }
    instance
}

/// A regenerating balance's next recharge, while it is below its max.
fn recharge_time(entry: &WalletEntry) -> Option<(String, Value)> {
    let recharge = entry.recharge.as_ref()?;
    let next = entry.next_recharge_at?;
    let seconds = (next - Utc::now()).num_seconds().max(0);
    let time = json!({ "SecondsToRecharge": seconds, "RechargeTime": timestamp(next), "RechargeMax": recharge.max });
    Some((entry.currency_code.clone(), time))
}
