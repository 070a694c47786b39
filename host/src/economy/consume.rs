//! Consumes: a player uses up a consumable, as the tenant's rules allow.

use super::error::EconomyError;
use super::idempotency::{self, Attempt, Ended, Keyed};
use super::{Economy, Outcome};
use crate::domain::{IdempotencyKey, Quantity};
use crate::rules::TenantContext;
use crate::runtime::Invocation;
use crate::storage::{Commit, ConsumeRecord, RecordKind, TenantStore, User};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// What a consume's idempotency key is hashed with.
const OPERATION: &str = "consume";

/// What a consume did; also what a retry with its key replays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsumeReceipt {
    pub consume_id: Uuid,
    pub item_id: Uuid,
    pub consumed: u64,
    /// What the player holds of the item now.
    pub remaining: i64,
}

impl Economy {
    /// Uses up `quantity` of a consumable `user` holds: at most once per
    /// idempotency key. The rules decide on a snapshot of the player; the
    /// host re-checks that nothing but the item moved, and the consume
    /// commits only if the stack is still as the rules saw it.
    pub async fn consume(
        &self,
        user: &User,
        item_id: Uuid,
        quantity: Quantity,
        key: Option<IdempotencyKey>,
    ) -> Result<Outcome<ConsumeReceipt>, EconomyError> {
        self.admit_write(user).await?;
        let keyed = key.map(|key| Keyed::new(key, OPERATION, json!({"item_id": item_id, "quantity": quantity.get()})));
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let store = self.tenant_store(user.tenant_id).await?;
        let _turn = self.user_queue.turn(user.id).await;
        let (store, tenant, keyed) = (&store, &tenant, keyed.as_ref());
        let attempt =
            move |trust| Box::pin(self.consume_once(store, tenant, user, item_id, quantity, keyed, trust)) as _;
        match idempotency::until_committed(store.as_ref(), user.id, RecordKind::Request, keyed, attempt).await {
            Ok(Ended::Committed(receipt)) => Ok(Outcome { value: receipt, replayed: false }),
            Ok(Ended::Replayed(outcome)) => Ok(outcome),
            Err(error) => idempotency::after_failure(store.as_ref(), user.id, RecordKind::Request, keyed, error).await,
        }
    }

    /// One attempt at a consume.
    #[expect(clippy::too_many_arguments, reason = "one attempt of `consume`, with what it was given")]
    async fn consume_once(
        &self,
        store: &Arc<dyn TenantStore>,
        tenant: &TenantContext,
        user: &User,
        item_id: Uuid,
        quantity: Quantity,
        keyed: Option<&Keyed>,
        trust_remembered: bool,
    ) -> Result<Attempt<ConsumeReceipt>, EconomyError> {
        let consume_id = Uuid::now_v7();
        let snapshot = self.snapshot(store, tenant, user, true, trust_remembered);
        let call = tenant.call(user, consume_id);
        let Invocation { mut snapshot, journal, result, .. } =
            self.rules.runtime().consume(call, snapshot, item_id.to_string(), quantity.get()).await;
        let sha256 = &tenant.module.sha256;
        let remaining = self.module_answer(user.tenant_id, sha256, "consume", result)?;
        if let Err(reason) = journal.check_consume() {
            return Err(self.module_misbehaved(user.tenant_id, sha256, "consume", &reason));
        }
        let remaining = i64::try_from(remaining).map_err(EconomyError::internal)?;
        let consumed = i64::try_from(quantity.get()).map_err(EconomyError::internal)?;
        let receipt = ConsumeReceipt { consume_id, item_id, consumed: quantity.get(), remaining };
        snapshot.record_consume(ConsumeRecord { id: consume_id, item_id, quantity: consumed, remaining });
        if let Some(keyed) = keyed {
            snapshot.record_request(keyed.record(&receipt)?);
        }
        Ok(match snapshot.commit().await? {
            Commit::Done { .. } => Attempt::Done(receipt),
            Commit::Stale => Attempt::Stale,
        })
    }
}
