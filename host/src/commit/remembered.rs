//! The balances this host last committed: what a first attempt decides on
//! without reading them. A hint only: a stale one fails its commit's guard
//! (nothing is written) and the request runs again on fresh reads.

use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Players whose balances are remembered; past it the memo starts over, so
/// it never holds more than this many players' (a few hundred bytes each).
const REMEMBERED_PLAYERS: usize = 100_000;

/// Balances of currencies that do not regenerate, by player and currency.
#[derive(Default)]
pub struct Remembered {
    players: Mutex<HashMap<Uuid, Vec<(String, i64)>>>,
}

impl Remembered {
    pub fn get(&self, user_id: Uuid, code: &str) -> Option<i64> {
        let players = self.players.lock().expect("remembered balances lock");
        players.get(&user_id)?.iter().find(|(seen, _)| seen == code).map(|(_, balance)| *balance)
    }

    pub fn set(&self, user_id: Uuid, code: &str, balance: i64) {
        let mut players = self.players.lock().expect("remembered balances lock");
        if players.len() >= REMEMBERED_PLAYERS && !players.contains_key(&user_id) {
            players.clear();
        }
        let balances = players.entry(user_id).or_default();
        match balances.iter_mut().find(|(seen, _)| seen == code) {
            Some(entry) => entry.1 = balance,
            None => balances.push((code.to_owned(), balance)),
        }
    }

    pub fn forget(&self, user_id: Uuid, code: &str) {
        if let Some(balances) = self.players.lock().expect("remembered balances lock").get_mut(&user_id) {
            balances.retain(|(seen, _)| seen != code);
        }
    }
}
