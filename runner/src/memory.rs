//! The in-memory store: a tenant's catalog and its players' balances,
//! ledgers, stacks and purchase history. A call works on a copy of its
//! player (its transaction) that replaces the player only when the call is
//! committed; the imports of `economy:plugin` are implemented over it, with
//! the guarantees the world documents.

use crate::bindings::economy::plugin::{catalog, history, inventory, player, settings, wallet};
use crate::bindings::types::{self, Currency, Item, LedgerReason, Listing};
use crate::call::CallState;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most of one item a stack may hold (10^15).
pub const MAX_STACK_QUANTITY: u64 = 1_000_000_000_000_000;
/// The most distinct items one `grant-items` call may grant.
pub const MAX_DISTINCT_GRANTS: usize = 256;

/// A store and its listings (each names its store and item by id).
#[derive(Clone, Debug)]
pub struct Store {
    pub id: String,
    pub key: String,
    pub listings: Vec<Listing>,
}

/// A tenant's catalog, read-only to the rules.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub items: Vec<Item>,
    pub stores: Vec<Store>,
    pub currencies: Vec<Currency>,
}

impl Catalog {
    pub fn item_by_id(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.id == id)
    }

    pub fn item_by_key(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.key == key)
    }

    pub fn store_by_key(&self, key: &str) -> Option<&Store> {
        self.stores.iter().find(|store| store.key == key)
    }

    pub fn listing(&self, store_id: &str, item_id: &str) -> Option<&Listing> {
        let store = self.stores.iter().find(|store| store.id == store_id)?;
        store.listings.iter().find(|listing| listing.item_id == item_id)
    }

    pub fn currency(&self, code: &str) -> Option<&Currency> {
        self.currencies.iter().find(|currency| currency.code == code)
    }
}

/// One balance change, with the balance after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub currency_code: String,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: LedgerReason,
    pub reference: String,
}

/// One item's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    pub quantity: u64,
    /// Milliseconds since the Unix epoch; none for never.
    pub expires_at_ms: Option<i64>,
}

impl Stack {
    /// What it holds at `now_ms`: nothing once it has expired.
    pub fn held(&self, now_ms: i64) -> u64 {
        match self.expires_at_ms {
            Some(expires_at) if expires_at <= now_ms => 0,
            _ => self.quantity,
        }
    }
}

/// What one player holds and has done, and what the game says of it.
#[derive(Clone, Debug, Default)]
pub struct Player {
    /// The identity the game names the player by (its user id when none).
    pub identity: Option<String>,
    /// The attributes the game server set on the player.
    pub attributes: Map<String, Value>,
    /// Balances the player has held (others are the currency's initial
    /// balance).
    pub balances: BTreeMap<String, i64>,
    pub ledger: Vec<LedgerEntry>,
    /// Stacks by item id.
    pub stacks: BTreeMap<String, Stack>,
    /// How many of each item (by id) the player bought.
    pub item_purchases: BTreeMap<String, u64>,
    /// How many the player bought through each listing (store id, item id).
    pub listing_purchases: BTreeMap<(String, String), u64>,
}

/// A tenant's economy in memory.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    pub catalog: Arc<Catalog>,
    /// The tenant's module settings.
    pub settings: Arc<Map<String, Value>>,
    /// Players by user id.
    pub players: BTreeMap<String, Player>,
}

impl Memory {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog: Arc::new(catalog), settings: Arc::default(), players: BTreeMap::new() }
    }

    /// Sets who the player `user_id` is to the game: its identity and
    /// attributes.
    pub fn set_player(&mut self, user_id: &str, identity: Option<String>, attributes: Map<String, Value>) {
        let player = self.players.entry(user_id.to_owned()).or_default();
        player.identity = identity;
        player.attributes = attributes;
    }

    /// The player `user_id` (empty if it never did anything).
    pub fn player(&self, user_id: &str) -> Player {
        self.players.get(user_id).cloned().unwrap_or_default()
    }

    /// The player's balance in `currency_code` (its initial balance if the
    /// player never held it); none for an unknown currency.
    pub fn balance(&self, user_id: &str, currency_code: &str) -> Option<i64> {
        balance(&self.catalog, &self.player(user_id), currency_code)
    }

    /// How many of the item (by key) the player holds at `now_ms`.
    pub fn held(&self, user_id: &str, item_key: &str, now_ms: i64) -> u64 {
        let Some(item) = self.catalog.item_by_key(item_key) else { return 0 };
        self.player(user_id).stacks.get(&item.id).map_or(0, |stack| stack.held(now_ms))
    }
}

