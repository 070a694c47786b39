//! Idempotency: a request with a key runs at most once per player, and a
//! retry with the same key and the same request gets the first answer
//! again; the same key with another request is refused.
//!
//! The record is written by the same commit as the work (a purchase's on its
//! purchase row; a grant's or consume's in a table of its own), under a key
//! unique per player. That write is the claim: of two concurrent requests
//! with one key, the second's commit finds the key taken, writes nothing,
//! and replays the first. A keyed request that fails may be the retry of
//! one that succeeded: before answering with its error it looks for that
//! earlier answer.

use super::Outcome;
use super::error::EconomyError;
use crate::domain::IdempotencyKey;
use crate::storage::{IdempotencyRecord, RecordKind, RequestRecord, TenantStore};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
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
    /// The record of this key with the request's answer, for its commit to
    /// claim.
    pub fn record<T: Serialize>(&self, answer: &T) -> Result<RequestRecord, EconomyError> {
        Ok(RequestRecord {
            key: self.key.to_string(),
            request_hash: self.request_hash.clone(),
            response: serde_json::to_value(answer).map_err(EconomyError::internal)?,
        })
    }

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

/// How many times a write runs before it gives up on a player whose
/// records keep changing under it (other hosts writing the same player:
/// this host takes each player's writes in turn), and the longest it waits
/// between two attempts: a random wait that doubles up to this, so two
/// hosts that keep colliding on one player soon take turns. At most about
/// a third of a second of waiting in all.
const ATTEMPTS: u32 = 10;
const MAX_BACKOFF_MS: u64 = 64;

/// What one attempt at a write came to.
pub(super) enum Attempt<T> {
    /// It committed, answering this.
    Done(T),
    /// Something it changed moved (or its key was taken) before it could
    /// commit: nothing was written.
    Stale,
    /// It was refused on a balance this host remembered rather than read:
    /// the refusal stands only on fresh reads.
    Unconfirmed,
}

/// How a write ended: committed by this request, or replaying the request
/// that committed first with its key.
pub(super) enum Ended<T, R> {
    Committed(T),
    Replayed(Outcome<R>),
}

/// Runs `attempt` until it commits: a first attempt may trust what this
/// host remembers, each later one reads afresh. A stale attempt whose key
/// a committed request holds ends there. Nothing of an attempt that did
/// not commit is kept.
pub(super) async fn until_committed<'a, T, R: DeserializeOwned>(
    storage: &dyn TenantStore,
    user_id: Uuid,
    kind: RecordKind,
    keyed: Option<&Keyed>,
    mut attempt: impl FnMut(bool) -> BoxFuture<'a, Result<Attempt<T>, EconomyError>>,
) -> Result<Ended<T, R>, EconomyError> {
    for tried in 0..ATTEMPTS {
        match attempt(tried == 0).await? {
            Attempt::Done(value) => return Ok(Ended::Committed(value)),
            Attempt::Stale => {
                if let Some(keyed) = keyed
                    && let Some(earlier) = storage.idempotency_record(user_id, kind, keyed.key.as_str()).await?
                {
                    return Ok(Ended::Replayed(keyed.replay(earlier)?));
                }
                // Another host's write to the player: let it finish.
                let ceiling = (1u64 << tried.min(6)).min(MAX_BACKOFF_MS);
                tokio::time::sleep(Duration::from_micros(rand::random_range(0..ceiling * 1_000))).await;
            }
            Attempt::Unconfirmed => {}
        }
    }
    Err(EconomyError::Busy("the player's records kept changing".into()))
}
