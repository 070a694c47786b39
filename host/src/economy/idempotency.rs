//! Idempotency: a request with a key runs at most once per player, and a
//! retry with the same key and the same request gets the first answer
//! again; the same key with another request is refused.
//!
//! The record is written in the same transaction as the work (a purchase's
//! on its purchase row; a grant's or consume's in a table of its own), under
//! a key unique per player. That write is the claim: a concurrent request
//! with the same key waits on it, finds the key taken once the first
//! commits, rolls back and replays. A keyed request that fails may be the
//! retry of one that succeeded: before answering with its error it looks
//! for that earlier answer.

use super::error::EconomyError;
use super::{Outcome, rollback};
use crate::domain::IdempotencyKey;
use crate::storage::{IdempotencyRecord, RecordKind, StoredResponse, TenantStore, Tx, TxScope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A client's idempotency key, with what a retry must repeat.
#[derive(Clone, Debug)]
pub struct Keyed {
    pub key: IdempotencyKey,
    /// The hash of the request's canonical form: the operation and every
    /// field but the key, defaults filled in.
    pub request_hash: Vec<u8>,
}

impl Keyed {
    /// `operation` names what the request does (its hash input since the
    /// first release); `request` is its canonical form, a JSON object.
    pub fn new(key: IdempotencyKey, operation: &str, request: Value) -> Self {
        let mut canonical = request;
        if let Some(fields) = canonical.as_object_mut() {
            fields.insert("route".into(), json!(operation));
        }
        Self { key, request_hash: Sha256::digest(canonical.to_string().as_bytes()).to_vec() }
    }

    /// The answer to a retry, from the record the first request left: the
    /// same request gets the same answer; another one is refused.
    pub fn replay<T: DeserializeOwned>(&self, earlier: IdempotencyRecord) -> Result<Outcome<T>, EconomyError> {
        if earlier.request_hash != self.request_hash {
            return Err(EconomyError::IdempotencyKeyReused);
        }
        let value = serde_json::from_value(earlier.response.body).map_err(EconomyError::internal)?;
        Ok(Outcome { value, replayed: true })
    }
}

/// After a request failed: if it had a key that an earlier request committed
/// (this may be that request's retry), that request's answer; else `error`.
pub async fn after_failure<T: DeserializeOwned>(
    storage: &dyn TenantStore,
    user_id: Uuid,
    kind: RecordKind,
    keyed: Option<&Keyed>,
    error: EconomyError,
) -> Result<Outcome<T>, EconomyError> {
    let Some(keyed) = keyed else { return Err(error) };
    match storage.idempotency_record(user_id, kind, keyed.key.as_str()).await {
        Ok(Some(earlier)) => keyed.replay(earlier),
        // A storage failure here says nothing new: answer with the first error.
        Ok(None) | Err(_) => Err(error),
    }
}

/// Runs `work` in one transaction of `scope` (it hands the transaction
/// back with its result), at most once per key: with a key, the answer is
/// recorded in the same transaction (its claim) and a retry replays it. For
/// requests that are not purchases (grants, consumes).
pub async fn once<T, Work>(
    storage: &dyn TenantStore,
    scope: TxScope,
    keyed: Option<&Keyed>,
    work: impl FnOnce(Box<dyn Tx>) -> Work,
) -> Result<Outcome<T>, EconomyError>
where
    T: Serialize + DeserializeOwned,
    Work: Future<Output = (Box<dyn Tx>, Result<T, EconomyError>)>,
{
    let user_id = scope.user_id;
    let (mut tx, result) = work(storage.begin(scope).await?).await;
    let result = match result {
        Ok(value) => claim(tx.as_mut(), keyed, &value).await.map(|claimed| claimed.then_some(value)),
        Err(error) => Err(error),
    };
    match result {
        Ok(Some(value)) => {
            tx.commit().await?;
            Ok(Outcome { value, replayed: false })
        }
        Ok(None) => {
            rollback(tx).await;
            let taken = EconomyError::Conflict("a request with this idempotency key".into());
            after_failure(storage, user_id, RecordKind::Request, keyed, taken).await
        }
        Err(error) => {
            rollback(tx).await;
            after_failure(storage, user_id, RecordKind::Request, keyed, error).await
        }
    }
}

/// Records the answer under the key (true), or finds the key taken by a
/// request that committed first (false). Without a key, nothing to claim.
async fn claim<T: Serialize>(tx: &mut dyn Tx, keyed: Option<&Keyed>, value: &T) -> Result<bool, EconomyError> {
    let Some(keyed) = keyed else { return Ok(true) };
    let response = StoredResponse { status: 200, body: serde_json::to_value(value).map_err(EconomyError::internal)? };
    Ok(tx.record_request(keyed.key.as_str(), &keyed.request_hash, &response).await?)
}
