//! The native API's one error type: what went wrong at the HTTP boundary
//! (credentials, a malformed or slow request), or what the economy service
//! answered. Each maps here, and only here, to a status and a stable code;
//! server-side failures answer with an opaque body and log their cause
//! inside the request's span.

use super::serve::body_timed_out;
use crate::domain::ValidationError;
use crate::economy::EconomyError;
use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What a 503 tells the client to wait before retrying, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `VALIDATION_FAILED`: the request is malformed or out of range.
    #[error("{0}")]
    Validation(String),
    /// 401 `UNAUTHORIZED`: missing or unknown key, or missing, unknown or
    /// expired session.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// 403 `FORBIDDEN`: a valid key of the wrong kind for the route.
    #[error("this key may not call this route")]
    Forbidden,
    /// 404 `NOT_FOUND`: no such route.
    #[error("route not found")]
    NoRoute,
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408 `REQUEST_TIMEOUT`: the body did not arrive in time.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// 413 `PAYLOAD_TOO_LARGE`: the body is over the route's limit (bytes).
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// What the economy service answered.
    #[error(transparent)]
    Economy(#[from] EconomyError),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Economy(error) => match error {
                EconomyError::Invalid(_)
                | EconomyError::NoPrice
                | EconomyError::NotPurchasable(_)
                | EconomyError::MaxPurchasesReached
                | EconomyError::InsufficientBalance
                | EconomyError::MaxBalanceExceeded(_)
                | EconomyError::MaxStackExceeded
                | EconomyError::NotConsumable
                | EconomyError::InsufficientQuantity
                | EconomyError::PriceChanged(_)
                | EconomyError::InvalidModule(_) => StatusCode::BAD_REQUEST,
                EconomyError::CollectionChanged => StatusCode::PRECONDITION_FAILED,
                EconomyError::TurnedOff(_) => StatusCode::FORBIDDEN,
                EconomyError::NotFound(_) | EconomyError::UnknownTenant => StatusCode::NOT_FOUND,
                EconomyError::Conflict(_) | EconomyError::InUse(_) | EconomyError::QuotaExceeded(_) => {
                    StatusCode::CONFLICT
                }
                EconomyError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
                EconomyError::ModuleFailed | EconomyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                EconomyError::Busy(_) | EconomyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                EconomyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NoRoute => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::Economy(error) => match error {
                EconomyError::Invalid(_) => "VALIDATION_FAILED",
                EconomyError::NotFound(_) | EconomyError::UnknownTenant => "NOT_FOUND",
                EconomyError::TurnedOff(_) => "FORBIDDEN",
                EconomyError::Conflict(_) | EconomyError::InUse(_) => "CONFLICT",
                EconomyError::QuotaExceeded(_) => "QUOTA_EXCEEDED",
                EconomyError::NoPrice => "NO_PRICE",
                EconomyError::NotPurchasable(_) => "NOT_PURCHASABLE",
                EconomyError::MaxPurchasesReached => "MAX_PURCHASES_REACHED",
                EconomyError::InsufficientBalance => "INSUFFICIENT_BALANCE",
                EconomyError::MaxBalanceExceeded(_) => "MAX_BALANCE_EXCEEDED",
                EconomyError::MaxStackExceeded => "MAX_STACK_EXCEEDED",
                EconomyError::NotConsumable => "NOT_CONSUMABLE",
                EconomyError::InsufficientQuantity => "INSUFFICIENT_QUANTITY",
                EconomyError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
                EconomyError::PriceChanged(_) => "PRICE_CHANGED",
                EconomyError::CollectionChanged => "PRECONDITION_FAILED",
                EconomyError::InvalidModule(_) => "INVALID_MODULE",
                EconomyError::ModuleFailed => "MODULE_FAILED",
                EconomyError::Busy(_) => "BUSY",
                EconomyError::Unavailable(_) => "TENANT_UNAVAILABLE",
                EconomyError::RateLimited(_) => "RATE_LIMITED",
                EconomyError::Internal(_) => "INTERNAL",
            },
        }
    }
}

impl ApiError {
    /// Logs what the operator must see of a server-side failure; every
    /// front end's error answer calls it.
    pub fn log(&self) {
        match self {
            Self::Economy(EconomyError::Internal(cause)) => {
                tracing::error!(error = %cause, debug = ?cause, "request failed")
            }
            Self::Economy(EconomyError::Busy(cause)) => {
                tracing::warn!(error = %cause, "request timed out waiting on the database")
            }
            Self::Economy(EconomyError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "tenant database unavailable")
            }
            _ => {}
        }
    }

    /// `body` with this error's status, and `Retry-After` on a 503 and a
    /// 429 (whole seconds, at least one).
    pub fn respond(&self, status: StatusCode, body: serde_json::Value) -> Response {
        self.log();
        let mut response = (status, Json(body)).into_response();
        let retry_after = match self {
            Self::Economy(EconomyError::RateLimited(wait)) => {
                Some(HeaderValue::from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)))
            }
            _ => (status == StatusCode::SERVICE_UNAVAILABLE).then_some(HeaderValue::from_static(RETRY_AFTER_SECONDS)),
        };
        if let Some(retry_after) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, retry_after);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        self.respond(self.status(), body)
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(error.0)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::BytesRejection(rejection) => rejection.into(),
            JsonRejection::JsonDataError(error) => Self::Validation(format!("invalid JSON body: {}", cause(&error))),
            JsonRejection::JsonSyntaxError(error) => Self::Validation(format!("invalid JSON: {}", cause(&error))),
            JsonRejection::MissingJsonContentType(_) => {
                Self::validation("a JSON body is sent with Content-Type: application/json")
            }
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

/// The innermost cause of a rejection: serde's own words (which name the
/// field and what it expected), without axum's wrapping.
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}
