//! Extractors: JSON, path and query parsing that fails with
//! `VALIDATION_FAILED`, the `{"data": ...}` envelope, and authentication.

use super::AppState;
use super::error::ApiError;
use crate::domain::IdempotencyKey;
use crate::economy::{Applied, Outcome};
use crate::secrets;
use crate::storage::{KeyKind, User};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// `axum::Json`, with rejections as [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path`, with rejections as [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query`, with rejections as [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A 200 response with body `{"data": ...}`.
pub struct Data<T>(pub T);

/// A 201 response with body `{"data": ...}`.
pub struct Created<T>(pub T);

/// A 200 response to a committed configuration write: `{"data": ...}`,
/// plus a `warning` when this host could not apply the write yet (it
/// stands all the same, and the host catches up on its next refresh).
pub struct Saved<T>(pub Applied<T>);

impl<T: Serialize> IntoResponse for Saved<T> {
    fn into_response(self) -> Response {
        let Applied { value, applied } = self.0;
        if applied {
            return axum::Json(json!({ "data": value })).into_response();
        }
        let warning = format!(
            "saved; this host could not apply it yet and will within {} ms",
            crate::rules::REFRESH_INTERVAL.as_millis()
        );
        axum::Json(json!({ "data": value, "warning": warning })).into_response()
    }
}

/// A 200 response with `{"data": ...}`, marked `Idempotent-Replayed: true`
/// when it replays the first request with the same idempotency key.
pub struct Answer<T>(pub Outcome<T>);

/// The header that marks a replayed idempotent response.
const REPLAYED_HEADER: &str = "idempotent-replayed";

impl<T: Serialize> IntoResponse for Answer<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(json!({ "data": self.0.value })).into_response();
        if self.0.replayed {
            response.headers_mut().insert(REPLAYED_HEADER, axum::http::HeaderValue::from_static("true"));
        }
        response
    }
}

/// The idempotency key of a request: the `Idempotency-Key` header or the
/// body's `idempotency_key` (they must agree when both are sent).
pub fn idempotency_key(headers: &HeaderMap, in_body: Option<String>) -> Result<Option<IdempotencyKey>, ApiError> {
    let in_header = match headers.get("idempotency-key") {
        Some(value) => {
            Some(value.to_str().map_err(|_| ApiError::validation("Idempotency-Key must be text"))?.to_owned())
        }
        None => None,
    };
    match (in_header, in_body) {
        (Some(header), Some(body)) if header != body => {
            Err(ApiError::validation("the Idempotency-Key header and idempotency_key differ"))
        }
        (header, body) => Ok(header.or(body).map(IdempotencyKey::try_from).transpose()?),
    }
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        axum::Json(json!({ "data": self.0 })).into_response()
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(json!({ "data": self.0 }))).into_response()
    }
}

/// The tenant an admin key belongs to.
pub struct AdminKey(pub Uuid);
/// The tenant a server (or admin) key belongs to.
pub struct ServerKey(pub Uuid);
/// The tenant a client (or admin) key belongs to.
pub struct ClientKey(pub Uuid);
/// A client (or admin) key together with a live session of its tenant.
pub struct ClientSession(pub User);
/// The operator of the whole service.
pub struct Operator;

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|value| value.to_str().ok())
}

/// The credentials of an `Authorization: Bearer …` header; the scheme name
/// is case-insensitive (RFC 7235).
fn bearer(parts: &Parts) -> Option<&str> {
    let (scheme, credentials) = header(parts, "authorization")?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// The key's tenant, if the key is one of `allowed` kinds: 401 for a
/// missing or unknown key, 403 for another kind, 429 past the tenant's
/// rate limit for the key.
async fn tenant_key(parts: &Parts, state: &AppState, allowed: &[KeyKind]) -> Result<Uuid, ApiError> {
    let key = header(parts, "x-api-key").ok_or(ApiError::Unauthorized)?;
    let record = state.credentials.api_key(&state.economy, key).await?.ok_or(ApiError::Unauthorized)?;
    if !allowed.contains(&record.kind) {
        return Err(ApiError::Forbidden);
    }
    state.economy.admit_key(record.tenant_id, record.kind).await?;
    Ok(record.tenant_id)
}

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        tenant_key(parts, state, &[KeyKind::Admin]).await.map(Self)
    }
}

impl FromRequestParts<AppState> for ServerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        tenant_key(parts, state, &[KeyKind::Server, KeyKind::Admin]).await.map(Self)
    }
}

impl FromRequestParts<AppState> for ClientKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        tenant_key(parts, state, &[KeyKind::Client, KeyKind::Admin]).await.map(Self)
    }
}

impl FromRequestParts<AppState> for ClientSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let tenant_id = tenant_key(parts, state, &[KeyKind::Client, KeyKind::Admin]).await?;
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let session =
            state.credentials.session(&state.economy, tenant_id, token).await?.ok_or(ApiError::Unauthorized)?;
        // A session of another tenant is as good as no session.
        if session.user.tenant_id != tenant_id || session.expires_at <= Utc::now() {
            return Err(ApiError::Unauthorized);
        }
        Ok(Self(session.user))
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match (bearer(parts), &state.operator_key_hash) {
            (Some(given), Some(expected)) if secrets::matches(given, expected) => Ok(Self),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The operator, if the request names a key at all (a wrong one is 401).
impl OptionalFromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, ApiError> {
        match bearer(parts) {
            None => Ok(None),
            Some(_) => <Self as FromRequestParts<AppState>>::from_request_parts(parts, state).await.map(Some),
        }
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let body = axum::body::Bytes::from_request(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&body)
            .map(Self)
            .map_err(|error| ApiError::validation(format!("invalid JSON body: {error}")))
    }
}
