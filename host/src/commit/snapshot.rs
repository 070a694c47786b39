//! One attempt at a request for one player: what it reads (without a lock,
//! each value once, lazily: a balance, an item's stacks, a listing's count)
//! and what it changes, in memory, until [`Snapshot::commit`] writes it all
//! in one transaction guarded on what it changed being as it was read.
//! The rules run against a snapshot; no connection, lock or writer is held
//! while they do.

use super::remembered::Remembered;
use crate::catalog::Catalog;
use crate::storage::recharge::{clock_after, settle};
use crate::storage::{
    Attributes, BalanceChange, BalanceRead, BalanceRow, Commit, ConsumeRecord, InventoryRefusal, Journal, LedgerLine,
    LedgerReason, ListingClaim, MAX_BALANCE, NewGrant, PurchaseRecord, RechargeTerms, RequestRecord, Stack, StackKey,
    StackWrite, StorageResult, StoredResponse, StoredStack, TenantStore, WalletRefusal,
};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Where a snapshot reads: the tenant's store, its catalog as the request
/// began, and the balances this host remembers.
#[derive(Clone)]
pub struct Source {
    pub store: Arc<dyn TenantStore>,
    pub catalog: Arc<Catalog>,
    pub remembered: Arc<Remembered>,
}

/// A balance as the request sees it.
struct Balance {
    code: String,
    /// The row as read: the commit's guard (none: there was no row).
    stored: Option<BalanceRow>,
    max_balance: Option<i64>,
    recharge: Option<RechargeTerms>,
    /// The balance now: opened, settled and changed by the request.
    row: BalanceRow,
    /// The entries that got it from `stored` to `row`.
    entries: Vec<LedgerLine>,
    changed: bool,
}

/// A listing's per-player count as the request sees it.
struct ListingCount {
    store_id: Uuid,
    item_id: Uuid,
    stored: Option<i64>,
    now: i64,
}

pub struct Snapshot {
    source: Source,
    /// Whether a remembered balance may stand in for a read.
    trust_remembered: bool,
    /// Whether an answer may rest on a remembered balance.
    used_remembered: bool,
    journal: Journal,
    balances: Vec<Balance>,
    /// Each item's stacks read so far, with the request's writes applied.
    stacks: HashMap<Uuid, Vec<StoredStack>>,
    listings: Vec<ListingCount>,
}

impl Snapshot {
    /// A snapshot of `user_id` at `at`, whose changes are recorded as made
    /// by `module_sha256` (none: the server's own). A first attempt may
    /// `trust_remembered` balances; a later one reads everything afresh.
    pub fn new(
        source: Source,
        user_id: Uuid,
        at: DateTime<Utc>,
        module_sha256: Option<String>,
        trust_remembered: bool,
    ) -> Self {
        Self {
            source,
            trust_remembered,
            used_remembered: false,
            journal: Journal::new(user_id, at, module_sha256),
            balances: Vec::new(),
            stacks: HashMap::new(),
            listings: Vec::new(),
        }
    }

    pub fn user_id(&self) -> Uuid {
        self.journal.user_id
    }

    /// The moment the request runs at.
    pub fn at(&self) -> DateTime<Utc> {
        self.journal.at
    }

    /// Whether an answer reached on this snapshot may rest on a balance
    /// this host remembered rather than read: a refusal must then be
    /// confirmed on fresh reads.
    pub fn used_remembered(&self) -> bool {
        self.used_remembered
    }

