//! The balances this host last saw committed: what optimistic purchases
//! decide on.

use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Users whose balances are remembered; past it the memo starts over.
const REMEMBERED_USERS: usize = 100_000;

/// The balances this host last saw committed, by user and currency. A hint
/// only: a stale one fails its guard, and the purchase runs again under
/// locks.
#[derive(Default)]
pub(crate) struct SeenBalances {
    users: Mutex<HashMap<Uuid, Vec<(String, i64)>>>,
}

impl SeenBalances {
    pub(crate) fn get(&self, user_id: Uuid, code: &str) -> Option<i64> {
        let users = self.users.lock().expect("seen balances lock");
        users.get(&user_id)?.iter().find(|(seen, _)| seen == code).map(|(_, balance)| *balance)
    }

    pub(crate) fn set(&self, user_id: Uuid, code: &str, balance: i64) {
        let mut users = self.users.lock().expect("seen balances lock");
        if users.len() >= REMEMBERED_USERS && !users.contains_key(&user_id) {
            users.clear();
        }
        let balances = users.entry(user_id).or_default();
        match balances.iter_mut().find(|(seen, _)| seen == code) {
            Some(entry) => entry.1 = balance,
            None => balances.push((code.to_owned(), balance)),
        }
    }

    pub(crate) fn forget(&self, user_id: Uuid, code: &str) {
        if let Some(balances) = self.users.lock().expect("seen balances lock").get_mut(&user_id) {
            balances.retain(|(seen, _)| seen != code);
        }
    }
}
