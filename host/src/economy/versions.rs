//! Reads of collection versions, grouped: the reads asked for while one is
//! under way go together in the next, one round trip for many. Each write
//! through a route that answers an ETag (PlayFab's) reads its collection
//! after committing; grouped, that read costs a fraction of a round trip.

use crate::storage::{Held, StorageError, StorageResult, TenantStore, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The most reads one round trip takes.
const MAX_GROUP: usize = 256;

struct Ask {
    store: Arc<dyn TenantStore>,
    user: User,
    collection_id: String,
    reply: oneshot::Sender<StorageResult<Vec<Held>>>,
}

/// One reader per tenant, started on its first read.
#[derive(Default)]
pub struct VersionReads {
    readers: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Ask>>>,
}

impl VersionReads {
    /// What the player's collection holds, as stored (see
    /// `ReadStore::collection_states`).
    pub async fn read(
        &self,
        store: Arc<dyn TenantStore>,
        user: &User,
        collection_id: &str,
    ) -> StorageResult<Vec<Held>> {
        let (reply, answer) = oneshot::channel();
        let ask = Ask { store, user: user.clone(), collection_id: collection_id.to_owned(), reply };
        let reader = {
            let mut readers = self.readers.lock().expect("the readers lock is never poisoned");
            readers.entry(user.tenant_id).or_insert_with(start).clone()
        };
        let stopped = || StorageError::Backend("the collection reader stopped".into());
        reader.send(ask).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A tenant's reader: takes every read waiting, answers them with one query.
fn start() -> mpsc::UnboundedSender<Ask> {
    let (sender, mut asks) = mpsc::unbounded_channel::<Ask>();
    tokio::spawn(async move {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while asks.recv_many(&mut group, MAX_GROUP).await > 0 {
            let wanted: Vec<(User, String)> =
                group.iter().map(|ask| (ask.user.clone(), ask.collection_id.clone())).collect();
            let store = group[0].store.clone();
            match store.collection_states(&wanted).await {
                Ok(states) => {
                    for (ask, state) in group.drain(..).zip(states) {
                        let _ = ask.reply.send(Ok(state));
                    }
                }
                Err(error) => {
                    for ask in group.drain(..) {
                        let _ = ask.reply.send(Err(error.clone()));
                    }
                }
            }
        }
    });
    sender
}
