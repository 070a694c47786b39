//! Guarded purchases committed in batches: one task takes every purchase
//! waiting when the writer comes free (one per player) and writes them all
//! in one transaction with one fixed script, so they share its sync and its
//! three round trips to SQLite's thread. The script checks every
//! purchase's guards first (its balance unchanged, its key unused, its
//! items in the tenant's catalog, its stacks below their maximum), then
//! writes only the purchases that passed, set-wise: a purchase that failed
//! a guard writes nothing and runs again under the writer's lock.
use super::super::seen::SeenBalances;
use super::super::*;
use super::reads::collection_states;
use super::{Writer, Writing, now};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Row, SqliteConnection};
use std::collections::HashSet;
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
    pub(super) fn start(writer: Arc<Mutex<Writer>>, seen: Arc<SeenBalances>, wait: Duration) -> Self {
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
    writer: Arc<Mutex<Writer>>,
    seen: Arc<SeenBalances>,
    wait: Duration,
    mut receiver: mpsc::Receiver<Pending>,
) {
    let mut waiting: Vec<Pending> = Vec::new();
    loop {
        if waiting.is_empty() {
            match receiver.recv().await {
                Some(pending) => waiting.push(pending),
                None => return,
            }
        }
        while waiting.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => waiting.push(pending),
                Err(_) => break,
            }
        }
        let batch = take_one_per_user(&mut waiting);
        commit_batch(&writer, &seen, wait, batch).await;
    }
}

/// Takes from `waiting` the first purchase of each user: the guards of one
/// batch are all checked before any of it is written, so a user's second
/// purchase waits for the next batch.
fn take_one_per_user(waiting: &mut Vec<Pending>) -> Vec<Pending> {
    let mut users = HashSet::with_capacity(waiting.len());
    let (batch, rest): (Vec<_>, _) =
        std::mem::take(waiting).into_iter().partition(|pending| users.insert(pending.purchase.user_id));
    *waiting = rest;
    batch
}

async fn commit_batch(writer: &Arc<Mutex<Writer>>, seen: &SeenBalances, wait: Duration, batch: Vec<Pending>) {
    let written = async {
        let mut write = Writing::begin(writer, wait).await?;
        let passed = write_batch(write.connection(), &batch).await?;
        let states = asked_states(write.connection(), &batch, &passed).await?;
        write.commit().await?;
        StorageResult::Ok((passed, states))
    }
    .await;
    let (passed, mut states) = match written {
        Ok(written) => written,
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    for (pending, passed) in batch.into_iter().zip(passed) {
        let p = &pending.purchase;
        let outcome = if passed {
            let balance_after = p.before + p.delta;
            seen.set(p.user_id, &p.currency_code, balance_after);
            let collection = p.collection.is_some().then(|| states.next()).flatten();
            Guarded::Committed { balance_after, collection }
        } else {
            seen.forget(p.user_id, &p.currency_code);
            Guarded::Stale
        };
        let _ = pending.reply.send(Ok(outcome));
    }
}

/// The states of the collections that the purchases which passed asked
/// for, in their order, as the open transaction leaves them.
async fn asked_states(
    connection: &mut SqliteConnection,
    batch: &[Pending],
    passed: &[bool],
) -> StorageResult<std::vec::IntoIter<Vec<Held>>> {
    let asked: Vec<(Uuid, &str)> = batch
        .iter()
        .zip(passed)
        .filter(|(_, passed)| **passed)
        .filter_map(|(pending, _)| Some((pending.purchase.user_id, pending.purchase.collection.as_deref()?)))
        .collect();
    match asked.is_empty() {
        true => Ok(Vec::new().into_iter()),
        false => Ok(collection_states(connection, &asked).await?.into_iter()),
    }
}

/// One purchase of a batch, as the script reads it.
#[derive(Serialize)]
struct PurchaseRow<'a> {
    i: usize,
    tenant: String,
    user: String,
    code: &'a str,
    delta: i64,
    before: i64,
    ledger: String,
    reason: &'a str,
    reference: Option<&'a str>,
    module: Option<&'a str>,
    purchase: String,
    item: String,
    store: Option<String>,
    quantity: i64,
    unit_price: i64,
    total: i64,
    key: Option<&'a str>,
    hash: Option<String>,
    status: Option<u16>,
    response: Option<&'a Value>,
}

