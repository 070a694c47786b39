//! Guarded purchases committed in batches: one task takes every purchase
//! waiting when the writer comes free and writes them all in one
//! transaction, so they share its one sync. Each purchase keeps its own
//! guard and its own savepoint: one that fails its guard, or that the
//! database refuses, is undone alone while the others commit.

use super::super::seen::SeenBalances;
use super::super::*;
use super::tx::{append_ledger, record_purchase};
use super::{Writing, now};
use sqlx::SqliteConnection;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// The most purchases one transaction commits.
const MAX_BATCH: usize = 256;
/// Purchases waiting for the committer at most; past it, requests wait to
/// queue (backpressure, not unbounded memory).
const QUEUE_CAPACITY: usize = 1024;

struct Pending {
    tenant_id: Uuid,
    purchase: GuardedPurchase,
    reply: oneshot::Sender<StorageResult<Guarded>>,
}

pub(super) struct Committer {
    queue: std::sync::Mutex<Option<mpsc::Sender<Pending>>>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub(super) fn start(writer: Arc<Mutex<SqliteConnection>>, seen: Arc<SeenBalances>, wait: Duration) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(commit_batches(writer, seen, wait, receiver));
        Self { queue: std::sync::Mutex::new(Some(queue)), task: std::sync::Mutex::new(Some(task)) }
    }

    /// Queues a purchase and waits for its batch to commit.
    pub(super) async fn commit(&self, tenant_id: Uuid, purchase: GuardedPurchase) -> StorageResult<Guarded> {
        let closed = || StorageError::Unavailable("the store is closing".into());
        let queue = self.queue.lock().expect("committer queue lock").clone().ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        queue.send(Pending { tenant_id, purchase, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Commits what is queued, then stops.
    pub(super) async fn close(&self) {
        self.queue.lock().expect("committer queue lock").take();
        let task = self.task.lock().expect("committer task lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn commit_batches(
    writer: Arc<Mutex<SqliteConnection>>,
    seen: Arc<SeenBalances>,
    wait: Duration,
    mut receiver: mpsc::Receiver<Pending>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        commit_batch(&writer, &seen, wait, batch).await;
    }
}

async fn commit_batch(writer: &Arc<Mutex<SqliteConnection>>, seen: &SeenBalances, wait: Duration, batch: Vec<Pending>) {
    let mut write = match Writing::begin(writer, wait).await {
        Ok(write) => write,
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for pending in &batch {
        outcomes.push(guarded(write.connection(), pending.tenant_id, &pending.purchase).await);
    }
    let committed = write.commit().await;
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        let p = &pending.purchase;
        let outcome = match (&committed, outcome) {
            (Ok(()), Ok(Guarded::Committed { balance_after })) => {
                seen.set(p.user_id, &p.currency_code, balance_after);
                Ok(Guarded::Committed { balance_after })
            }
            (Err(error), Ok(Guarded::Committed { .. })) => Err(error.clone()),
            (_, Ok(Guarded::Stale)) => {
                seen.forget(p.user_id, &p.currency_code);
                Ok(Guarded::Stale)
            }
            (_, Err(error)) => Err(error),
        };
        let _ = pending.reply.send(outcome);
    }
}

/// One guarded purchase inside the batch's transaction, in a savepoint of
/// its own: written whole, or (stale, or refused) not at all.
async fn guarded(connection: &mut SqliteConnection, tenant_id: Uuid, p: &GuardedPurchase) -> StorageResult<Guarded> {
    sqlx::query("SAVEPOINT guarded").execute(&mut *connection).await?;
    let outcome = apply(connection, tenant_id, p).await;
    if !matches!(outcome, Ok(Guarded::Committed { .. })) {
        sqlx::query("ROLLBACK TO guarded").execute(&mut *connection).await?;
    }
    sqlx::query("RELEASE guarded").execute(&mut *connection).await?;
    outcome
}

/// The debit only if the balance is still the one the rules saw, its
/// ledger entry, the grants (all in the tenant's catalog) and the record
/// (its key unused); stale otherwise.
async fn apply(connection: &mut SqliteConnection, tenant_id: Uuid, p: &GuardedPurchase) -> StorageResult<Guarded> {
    let after: Option<i64> = sqlx::query_scalar(
        "UPDATE balances SET balance = balance + $3, updated_at = $5
         WHERE user_id = $1 AND currency_code = $2 AND balance = $4
         RETURNING balance",
    )
    .bind(p.user_id)
    .bind(&p.currency_code)
    .bind(p.delta)
    .bind(p.before)
    .bind(now())
    .fetch_optional(&mut *connection)
    .await?;
    let Some(balance_after) = after else { return Ok(Guarded::Stale) };
    let module = p.module_sha256.as_deref();
    let reason = p.reason.as_str();
    append_ledger(
        connection,
        p.user_id,
        &p.currency_code,
        p.delta,
        balance_after,
        reason,
        p.reference.as_deref(),
        module,
    )
    .await?;
    match record_purchase(connection, tenant_id, p.user_id, module, &p.record, &p.grants, &p.response).await? {
        Recorded::Done => Ok(Guarded::Committed { balance_after }),
        Recorded::KeyTaken | Recorded::UnknownItem => Ok(Guarded::Stale),
    }
}
