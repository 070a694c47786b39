//! The one API error type. Each variant has a stable code and an HTTP
//! status (SPEC §4-§6); server-side failures answer with an opaque body and
//! log their cause inside the request's span.

use super::serve::body_timed_out;
use crate::rules::ModuleError;
use crate::runtime::RuleError;
use crate::storage::StorageError;
use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `VALIDATION_FAILED`: the request is malformed or out of range.
    #[error("{0}")]
    Validation(String),
    /// 401 `UNAUTHORIZED`: missing or unknown key, or missing, unknown or
    /// expired session.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// 403 `FORBIDDEN`: a valid key of the wrong kind for the route, or a
    /// route the tenant turned off (the message says which).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404 `NOT_FOUND`: the thing named does not exist for this tenant.
    #[error("{0} not found")]
    NotFound(String),
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 `CONFLICT`: a unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// 408 `REQUEST_TIMEOUT`: the body did not arrive in time.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// 413 `PAYLOAD_TOO_LARGE`: the body is over the route's limit (bytes).
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 400 `NO_PRICE`: no price for the item in that currency.
    #[error("the item has no price in this currency")]
    NoPrice,
    /// 400 `NOT_PURCHASABLE`: the listing is shown but not for sale.
    #[error("this listing is not for sale")]
    NotPurchasable,
    /// 400 `MAX_PURCHASES_REACHED`: the listing's per-user cap.
    #[error("the per-user purchase limit of this listing is reached")]
    MaxPurchasesReached,
    /// 400 `INSUFFICIENT_BALANCE`.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// 400 `MAX_BALANCE_EXCEEDED`: a credit would pass the currency's cap.
    #[error("the balance of {0} would exceed its maximum")]
    MaxBalanceExceeded(String),
    /// 400 `MAX_STACK_EXCEEDED`: a grant would take a stack past its maximum.
    #[error("the player's stack of an item would hold more than {}", crate::storage::MAX_STACK_QUANTITY)]
    MaxStackExceeded,
    /// 400 `NOT_CONSUMABLE`.
    #[error("the item is not consumable")]
    NotConsumable,
    /// 400 `INSUFFICIENT_QUANTITY`.
    #[error("the user does not hold enough of the item")]
    InsufficientQuantity,
    /// 422 `IDEMPOTENCY_KEY_REUSED`: the key was used with another body.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// 400 `INVALID_MODULE`: an upload that is not a component implementing
    /// the economy world; the message says what is missing or mistyped.
    #[error("{0}")]
    InvalidModule(String),
    /// 500 `MODULE_FAILED`: the rules module trapped or ran out of a limit.
    #[error("the rules module failed")]
    ModuleFailed,
    /// 503 `BUSY`, with `Retry-After`: a lock or statement waited past its
    /// timeout (another request holds the player's records); nothing was
    /// written, and the same request may succeed when retried.
    #[error("the player's records are busy; retry shortly")]
    Busy(String),
    /// 503 `TENANT_UNAVAILABLE`, with `Retry-After`: the tenant's database
    /// cannot be reached.
    #[error("the tenant's database is unavailable")]
    TenantUnavailable(String),
    /// 500 `INTERNAL`: a bug or an unexpected failure; the cause is logged.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_)
            | Self::NoPrice
            | Self::NotPurchasable
            | Self::MaxPurchasesReached
            | Self::InsufficientBalance
            | Self::MaxBalanceExceeded(_)
            | Self::MaxStackExceeded
            | Self::NotConsumable
            | Self::InsufficientQuantity
            | Self::InvalidModule(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ModuleFailed | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Busy(_) | Self::TenantUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) => "CONFLICT",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::NoPrice => "NO_PRICE",
            Self::NotPurchasable => "NOT_PURCHASABLE",
            Self::MaxPurchasesReached => "MAX_PURCHASES_REACHED",
            Self::InsufficientBalance => "INSUFFICIENT_BALANCE",
            Self::MaxBalanceExceeded(_) => "MAX_BALANCE_EXCEEDED",
            Self::MaxStackExceeded => "MAX_STACK_EXCEEDED",
            Self::NotConsumable => "NOT_CONSUMABLE",
            Self::InsufficientQuantity => "INSUFFICIENT_QUANTITY",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::InvalidModule(_) => "INVALID_MODULE",
            Self::ModuleFailed => "MODULE_FAILED",
            Self::Busy(_) => "BUSY",
            Self::TenantUnavailable(_) => "TENANT_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    pub fn forbidden(why: &'static str) -> Self {
        Self::Forbidden(why)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }
}

/// What a 503 tells the client to wait before retrying, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause, debug = ?cause, "request failed")
            }
            Self::Busy(cause) => tracing::warn!(error = %cause, "request timed out waiting on the database"),
            Self::TenantUnavailable(cause) => tracing::warn!(error = %cause, "tenant database unavailable"),
            _ => {}
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (self.status(), Json(body)).into_response();
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Conflict(what) => Self::Conflict(what.into()),
            StorageError::StackLimit => Self::MaxStackExceeded,
            StorageError::Busy(cause) => Self::Busy(cause),
            StorageError::Unavailable(cause) => Self::TenantUnavailable(cause),
            other @ (StorageError::Backend(_) | StorageError::Stale) => Self::internal(other),
        }
    }
}

impl From<ModuleError> for ApiError {
    fn from(error: ModuleError) -> Self {
        match error {
            ModuleError::Invalid(reason) => Self::InvalidModule(reason),
            ModuleError::Unknown(_) => Self::not_found("module"),
            ModuleError::Storage(error) => error.into(),
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(error: RuleError) -> Self {
        match error {
            RuleError::NotFound(what) => Self::NotFound(what),
            RuleError::NoPrice => Self::NoPrice,
            RuleError::NotPurchasable => Self::NotPurchasable,
            RuleError::MaxPurchasesReached => Self::MaxPurchasesReached,
            RuleError::InsufficientBalance => Self::InsufficientBalance,
            RuleError::MaxBalanceExceeded(code) => Self::MaxBalanceExceeded(code),
            RuleError::NotConsumable => Self::NotConsumable,
            RuleError::InsufficientQuantity => Self::InsufficientQuantity,
            RuleError::Invalid(message) => Self::Validation(message),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::BytesRejection(rejection) => rejection.into(),
            other => Self::Validation(other.body_text()),
        }
    }
}

/// A body that could not be read: too slow, too large, or cut off. The
/// limit named is the JSON routes' (the module upload names its own).
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if body_timed_out(&rejection) {
            Self::RequestTimeout
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge(crate::http::MAX_JSON_BODY_BYTES)
        } else {
            Self::Validation(rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::Validation(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::Validation(rejection.body_text())
    }
}