    /// The player's balance (its initial balance if never held, settled if
    /// it regenerates), or none for an unknown currency.
    pub async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        Ok(self.balance_of(code).await?.map(|balance| balance.row.balance))
    }

    /// Adds `delta` (positive or negative, not zero) to the balance, with a
    /// ledger entry; the balance after, or why not.
    pub async fn change_balance(
        &mut self,
        code: &str,
        delta: i64,
        reason: LedgerReason,
        reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>> {
        let (at, module) = (self.journal.at, self.journal.module_sha256.clone());
        let Some(balance) = self.balance_of(code).await? else { return Ok(Err(WalletRefusal::UnknownCurrency)) };
        let after = balance.row.balance.checked_add(delta);
        let Some(after) = after.filter(|after| *after >= 0) else {
            return Ok(Err(match delta < 0 {
                true => WalletRefusal::InsufficientBalance,
                false => WalletRefusal::MaxBalanceExceeded,
            }));
        };
        if delta > 0 && (after > MAX_BALANCE || balance.max_balance.is_some_and(|max| after > max)) {
            return Ok(Err(WalletRefusal::MaxBalanceExceeded));
        }
        let clock = balance.recharge.and_then(|terms| clock_after(after, balance.row.recharged_at, &terms, at));
        balance.row = BalanceRow { balance: after, recharged_at: clock };
        balance.entries.push(LedgerLine {
            id: Uuid::now_v7(),
            delta,
            balance_after: after,
            reason,
            reference: reference.map(str::to_owned),
            module_sha256: module,
        });
        balance.changed = true;
        Ok(Ok(after))
    }

    /// The attributes the game server set on the player (empty if none).
    pub async fn attributes(&mut self) -> StorageResult<Attributes> {
        self.source.store.attributes(self.journal.user_id).await
    }

    /// How many of the item the player holds in unexpired stacks, in every
    /// collection, the request's own grants and takes included.
    pub async fn quantity(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let at = self.journal.at;
        Ok(self.held(item_id).await?.iter().filter(|stack| live(stack, at)).map(|stack| stack.quantity).sum())
    }

    /// Adds the grants (items of the catalog, quantities ≥ 1) to their
    /// stacks. Nothing is read: a grant adds to whatever the stack holds.
    pub fn grant_items(&mut self, grants: Vec<NewGrant>) {
        for grant in grants {
            self.write(StackWrite::Grant(grant));
        }
    }

    /// Takes `quantity` from one unexpired stack; what is left in it, or
    /// why not.
    pub async fn take(
        &mut self,
        item_id: Uuid,
        stack: &StackKey,
        quantity: i64,
    ) -> StorageResult<Result<i64, InventoryRefusal>> {
        let at = self.journal.at;
        let held = self.held(item_id).await?;
        let Some(found) = held.iter().find(|held| held.stack == *stack && unexpired(held, at)) else {
            return Ok(Err(InventoryRefusal::InsufficientQuantity));
        };
        if found.quantity < quantity {
            return Ok(Err(InventoryRefusal::InsufficientQuantity));
        }
        let (before, expires_at) = (found.quantity, found.expires_at);
        self.write(StackWrite::Take { item_id, stack: stack.clone(), quantity, before, expires_at });
        Ok(Ok(before - quantity))
    }

    /// Adds a grant to its stack only if the stack is still as read when
    /// the commit runs, so that the stack it leaves, answered here, is
    /// exact.
    pub async fn grant_onto(&mut self, grant: NewGrant) -> StorageResult<Stack> {
        let (item_id, key) = (grant.item_id, grant.stack.clone());
        let before = self.held(item_id).await?.iter().find(|held| held.stack == key).cloned();
        self.write(StackWrite::GrantOnto { grant, before });
        let after = self.held(item_id).await?.iter().find(|held| held.stack == key).expect("the grant made it");
        Ok(Stack {
            catalog_item_id: item_id,
            collection_id: key.collection_id,
            stack_id: key.stack_id,
            quantity: after.quantity,
            acquired_via: after.acquired_via.clone(),
            acquired_at: after.acquired_at,
            expires_at: after.expires_at,
        })
    }

    /// The grants recorded so far, in order.
    pub fn grants(&self) -> impl Iterator<Item = &NewGrant> {
        self.journal.stacks.iter().filter_map(|write| match write {
            StackWrite::Grant(grant) | StackWrite::GrantOnto { grant, .. } => Some(grant),
            StackWrite::Take { .. } => None,
        })
    }

    /// Whether the request changed anything (a commit of nothing is skipped).
    pub fn changes_anything(&self) -> bool {
        let journal = &self.journal;
        self.balances.iter().any(|balance| balance.changed)
            || self.listings.iter().any(|listing| listing.stored.unwrap_or(0) != listing.now)
            || !journal.stacks.is_empty()
            || journal.purchase.is_some()
            || journal.consume.is_some()
            || journal.request.is_some()
    }

    /// How many of the item the player bought in all, before this request.
    pub async fn item_purchases(&mut self, item_id: Uuid) -> StorageResult<i64> {
        self.source.store.item_purchases(self.journal.user_id, item_id).await
    }

    /// How many the player bought through the listing, this request's
    /// claims included.
    pub async fn listing_purchases(&mut self, store_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        Ok(self.listing(store_id, item_id).await?.now)
    }

    /// Adds `quantity` to the listing's count if it stays within `cap`; the
    /// count after, or none.
    pub async fn claim_listing(
        &mut self,
        store_id: Uuid,
        item_id: Uuid,
        quantity: i64,
        cap: i64,
    ) -> StorageResult<Option<i64>> {
        let listing = self.listing(store_id, item_id).await?;
        let after = listing.now.checked_add(quantity).filter(|after| *after <= cap);
        if let Some(after) = after {
            listing.now = after;
        }
        Ok(after)
    }

    /// Records the purchase, with its answer to replay: the commit claims
    /// its key.
    pub fn record_purchase(&mut self, record: PurchaseRecord, response: StoredResponse) {
        self.journal.purchase = Some((record, response));
    }

    pub fn record_consume(&mut self, record: ConsumeRecord) {
        self.journal.consume = Some(record);
    }

    /// Records a grant's, consume's or stack change's key with its answer:
    /// the commit claims it.
    pub fn record_request(&mut self, record: RequestRecord) {
        self.journal.request = Some(record);
    }

    /// Asks the commit to answer with the state it leaves `collection` in.
    pub fn answer_collection(&mut self, collection: Option<String>) {
        self.journal.collection = collection;
    }

    /// Writes what the request changed, if nothing it changed moved since
    /// it was read. This host remembers the balances it committed, and
    /// forgets the ones a stale commit read.
    pub async fn commit(self) -> StorageResult<Commit> {
        let Self { source, mut journal, balances, listings, .. } = self;
        journal.balances = balances
            .iter()
            .filter(|balance| balance.changed)
            .map(|balance| BalanceChange {
                currency_code: balance.code.clone(),
                before: balance.stored,
                after: balance.row,
                entries: balance.entries.clone(),
            })
            .collect();
        journal.listings = listings
            .iter()
            .filter(|listing| listing.stored.unwrap_or(0) != listing.now)
            .map(|listing| ListingClaim {
                store_id: listing.store_id,
                item_id: listing.item_id,
                before: listing.stored,
                after: listing.now,
            })
            .collect();
        let user_id = journal.user_id;
        let committed = source.store.commit(journal).await;
        for balance in balances.iter().filter(|balance| balance.recharge.is_none()) {
            match &committed {
                Ok(Commit::Done { .. }) if balance.changed => {
                    source.remembered.set(user_id, &balance.code, balance.row.balance)
                }
                Ok(Commit::Done { .. }) => {}
                _ => source.remembered.forget(user_id, &balance.code),
            }
        }
        committed
    }

    /// The balance of `code`, read once: remembered (a currency that does
    /// not regenerate, on a first attempt) or read, opened at its initial
    /// balance if the player never held it, and settled if it regenerates.
    /// None for an unknown currency.
    async fn balance_of(&mut self, code: &str) -> StorageResult<Option<&mut Balance>> {
        if let Some(index) = self.balances.iter().position(|balance| balance.code == code) {
            return Ok(Some(&mut self.balances[index]));
        }
        let user_id = self.journal.user_id;
        let currency = self.source.catalog.currency(code).filter(|currency| currency.recharge.is_none());
        let remembered = currency.filter(|_| self.trust_remembered).and_then(|currency| {
            let balance = self.source.remembered.get(user_id, code)?;
            let row = BalanceRow { balance, recharged_at: None };
            Some(Balance {
                code: code.to_owned(),
                stored: Some(row),
                max_balance: currency.max_balance,
                recharge: None,
                row,
                entries: Vec::new(),
                changed: false,
            })
        });
        let balance = match remembered {
            Some(balance) => {
                self.used_remembered = true;
                balance
            }
            None => match self.source.store.balance_read(user_id, code).await? {
                Some(read) => self.opened(code, read),
                None => return Ok(None),
            },
        };
        self.balances.push(balance);
        Ok(self.balances.last_mut())
    }

    /// A balance as read: opened if there is no row yet, then settled up
    /// to the moment it was read (a rules module may take a while to ask).
    fn opened(&self, code: &str, read: BalanceRead) -> Balance {
        let at = Utc::now().max(self.journal.at);
        let mut entries = Vec::new();
        let mut row = match read.stored {
            Some(row) => row,
            None => {
                if read.initial_balance > 0 {
                    entries.push(LedgerLine {
                        id: Uuid::now_v7(),
                        delta: read.initial_balance,
                        balance_after: read.initial_balance,
                        reason: LedgerReason::Grant,
                        reference: Some("initial_balance".into()),
                        module_sha256: None,
                    });
                }
                // A regenerating balance opened below its max accrues from
                // when the player, or the recharge, came to be.
                let clock = read.recharge.filter(|terms| read.initial_balance < terms.max);
                BalanceRow {
                    balance: read.initial_balance,
                    recharged_at: clock.map(|terms| terms.since.max(read.player_since.unwrap_or(terms.since))),
                }
            }
        };
        if let Some(settled) = read.recharge.and_then(|terms| settle(row, &terms, at)) {
            row = settled.row;
            if settled.gained > 0 {
                entries.push(LedgerLine {
                    id: Uuid::now_v7(),
                    delta: settled.gained,
                    balance_after: row.balance,
                    reason: LedgerReason::Recharge,
                    reference: None,
                    module_sha256: None,
                });
            }
        }
        Balance {
            code: code.to_owned(),
            stored: read.stored,
            max_balance: read.max_balance,
            recharge: read.recharge,
            row,
            // What accrued is settled when read; a balance that does not
            // regenerate is written only when changed.
            changed: read.recharge.is_some() && read.stored != Some(row),
            entries,
        }
    }

    /// The item's stacks, read once, with the request's writes applied.
    async fn held(&mut self, item_id: Uuid) -> StorageResult<&mut Vec<StoredStack>> {
        if !self.stacks.contains_key(&item_id) {
            let mut held = self.source.store.stacks(self.journal.user_id, item_id).await?;
            for write in self.journal.stacks.iter().filter(|write| written_item(write) == item_id) {
                apply(&mut held, write, self.journal.at);
            }
            self.stacks.insert(item_id, held);
        }
        Ok(self.stacks.get_mut(&item_id).expect("read just above"))
    }

    /// Records a stack write, and applies it to the stacks read.
    fn write(&mut self, write: StackWrite) {
        if let Some(held) = self.stacks.get_mut(&written_item(&write)) {
            apply(held, &write, self.journal.at);
        }
        self.journal.stacks.push(write);
    }

    /// The listing's count, read once.
    async fn listing(&mut self, store_id: Uuid, item_id: Uuid) -> StorageResult<&mut ListingCount> {
        let found = self.listings.iter().position(|l| l.store_id == store_id && l.item_id == item_id);
        let index = match found {
            Some(index) => index,
            None => {
                let stored = self.source.store.listing_purchases(self.journal.user_id, store_id, item_id).await?;
                self.listings.push(ListingCount { store_id, item_id, stored, now: stored.unwrap_or(0) });
                self.listings.len() - 1
            }
        };
        Ok(&mut self.listings[index])
    }
}

