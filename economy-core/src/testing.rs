//! An in-memory [`Env`] for the unit tests.

use crate::{Content, Env, Grant, InventoryError, Item, ItemType, Listing, Price, WalletError};
use std::collections::HashMap;

#[derive(Default)]
pub struct FakeEnv {
    items: HashMap<String, Item>,
    listings: HashMap<(String, String), Listing>,
    balances: HashMap<String, i64>,
    stacks: HashMap<String, u64>,
    claimed: HashMap<(String, String), u64>,
}

impl FakeEnv {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_balance(mut self, code: &str, amount: i64) -> Self {
        self.balances.insert(code.into(), amount);
        self
    }

    pub fn with_item(mut self, key: &str, item_type: ItemType, gems: i64) -> Self {
        self.insert(key, item_type, gems, vec![]);
        self
    }

    pub fn add_bundle(&mut self, key: &str, gems: i64, contents: Vec<Content>) {
        self.insert(key, ItemType::Bundle, gems, contents);
    }

    pub fn add_listing(&mut self, store_id: &str, item_id: &str, listing: Listing) {
        self.listings.insert((store_id.into(), item_id.into()), listing);
    }

    pub fn hold(&mut self, item_id: &str, quantity: u64) {
        self.stacks.insert(item_id.into(), quantity);
    }

    pub fn quantity(&self, item_id: &str) -> u64 {
        self.stacks.get(item_id).copied().unwrap_or(0)
    }

    fn insert(&mut self, key: &str, item_type: ItemType, gems: i64, contents: Vec<Content>) {
        let prices = vec![Price { currency_code: "gems".into(), amount: gems }];
        let item = Item {
            id: format!("id-{key}"),
            key: key.into(),
            item_type,
            prices,
            contents,
            duration_seconds: None,
            display_properties: "{}".into(),
        };
        self.items.insert(item.id.clone(), item);
    }
}

impl Env for FakeEnv {
    fn item_by_id(&mut self, id: &str) -> Option<Item> {
        self.items.get(id).cloned()
    }

    fn item_by_key(&mut self, key: &str) -> Option<Item> {
        self.items.values().find(|item| item.key == key).cloned()
    }

    fn listing(&mut self, store_id: &str, item_id: &str) -> Option<Listing> {
        self.listings.get(&(store_id.into(), item_id.into())).cloned()
    }

    fn balance(&mut self, code: &str) -> Option<i64> {
        self.balances.get(code).copied()
    }

    fn debit(&mut self, code: &str, amount: i64, _reference: &str) -> Result<i64, WalletError> {
        let balance = self.balances.get_mut(code).ok_or(WalletError::UnknownCurrency)?;
        if *balance < amount {
            return Err(WalletError::InsufficientBalance);
        }
        *balance -= amount;
        Ok(*balance)
    }

    fn credit(&mut self, code: &str, amount: i64, _reference: &str) -> Result<i64, WalletError> {
        let balance = self.balances.get_mut(code).ok_or(WalletError::UnknownCurrency)?;
        *balance += amount;
        Ok(*balance)
    }

    fn grant_items(&mut self, grants: &[Grant]) -> Result<(), InventoryError> {
        for grant in grants {
            *self.stacks.entry(grant.item_id.clone()).or_default() += grant.quantity;
        }
        Ok(())
    }

    fn consume(&mut self, item_id: &str, quantity: u64) -> Result<u64, InventoryError> {
        let held = self.stacks.entry(item_id.into()).or_default();
        if *held < quantity {
            return Err(InventoryError::InsufficientQuantity);
        }
        *held -= quantity;
        Ok(*held)
    }

    fn held(&mut self, item_id: &str) -> u64 {
        self.quantity(item_id)
    }

    fn item_purchases(&mut self, _item_id: &str) -> u64 {
        0
    }

    fn listing_purchases(&mut self, store_id: &str, item_id: &str) -> u64 {
        self.claimed.get(&(store_id.into(), item_id.into())).copied().unwrap_or(0)
    }

    fn claim_listing(&mut self, store_id: &str, item_id: &str, quantity: u64, cap: u64) -> Option<u64> {
        let claimed = self.claimed.entry((store_id.into(), item_id.into())).or_default();
        (*claimed + quantity <= cap).then(|| {
            *claimed += quantity;
            *claimed
        })
    }

    fn identity(&mut self) -> String {
        "player-1".into()
    }

    fn attribute(&mut self, _name: &str) -> Option<String> {
        None
    }

    fn setting(&mut self, _name: &str) -> Option<String> {
        None
    }
}
