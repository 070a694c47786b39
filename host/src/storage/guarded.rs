//! The shape most purchases commit in: one debit of one currency that does
//! not regenerate, guarded on the balance the rules saw, with the purchase
//! record and its grants and nothing else. Both backends commit many of
//! these in one statement (group commit), each with its own guard; any
//! other journal commits in a transaction of its own.

use super::*;

/// A purchase in the guarded shape.
#[derive(Clone, Debug)]
pub(crate) struct GuardedPurchase {
    pub user_id: Uuid,
    pub module_sha256: Option<String>,
    pub currency_code: String,
    /// The balance the rules saw: the guard.
    pub before: i64,
    /// The debit (negative).
    pub delta: i64,
    pub reason: LedgerReason,
    pub reference: Option<String>,
    pub record: PurchaseRecord,
    pub grants: Vec<NewGrant>,
    pub response: StoredResponse,
    /// The player's collection whose state the commit answers with.
    pub collection: Option<String>,
}

/// A journal sorted by its shape.
pub(crate) enum Shaped {
    Guarded(GuardedPurchase),
    Other(Journal),
}

impl Shaped {
    /// Whether `journal` has the guarded purchase's shape.
    pub(crate) fn fits(journal: &Journal) -> bool {
        match (&journal.balances[..], &journal.purchase, &journal.consume, &journal.request) {
            ([balance], Some(_), None, None) => {
                let [entry] = &balance.entries[..] else { return false };
                let before = balance.before.filter(|row| row.recharged_at.is_none());
                before.is_some_and(|before| {
                    entry.delta < 0
                        && before.balance + entry.delta == balance.after.balance
                        && balance.after.recharged_at.is_none()
                }) && journal.listings.is_empty()
                    && journal.stacks.iter().all(|write| matches!(write, StackWrite::Grant(_)))
            }
            _ => false,
        }
    }

    /// The journal as a guarded purchase, if it has that shape.
    pub(crate) fn of(journal: Journal) -> Self {
        if !Self::fits(&journal) {
            return Self::Other(journal);
        }
        let Journal { user_id, module_sha256, mut balances, stacks, purchase, collection, .. } = journal;
        let BalanceChange { currency_code, before, mut entries, .. } = balances.remove(0);
        let entry = entries.remove(0);
        let (record, response) = purchase.expect("checked above");
        let grants = merged(stacks.into_iter().filter_map(|write| match write {
            StackWrite::Grant(grant) => Some(grant),
            StackWrite::GrantOnto { .. } | StackWrite::Take { .. } => None,
        }));
        Self::Guarded(GuardedPurchase {
            user_id,
            module_sha256,
            currency_code,
            before: before.expect("checked above").balance,
            delta: entry.delta,
            reason: entry.reason,
            reference: entry.reference,
            record,
            grants,
            response,
            collection,
        })
    }
}
