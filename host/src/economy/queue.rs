//! One request at a time per user on this host. Purchases and consumes of
//! one user serialise on that user's balance and stack rows anyway; waiting
//! here instead of on a row lock keeps the wait off the database: no
//! connection is held, no lock queue forms, and the transaction that does
//! run holds its locks only for its own round trips. Correctness never
//! depends on this (other hosts and the database still serialise); it only
//! makes a hot player cheap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

/// Entries beyond which idle users are swept from the map.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct UserQueue {
    users: Mutex<HashMap<Uuid, Weak<AsyncMutex<()>>>>,
}

/// Holds the user's turn until dropped.
pub struct Turn(#[expect(dead_code, reason = "held for its Drop")] OwnedMutexGuard<()>);

impl UserQueue {
    /// Waits for the user's turn.
    pub async fn turn(&self, user_id: Uuid) -> Turn {
        let lock = {
            let mut users = self.users.lock().expect("user queue lock");
            match users.get(&user_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    if users.len() > SWEEP_ABOVE {
                        users.retain(|_, lock| lock.strong_count() > 0);
                    }
                    let lock = Arc::new(AsyncMutex::new(()));
                    users.insert(user_id, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        Turn(lock.lock_owned().await)
    }
}