/// One grant of a batch's purchase `i`.
#[derive(Serialize)]
struct GrantRow<'a> {
    i: usize,
    item: String,
    quantity: i64,
    via: &'a str,
    expires_at: Option<i64>,
    collection: &'a str,
    stack: &'a str,
    display: Option<&'a Value>,
    bundle: Option<String>,
}

fn hex_id(id: Uuid) -> String {
    hex::encode(id.as_bytes())
}

/// Writes the purchases of `batch` that pass their guards, in the open
/// transaction; which passed, in order.
async fn write_batch(connection: &mut SqliteConnection, batch: &[Pending]) -> StorageResult<Vec<bool>> {
    let now = now();
    let mut rows = Vec::with_capacity(batch.len());
    let mut grants = Vec::new();
    for (i, pending) in batch.iter().enumerate() {
        let p = &pending.purchase;
        let keyed = p.record.idempotency_key.is_some();
        rows.push(PurchaseRow {
            i,
            tenant: hex_id(pending.tenant_id),
            user: hex_id(p.user_id),
            code: &p.currency_code,
            delta: p.delta,
            before: p.before,
            ledger: hex_id(Uuid::now_v7()),
            reason: p.reason.as_str(),
            reference: p.reference.as_deref(),
            module: p.module_sha256.as_deref(),
            purchase: hex_id(p.record.id),
            item: hex_id(p.record.item_id),
            store: p.record.store_id.map(hex_id),
            quantity: p.record.quantity,
            unit_price: p.record.unit_price,
            total: p.record.total,
            key: p.record.idempotency_key.as_deref(),
            hash: keyed.then(|| hex::encode(&p.record.request_hash)),
            status: keyed.then_some(p.response.status),
            response: keyed.then_some(&p.response.body),
        });
        for grant in &p.grants {
            grants.push(GrantRow {
                i,
                item: hex_id(grant.item_id),
                quantity: grant.quantity,
                via: &grant.acquired_via,
                expires_at: grant.duration_seconds.map(|seconds| now + seconds * 1_000_000),
                collection: &grant.stack.collection_id,
                stack: &grant.stack.stack_id,
                display: grant.display_properties.as_ref(),
                bundle: grant.bundle_purchase_id.map(hex_id),
            });
        }
    }
    let json = |error: serde_json::Error| StorageError::Backend(format!("encoding a batch: {error}"));
    let rows = sqlx::query(GUARDED_BATCH)
        .bind(serde_json::to_string(&rows).map_err(json)?)
        .bind(serde_json::to_string(&grants).map_err(json)?)
        .bind(now)
        .fetch_all(&mut *connection)
        .await?;
    let mut passed = vec![false; batch.len()];
    for row in rows {
        let i: i64 = row.try_get("i")?;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| passed.get_mut(i)) {
            *slot = row.try_get("ok")?;
        }
    }
    Ok(passed)
}