fn written_item(write: &StackWrite) -> Uuid {
    match write {
        StackWrite::Grant(grant) | StackWrite::GrantOnto { grant, .. } => grant.item_id,
        StackWrite::Take { item_id, .. } => *item_id,
    }
}

fn unexpired(stack: &StoredStack, at: DateTime<Utc>) -> bool {
    stack.expires_at.is_none_or(|expires_at| expires_at > at)
}

fn live(stack: &StoredStack, at: DateTime<Utc>) -> bool {
    stack.quantity > 0 && unexpired(stack, at)
}

/// A stack write applied to the stacks of its item, as the store applies
/// it: a grant into an expired or emptied stack starts it over; otherwise
/// quantities add up and a timed stack keeps the later expiry (an untimed
/// grant makes it untimed).
fn apply(held: &mut Vec<StoredStack>, write: &StackWrite, at: DateTime<Utc>) {
    match write {
        StackWrite::Grant(grant) | StackWrite::GrantOnto { grant, .. } => {
            let expires_at = grant.duration_seconds.map(|seconds| at + TimeDelta::seconds(seconds));
            let fresh = StoredStack {
                stack: grant.stack.clone(),
                quantity: grant.quantity,
                expires_at,
                acquired_via: grant.acquired_via.clone(),
                acquired_at: at,
            };
            match held.iter_mut().find(|held| held.stack == grant.stack) {
                Some(stack) if live(stack, at) => {
                    stack.quantity += grant.quantity;
                    stack.expires_at = stack.expires_at.zip(expires_at).map(|(a, b)| a.max(b));
                }
                Some(stack) => *stack = fresh,
                None => held.push(fresh),
            }
        }
        StackWrite::Take { stack, quantity, .. } => {
            if let Some(held) = held.iter_mut().find(|held| held.stack == *stack) {
                held.quantity -= quantity;
            }
        }
    }
}