fn balance(catalog: &Catalog, player: &Player, currency_code: &str) -> Option<i64> {
    let currency = catalog.currency(currency_code)?;
    Some(player.balances.get(currency_code).copied().unwrap_or(currency.initial_balance))
}

impl catalog::Host for CallState {
    fn item_by_id(&mut self, id: String) -> wasmtime::Result<Option<Item>> {
        self.imports.charge()?;
        Ok(self.catalog.item_by_id(&id).cloned())
    }

    fn item_by_key(&mut self, key: String) -> wasmtime::Result<Option<Item>> {
        self.imports.charge()?;
        Ok(self.catalog.item_by_key(&key).cloned())
    }

    fn store_listing(&mut self, store_id: String, item_id: String) -> wasmtime::Result<Option<Listing>> {
        self.imports.charge()?;
        Ok(self.catalog.listing(&store_id, &item_id).cloned())
    }

    fn currency_by_code(&mut self, code: String) -> wasmtime::Result<Option<Currency>> {
        self.imports.charge()?;
        Ok(self.catalog.currency(&code).cloned())
    }
}

impl wallet::Host for CallState {
    fn balance(&mut self, currency_code: String) -> wasmtime::Result<Option<i64>> {
        self.imports.charge()?;
        Ok(balance(&self.catalog, &self.player, &currency_code))
    }

    fn debit(
        &mut self,
        currency_code: String,
        amount: i64,
        reason: LedgerReason,
        reference: String,
    ) -> wasmtime::Result<Result<i64, wallet::WalletError>> {
        self.imports.charge_change("wallet.debit")?;
        Ok(self.change_balance(currency_code, amount, true, reason, reference))
    }

    fn credit(
        &mut self,
        currency_code: String,
        amount: i64,
        reason: LedgerReason,
        reference: String,
    ) -> wasmtime::Result<Result<i64, wallet::WalletError>> {
        self.imports.charge_change("wallet.credit")?;
        Ok(self.change_balance(currency_code, amount, false, reason, reference))
    }
}

impl CallState {
    /// A debit or a credit of `amount`, with its ledger entry; recorded in
    /// the call's journal for the re-check.
    fn change_balance(
        &mut self,
        currency_code: String,
        amount: i64,
        debit: bool,
        reason: LedgerReason,
        reference: String,
    ) -> Result<i64, wallet::WalletError> {
        let Some(currency) = self.catalog.currency(&currency_code) else {
            return Err(wallet::WalletError::UnknownCurrency);
        };
        let max_balance = currency.max_balance;
        if amount <= 0 {
            return Err(wallet::WalletError::InvalidAmount);
        }
        let before = balance(&self.catalog, &self.player, &currency_code).unwrap_or(0);
        let after = match debit {
            true if amount > before => return Err(wallet::WalletError::InsufficientBalance),
            true => before - amount,
            false => before.checked_add(amount).ok_or(wallet::WalletError::InvalidAmount)?,
        };
        if !debit && max_balance.is_some_and(|max| after > max) {
            return Err(wallet::WalletError::MaxBalanceExceeded);
        }
        let delta = if debit { -amount } else { amount };
        self.player.balances.insert(currency_code.clone(), after);
        self.player.ledger.push(LedgerEntry {
            currency_code: currency_code.clone(),
            delta,
            balance_after: after,
            reason,
            reference,
        });
        match debit {
            true => self.moved.debits.push((currency_code, amount)),
            false => self.moved.credits.push((currency_code, amount)),
        }
        Ok(after)
    }
}

impl inventory::Host for CallState {
    fn quantity(&mut self, item_id: String) -> wasmtime::Result<u64> {
        self.imports.charge()?;
        Ok(self.player.stacks.get(&item_id).map_or(0, |stack| stack.held(self.now_ms)))
    }

