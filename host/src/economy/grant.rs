//! Grants: the game server credits or debits a currency, or grants an
//! item, outside the rules module (the server is trusted).

use super::error::EconomyError;
use super::idempotency::{self, Attempt, Ended, Keyed};
use super::{Economy, Outcome};
use crate::catalog::Catalog;
use crate::commit::Snapshot;
use crate::domain::{CatalogKey, CurrencyCode, IdempotencyKey, Identity, MAX_AMOUNT, Quantity};
use crate::rules::TenantContext;
use crate::runtime::Placement;
use crate::storage::{
    CatalogItem, Commit, ItemType, LedgerReason, NewGrant, RecordKind, Stack, TenantStore, User, WalletRefusal,
};
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// What a grant's idempotency key is hashed with.
const OPERATION: &str = "grant";

/// A grant: an amount of a currency (negative: a debit), or a quantity of
/// an item.
#[derive(Clone, Debug)]
pub enum Grant {
    Currency { code: CurrencyCode, amount: i64, reason: LedgerReason },
    Item { key: CatalogKey, quantity: Quantity },
}

/// What a grant did; also what a retry with its key replays.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Granted {
    Currency { balance_after: i64 },
    Item(Stack),
}

impl Grant {
    /// A currency grant: a non-zero amount within ±[`MAX_AMOUNT`], recorded
    /// in the ledger as a grant (the default), a refund or an admin change.
    pub fn currency(code: CurrencyCode, amount: i64, reason: Option<LedgerReason>) -> Result<Self, EconomyError> {
        if amount == 0 || !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount) {
            return Err(EconomyError::Invalid(format!("amount must be non-zero and within ±{MAX_AMOUNT}")));
        }
        let reason = reason.unwrap_or(LedgerReason::Grant);
        if !matches!(reason, LedgerReason::Grant | LedgerReason::Refund | LedgerReason::Admin) {
            return Err(EconomyError::invalid("reason must be grant, refund or admin"));
        }
        Ok(Self::Currency { code, amount, reason })
    }

    fn canonical(&self) -> serde_json::Value {
        match self {
            Self::Currency { code, amount, reason } => {
                json!({"currency_code": code.as_str(), "amount": amount, "reason": reason.as_str()})
            }
            Self::Item { key, quantity } => json!({"item_key": key.as_str(), "quantity": quantity.get()}),
        }
    }
}

impl Economy {
    /// Applies `grant` to the player `identity`: at most once per
    /// idempotency key. Returns the player's id with the outcome.
    pub async fn grant(
        &self,
        tenant_id: Uuid,
        identity: &Identity,
        grant: Grant,
        key: Option<IdempotencyKey>,
    ) -> Result<(Uuid, Outcome<Granted>), EconomyError> {
        let keyed = key.map(|key| Keyed::new(key, OPERATION, grant.canonical()));
        let user = self.player(tenant_id, identity).await?;
        self.admit_write(&user).await?;
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let store = self.tenant_store(tenant_id).await?;
        let _turn = self.user_queue.turn(user.id).await;
        let (catalog, grant) = (&tenant.catalog, &grant);
        let change = move |mut snapshot: Snapshot| -> Changing<'_, Granted> {
            Box::pin(async move {
                let granted = apply(&mut snapshot, catalog, grant).await;
                (snapshot, granted)
            })
        };
        let outcome = self.write_trusted(&store, &tenant, &user, keyed.as_ref(), &change).await?;
        Ok((user.id, outcome))
    }

    /// A change of the trusted server's, outside the rules, at most once
    /// per key: made on a snapshot of the player (which `change` hands back
    /// with its answer) and committed, or made again on fresh reads when
    /// what it changed moved. The caller holds the player's turn.
    pub(super) async fn write_trusted<'a, T: Serialize + DeserializeOwned + Send + 'a>(
        &'a self,
        store: &'a Arc<dyn TenantStore>,
        tenant: &'a TenantContext,
        user: &'a User,
        keyed: Option<&'a Keyed>,
        change: &'a (impl Fn(Snapshot) -> Changing<'a, T> + Sync),
    ) -> Result<Outcome<T>, EconomyError> {
        let attempt = move |trust_remembered| -> BoxFuture<'a, Result<Attempt<T>, EconomyError>> {
            Box::pin(async move {
                let snapshot = self.snapshot(store, tenant, user, false, trust_remembered);
                let (mut snapshot, answer) = change(snapshot).await;
                let answer = match answer {
                    Ok(answer) => answer,
                    Err(_) if snapshot.used_remembered() => return Ok(Attempt::Unconfirmed),
                    Err(error) => return Err(error),
                };
                if let Some(keyed) = keyed {
                    snapshot.record_request(keyed.record(&answer)?);
                }
                Ok(match snapshot.commit().await? {
                    Commit::Done { .. } => Attempt::Done(answer),
                    Commit::Stale => Attempt::Stale,
                })
            })
        };
        match idempotency::until_committed(store.as_ref(), user.id, RecordKind::Request, keyed, attempt).await {
            Ok(Ended::Committed(answer)) => Ok(Outcome { value: answer, replayed: false }),
            Ok(Ended::Replayed(outcome)) => Ok(outcome),
            Err(error) => idempotency::after_failure(store.as_ref(), user.id, RecordKind::Request, keyed, error).await,
        }
    }
}

/// A trusted change made on a snapshot: the snapshot back, with the answer.
pub(super) type Changing<'a, T> = BoxFuture<'a, (Snapshot, Result<T, EconomyError>)>;

async fn apply(snapshot: &mut Snapshot, catalog: &Catalog, grant: &Grant) -> Result<Granted, EconomyError> {
    match grant {
        Grant::Currency { code, amount, reason } => {
            Ok(Granted::Currency { balance_after: change_balance(snapshot, code, *amount, *reason).await? })
        }
        Grant::Item { key, quantity } => {
            let item = catalog.item_by_key(key.as_str()).ok_or_else(|| EconomyError::not_found("item"))?;
            let quantity = i64::try_from(quantity.get()).map_err(EconomyError::internal)?;
            let grant = item_grant(item, quantity, &Placement::default())?;
            Ok(Granted::Item(snapshot.grant_onto(grant).await?))
        }
    }
}

/// Credits (or, negative, debits) a balance as the trusted server asks;
/// the balance after.
pub(super) async fn change_balance(
    snapshot: &mut Snapshot,
    code: &CurrencyCode,
    amount: i64,
    reason: LedgerReason,
) -> Result<i64, EconomyError> {
    match snapshot.change_balance(code.as_str(), amount, reason, None).await? {
        Ok(balance_after) => Ok(balance_after),
        Err(WalletRefusal::UnknownCurrency) => Err(EconomyError::not_found("currency")),
        Err(WalletRefusal::InsufficientBalance) => Err(EconomyError::InsufficientBalance),
        Err(WalletRefusal::MaxBalanceExceeded) => Err(EconomyError::MaxBalanceExceeded(code.as_str().to_owned())),
    }
}

/// A grant of `quantity` of an item as the trusted server asks, into the
/// placement's stack. A bundle is refused: only a purchase expands one.
pub(super) fn item_grant(item: &CatalogItem, quantity: i64, placement: &Placement) -> Result<NewGrant, EconomyError> {
    if item.item_type == ItemType::Bundle {
        return Err(EconomyError::invalid("a bundle is granted through a purchase, which expands it"));
    }
    Ok(placement.grant(item.id, quantity, "grant".into(), item.duration_seconds))
}