/// The batch: `$1` its purchases and `$2` their grants (JSON arrays of
/// [`PurchaseRow`] and [`GrantRow`]), `$3` the time. Ids travel as hex.
const GUARDED_BATCH: &str = concat!(
    "CREATE TEMP TABLE IF NOT EXISTS guarded_batch (
        i INTEGER PRIMARY KEY, tenant_id BLOB, user_id BLOB, code TEXT, delta INTEGER, before INTEGER,
        ledger_id BLOB, reason TEXT, reference TEXT, module_sha256 TEXT, purchase_id BLOB, item_id BLOB,
        store_id BLOB, quantity INTEGER, unit_price INTEGER, total INTEGER, idempotency_key TEXT,
        request_hash BLOB, response_status INTEGER, response_body TEXT, ok INTEGER NOT NULL DEFAULT 0);
    CREATE TEMP TABLE IF NOT EXISTS guarded_grants (
        i INTEGER, item_id BLOB, quantity INTEGER, acquired_via TEXT, expires_at INTEGER,
        collection_id TEXT, stack_id TEXT, display TEXT, bundle BLOB);
    DELETE FROM guarded_batch;
    DELETE FROM guarded_grants;
    INSERT INTO guarded_batch (i, tenant_id, user_id, code, delta, before, ledger_id, reason, reference,
        module_sha256, purchase_id, item_id, store_id, quantity, unit_price, total, idempotency_key,
        request_hash, response_status, response_body)
    SELECT value ->> 'i', unhex(value ->> 'tenant'), unhex(value ->> 'user'), value ->> 'code',
        value ->> 'delta', value ->> 'before', unhex(value ->> 'ledger'), value ->> 'reason',
        value ->> 'reference', value ->> 'module', unhex(value ->> 'purchase'), unhex(value ->> 'item'),
        unhex(value ->> 'store'), value ->> 'quantity', value ->> 'unit_price', value ->> 'total',
        value ->> 'key', unhex(value ->> 'hash'), value ->> 'status',
        CASE WHEN value ->> 'response' IS NOT NULL THEN value -> 'response' END
    FROM json_each($1);
    INSERT INTO guarded_grants (i, item_id, quantity, acquired_via, expires_at, collection_id, stack_id, display,
        bundle)
    SELECT value ->> 'i', unhex(value ->> 'item'), value ->> 'quantity', value ->> 'via', value ->> 'expires_at',
        value ->> 'collection', value ->> 'stack',
        CASE WHEN value ->> 'display' IS NOT NULL THEN value -> 'display' END, unhex(value ->> 'bundle')
    FROM json_each($2);
    UPDATE guarded_batch AS b SET ok = 1
    WHERE EXISTS (SELECT 1 FROM balances WHERE user_id = b.user_id AND currency_code = b.code AND balance = b.before)
      AND (b.idempotency_key IS NULL OR NOT EXISTS
           (SELECT 1 FROM purchases p WHERE p.user_id = b.user_id AND p.idempotency_key = b.idempotency_key))
      AND NOT EXISTS (SELECT 1 FROM guarded_grants g WHERE g.i = b.i AND NOT EXISTS
           (SELECT 1 FROM catalog_items c WHERE c.tenant_id = b.tenant_id AND c.id = g.item_id))
      AND NOT EXISTS (SELECT 1 FROM guarded_grants g JOIN inventory s
           ON s.user_id = b.user_id AND s.item_id = g.item_id AND s.collection_id = g.collection_id AND s.stack_id = g.stack_id
           WHERE g.i = b.i AND s.quantity + g.quantity > 1000000000000000);
    UPDATE balances SET balance = balance + b.delta, updated_at = $3
    FROM guarded_batch b WHERE b.ok AND balances.user_id = b.user_id AND balances.currency_code = b.code;
    INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256, created_at)
    SELECT user_id, ledger_id, code, delta, before + delta, reason, reference, module_sha256, $3
    FROM guarded_batch WHERE ok;
    INSERT INTO inventory AS s (user_id, item_id, quantity, acquired_via, acquired_at, expires_at,
        collection_id, stack_id, display_properties, bundle_purchase_id)
    SELECT b.user_id, g.item_id, g.quantity, g.acquired_via, $3, g.expires_at, g.collection_id, g.stack_id, g.display,
        g.bundle
    FROM guarded_grants g JOIN guarded_batch b ON b.i = g.i WHERE b.ok ",
    stack_upsert!(),
    ";
    INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
        idempotency_key, request_hash, response_status, response_body, module_sha256, created_at)
    SELECT user_id, purchase_id, item_id, store_id, quantity, code, unit_price, total, idempotency_key,
        request_hash, response_status, response_body, module_sha256, $3
    FROM guarded_batch WHERE ok;
    SELECT i, ok FROM guarded_batch ORDER BY i"
);
