//! The commit protocol's side of the contract: what a request read of a
//! player (a snapshot, read without a lock), and what it changed (a
//! journal), committed at once by [`TenantStore::commit`] if nothing it
//! changed moved since it was read. No tenant code runs while a database
//! resource is held: the rules run between the reads and the commit.

use super::{Held, LedgerReason, NewGrant, PurchaseRecord, StackKey, StoredResponse};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The most a balance may hold (10^15): the bound on every amount.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// A balance row as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceRow {
    pub balance: i64,
    /// Where a regenerating balance's clock stands (none: stopped, at or
    /// above its max, or a currency that does not regenerate).
    pub recharged_at: Option<DateTime<Utc>>,
}

/// A currency's recharge, with when its clock started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RechargeTerms {
    pub amount: i64,
    pub period_seconds: i64,
    pub max: i64,
    /// When the recharge was last set: no clock starts earlier.
    pub since: DateTime<Utc>,
}

/// A player's balance in one currency, as read for a snapshot: the row
/// (none if the player never held the currency) and what the currency
/// says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceRead {
    pub stored: Option<BalanceRow>,
    pub initial_balance: i64,
    pub max_balance: Option<i64>,
    pub recharge: Option<RechargeTerms>,
    /// When the player came to be (none for a player not stored, as a dry
    /// run's): a regenerating balance opened now accrues from then, or from
    /// the recharge's start if later.
    pub player_since: Option<DateTime<Utc>>,
}

/// One stack of a player's, as stored (expired and emptied ones included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredStack {
    pub stack: StackKey,
    pub quantity: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub acquired_via: String,
    pub acquired_at: DateTime<Utc>,
}

/// One ledger entry to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerLine {
    pub id: Uuid,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: LedgerReason,
    pub reference: Option<String>,
    /// The rules module that made the change (none for an opening, an
    /// accrual, or the server's own change).
    pub module_sha256: Option<String>,
}

/// A balance the request changed: written only if the row is still as it
/// was read (`before`; none: there was no row, and none may have appeared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceChange {
    pub currency_code: String,
    pub before: Option<BalanceRow>,
    pub after: BalanceRow,
    /// In order: the opening, what accrued, then each change.
    pub entries: Vec<LedgerLine>,
}

/// A change to one of the player's stacks, applied in the journal's order.
#[derive(Clone, Debug)]
pub enum StackWrite {
    /// Added to its stack whatever it holds (a grant guards nothing).
    Grant(NewGrant),
    /// Added to its stack only if the stack is as read (`before`; none:
    /// there was no such stack): a grant answered with the stack it leaves.
    GrantOnto { grant: NewGrant, before: Option<StoredStack> },
    /// Taken from a stack that must hold exactly `before`, expiring at
    /// `expires_at`, when the take runs: what the request read, with its
    /// earlier writes to the stack applied.
    Take { item_id: Uuid, stack: StackKey, quantity: i64, before: i64, expires_at: Option<DateTime<Utc>> },
}

/// A listing's per-player count the request moved, from `before` (none:
/// no purchase of it yet) to `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingClaim {
    pub store_id: Uuid,
    pub item_id: Uuid,
    pub before: Option<i64>,
    pub after: i64,
}

/// A consume, recorded with what it left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumeRecord {
    pub id: Uuid,
    pub item_id: Uuid,
    pub quantity: i64,
    pub remaining: i64,
}

/// A grant's, consume's or stack change's idempotency key, with the
/// request's hash and its answer: claimed by the commit, or the commit is
/// stale.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub key: String,
    pub request_hash: Vec<u8>,
    pub response: serde_json::Value,
}

/// Everything one request changes for one player, committed whole or not
/// at all.
#[derive(Clone, Debug)]
pub struct Journal {
    pub user_id: Uuid,
    /// The moment the request ran at: what it writes is stamped with it,
    /// and a stack expired before it counts as empty.
    pub at: DateTime<Utc>,
    /// The rules module recorded with every ledger entry, purchase and
    /// consume (none for the server's own grants).
    pub module_sha256: Option<String>,
    pub balances: Vec<BalanceChange>,
    pub stacks: Vec<StackWrite>,
    pub listings: Vec<ListingClaim>,
    /// A purchase, with the answer a retry with its key replays; its key is
    /// claimed by the commit, or the commit is stale.
    pub purchase: Option<(PurchaseRecord, StoredResponse)>,
    pub consume: Option<ConsumeRecord>,
    pub request: Option<RequestRecord>,
    /// The player's collection whose state the commit answers with.
    pub collection: Option<String>,
}

impl Journal {
    pub fn new(user_id: Uuid, at: DateTime<Utc>, module_sha256: Option<String>) -> Self {
        Self {
            user_id,
            at,
            module_sha256,
            balances: Vec::new(),
            stacks: Vec::new(),
            listings: Vec::new(),
            purchase: None,
            consume: None,
            request: None,
            collection: None,
        }
    }
}

/// How a commit ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Written whole, with the state it left the named collection in (as
    /// `ReadStore::collection_states` would read it).
    Done { collection: Option<Vec<Held>> },
    /// Something it changed moved since it was read, or its idempotency
    /// key was taken meanwhile: nothing was written.
    Stale,
}

/// Grants merged so that each stack appears once, as applying them one
/// after the other would leave it: quantities add up, the stack lasts as
/// long as the longest (forever if any grant is untimed), and the first
/// grant's values are the ones a stack it creates gets.
pub(crate) fn merged(grants: impl IntoIterator<Item = NewGrant>) -> Vec<NewGrant> {
    let mut merged: Vec<NewGrant> = Vec::new();
    for grant in grants {
        match merged.iter_mut().find(|earlier| earlier.item_id == grant.item_id && earlier.stack == grant.stack) {
            Some(earlier) => {
                earlier.quantity += grant.quantity;
                earlier.duration_seconds = earlier.duration_seconds.zip(grant.duration_seconds).map(|(a, b)| a.max(b));
            }
            None => merged.push(grant),
        }
    }
    merged
}