    fn grant_items(
        &mut self,
        grants: Vec<inventory::Grant>,
    ) -> wasmtime::Result<Result<(), inventory::InventoryError>> {
        self.imports.charge_change("inventory.grant-items")?;
        let mut distinct: Vec<&str> = grants.iter().map(|grant| grant.item_id.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > MAX_DISTINCT_GRANTS {
            return Ok(Err(inventory::InventoryError::InvalidQuantity));
        }
        // All or nothing: every grant is applied to a copy first.
        let mut stacks = self.player.stacks.clone();
        for grant in &grants {
            if self.catalog.item_by_id(&grant.item_id).is_none() {
                return Ok(Err(inventory::InventoryError::UnknownItem));
            }
            if grant.quantity == 0 || grant.quantity > MAX_STACK_QUANTITY {
                return Ok(Err(inventory::InventoryError::InvalidQuantity));
            }
            let expires_at_ms = grant.duration_seconds.map(|seconds| {
                self.now_ms.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX).saturating_mul(1000))
            });
            let stack = stacks.entry(grant.item_id.clone()).or_insert(Stack { quantity: 0, expires_at_ms });
            let held = stack.held(self.now_ms);
            let quantity = held + grant.quantity;
            if quantity > MAX_STACK_QUANTITY {
                return Ok(Err(inventory::InventoryError::InvalidQuantity));
            }
            // An expired stack starts afresh; an unexpired one lasts until
            // the later of the two expiries.
            let expires_at_ms = match (held, stack.expires_at_ms, expires_at_ms) {
                (0, _, new) => new,
                (_, Some(old), Some(new)) => Some(old.max(new)),
                (_, _, _) => None,
            };
            *stack = Stack { quantity, expires_at_ms };
        }
        self.player.stacks = stacks;
        for grant in grants {
            self.moved.grants.push((grant.item_id, i64::try_from(grant.quantity).unwrap_or(i64::MAX)));
        }
        Ok(Ok(()))
    }

    fn consume(&mut self, item_id: String, quantity: u64) -> wasmtime::Result<Result<u64, inventory::InventoryError>> {
        self.imports.charge_change("inventory.consume")?;
        if self.catalog.item_by_id(&item_id).is_none() {
            return Ok(Err(inventory::InventoryError::UnknownItem));
        }
        if quantity == 0 || quantity > MAX_STACK_QUANTITY {
            return Ok(Err(inventory::InventoryError::InvalidQuantity));
        }
        let now_ms = self.now_ms;
        let Some(stack) = self.player.stacks.get_mut(&item_id).filter(|stack| stack.held(now_ms) >= quantity) else {
            return Ok(Err(inventory::InventoryError::InsufficientQuantity));
        };
        stack.quantity -= quantity;
        Ok(Ok(stack.quantity))
    }
}

impl history::Host for CallState {
    fn item_purchases(&mut self, item_id: String) -> wasmtime::Result<u64> {
        self.imports.charge()?;
        Ok(self.player.item_purchases.get(&item_id).copied().unwrap_or(0))
    }

    fn listing_purchases(&mut self, store_id: String, item_id: String) -> wasmtime::Result<u64> {
        self.imports.charge()?;
        Ok(self.player.listing_purchases.get(&(store_id, item_id)).copied().unwrap_or(0))
    }

    fn claim_listing(
        &mut self,
        store_id: String,
        item_id: String,
        quantity: u64,
        cap: u64,
    ) -> wasmtime::Result<Option<u64>> {
        self.imports.charge_change("history.claim-listing")?;
        if quantity == 0 || self.catalog.listing(&store_id, &item_id).is_none() {
            return Ok(None);
        }
        let claimed = self.player.listing_purchases.entry((store_id, item_id)).or_insert(0);
        match claimed.checked_add(quantity).filter(|total| *total <= cap) {
            Some(total) => {
                *claimed = total;
                Ok(Some(total))
            }
            None => Ok(None),
        }
    }
}

impl player::Host for CallState {
    fn identity(&mut self) -> wasmtime::Result<String> {
        self.imports.charge()?;
        Ok(self.player.identity.clone().unwrap_or_else(|| self.user_id.clone()))
    }

    fn attribute(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.imports.charge()?;
        Ok(self.player.attributes.get(&name).map(ToString::to_string))
    }
}

impl settings::Host for CallState {
    fn setting(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.imports.charge()?;
        Ok(self.settings.get(&name).map(ToString::to_string))
    }
}

impl types::Host for CallState {}
