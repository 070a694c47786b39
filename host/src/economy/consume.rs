//! Consumes: a player uses up a consumable, as the tenant's rules allow.

use super::error::EconomyError;
use super::idempotency::{self, Keyed};
use super::{Economy, Outcome};
use crate::domain::{IdempotencyKey, Quantity};
use crate::runtime::Invocation;
use crate::storage::User;
use serde::{Deserialize, Serialize};
use serde_json::json;
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
    /// idempotency key. The rules decide; the host re-checks that nothing
    /// but the item moved.
    pub async fn consume(
        &self,
        user: &User,
        item_id: Uuid,
        quantity: Quantity,
        key: Option<IdempotencyKey>,
    ) -> Result<Outcome<ConsumeReceipt>, EconomyError> {
        let keyed = key.map(|key| Keyed::new(key, OPERATION, json!({"item_id": item_id, "quantity": quantity.get()})));
        let tenant = self.rules.for_tenant(user.tenant_id).await?;
        let store = self.tenant_store(user.tenant_id).await?;
        let _turn = self.user_queue.turn(user.id).await;
        let runtime = self.rules.runtime();
        let work = |tx| async {
            let consume_id = Uuid::now_v7();
            let call = tenant.call(user, consume_id);
            let Invocation { mut tx, journal, result, .. } =
                runtime.consume(call, tx, item_id.to_string(), quantity.get()).await;
            let sha256 = &tenant.module.sha256;
            let result = async {
                let remaining = self.module_answer(user.tenant_id, sha256, "consume", result)?;
                if let Err(reason) = journal.check_consume() {
                    return Err(self.module_misbehaved(user.tenant_id, sha256, "consume", &reason));
                }
                let remaining = i64::try_from(remaining).map_err(EconomyError::internal)?;
                let consumed = i64::try_from(quantity.get()).map_err(EconomyError::internal)?;
                tx.record_consume(consume_id, item_id, consumed, remaining).await?;
                Ok(ConsumeReceipt { consume_id, item_id, consumed: quantity.get(), remaining })
            }
            .await;
            (tx, result)
        };
        idempotency::once(store.as_ref(), tenant.scope(user, true), keyed.as_ref(), work).await
    }
}
