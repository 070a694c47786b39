//! Keys, sessions and players served from memory. None changes once issued
//! (there is no revocation route, and a player's identity is fixed), so a
//! record found in the database is cached until the cache is full; a
//! session's expiry is checked on every use. Misses are never cached: a
//! key, session or player made on another host is found in the database on
//! first use.

use crate::domain::Identity;
use crate::economy::{Economy, EconomyError};
use crate::secrets;
use crate::storage::{ApiKeyRecord, Session, User};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use uuid::Uuid;

/// How many keys, and how many sessions, are kept in memory. A full cache
/// is emptied and refills from the database.
const MAX_CACHED: usize = 200_000;

/// A bounded map from secret hashes to what they stand for.
struct Cache<K, V> {
    entries: RwLock<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        self.entries.read().expect("credential cache lock").get(key).cloned()
    }

    fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.write().expect("credential cache lock");
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self { entries: RwLock::new(HashMap::new()) }
    }
}

#[derive(Default)]
pub struct Credentials {
    keys: Cache<[u8; 32], ApiKeyRecord>,
    sessions: Cache<[u8; 32], Session>,
    players: Cache<(Uuid, String), User>,
}

impl Credentials {
    /// The API key's record, or none for an unknown key.
    pub async fn api_key(&self, economy: &Economy, key: &str) -> Result<Option<ApiKeyRecord>, EconomyError> {
        let hash = secrets::hash(key);
        if let Some(record) = self.keys.get(&hash) {
            return Ok(Some(record));
        }
        let record = economy.api_key(&hash).await?;
        if let Some(record) = record {
            self.keys.insert(hash, record);
        }
        Ok(record)
    }

    /// The session of this token in `tenant_id`, expired or not, or none.
    pub async fn session(
        &self,
        economy: &Economy,
        tenant_id: Uuid,
        token: &str,
    ) -> Result<Option<Session>, EconomyError> {
        let hash = secrets::hash(token);
        if let Some(session) = self.sessions.get(&hash) {
            // A session of another tenant is as good as no session.
            return Ok(Some(session).filter(|session| session.user.tenant_id == tenant_id));
        }
        let session = economy.session(tenant_id, &hash).await?;
        if let Some(session) = &session {
            self.sessions.insert(hash, session.clone());
        }
        Ok(session)
    }

    /// The player `identity` of `tenant_id`: `NotFound` if there is none.
    pub async fn player(&self, economy: &Economy, tenant_id: Uuid, identity: &Identity) -> Result<User, EconomyError> {
        let key = (tenant_id, identity.as_str().to_owned());
        if let Some(user) = self.players.get(&key) {
            return Ok(user);
        }
        let user = economy.player(tenant_id, identity).await?;
        self.players.insert(key, user.clone());
        Ok(user)
    }
}
