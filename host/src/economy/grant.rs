//! Grants: the game server credits or debits a currency, or grants an
//! item, outside the rules module (the server is trusted).

use super::error::EconomyError;
use super::idempotency::{self, Keyed};
use super::{Economy, Outcome};
use crate::domain::{CatalogKey, CurrencyCode, IdempotencyKey, Identity, MAX_AMOUNT, Quantity};
use crate::runtime::Placement;
use crate::storage::{CatalogItem, ItemType, LedgerReason, Stack, Tx, WalletRefusal};
use serde::{Deserialize, Serialize};
use serde_json::json;
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
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let store = self.tenant_store(tenant_id).await?;
        let work = |mut tx: Box<dyn Tx>| async {
            let result = apply(tx.as_mut(), &tenant.catalog, grant).await;
            (tx, result)
        };
        let outcome = idempotency::once(store.as_ref(), tenant.scope(&user, false), keyed.as_ref(), work).await?;
        Ok((user.id, outcome))
    }
}

async fn apply(tx: &mut dyn Tx, catalog: &crate::catalog::Catalog, grant: Grant) -> Result<Granted, EconomyError> {
    match grant {
        Grant::Currency { code, amount, reason } => {
            Ok(Granted::Currency { balance_after: change_balance(tx, &code, amount, reason).await? })
        }
        Grant::Item { key, quantity } => {
            let item = catalog.item_by_key(key.as_str()).ok_or_else(|| EconomyError::not_found("item"))?;
            let quantity = i64::try_from(quantity.get()).map_err(EconomyError::internal)?;
            Ok(Granted::Item(grant_item(tx, item, quantity, &Placement::default()).await?))
        }
    }
}

/// Credits (or, negative, debits) a balance as the trusted server asks;
/// the balance after.
pub(super) async fn change_balance(
    tx: &mut dyn Tx,
    code: &CurrencyCode,
    amount: i64,
    reason: LedgerReason,
) -> Result<i64, EconomyError> {
    match tx.change_balance(code.as_str(), amount, reason, None).await? {
        Ok(balance_after) => Ok(balance_after),
        Err(WalletRefusal::UnknownCurrency) => Err(EconomyError::not_found("currency")),
        Err(WalletRefusal::InsufficientBalance) => Err(EconomyError::InsufficientBalance),
        Err(WalletRefusal::MaxBalanceExceeded) => Err(EconomyError::MaxBalanceExceeded(code.as_str().to_owned())),
    }
}

/// Grants `quantity` of an item as the trusted server asks, into the
/// placement's stack; the stack after. A bundle is refused: only a
/// purchase expands one.
pub(super) async fn grant_item(
    tx: &mut dyn Tx,
    item: &CatalogItem,
    quantity: i64,
    placement: &Placement,
) -> Result<Stack, EconomyError> {
    if item.item_type == ItemType::Bundle {
        return Err(EconomyError::invalid("a bundle is granted through a purchase, which expands it"));
    }
    let grant = placement.grant(item.id, quantity, "grant".into(), item.duration_seconds);
    let mut stacks = tx.grant_items(&[grant]).await?.map_err(|_| EconomyError::not_found("item"))?;
    stacks.pop().ok_or_else(|| EconomyError::internal("a grant returned no stack"))
}
