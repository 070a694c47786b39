//! Every commit of a file goes through one task, which takes what is
//! waiting when the writer comes free and writes it all in one transaction,
//! so it shares one sync. Guarded purchases (one per player per batch) are
//! written by one fixed script in three round trips to SQLite's thread: it
//! checks every purchase's guards first (its balance unchanged, its key
//! unused, its items in the tenant's catalog, its stacks below their
//! maximum), then writes only the purchases that passed, set-wise. Other
//! journals follow, each under a savepoint of its own (`commit`). What
//! failed a guard writes nothing and runs again on fresh reads.
use super::super::guarded::{GuardedPurchase, Shaped};
use super::super::*;
use super::commit::write_journal;
use super::reads::collection_states;
use super::{Writer, Writing, now};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Row, SqliteConnection};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// The most commits one transaction holds.
const MAX_BATCH: usize = 256;
/// Commits waiting for the committer at most; past it, requests wait to
/// queue (backpressure, not unbounded memory).
const QUEUE_CAPACITY: usize = 1024;

/// A commit waiting for the writer.
struct Pending {
    tenant_id: Uuid,
    work: Work,
    reply: oneshot::Sender<StorageResult<Commit>>,
}

enum Work {
    Purchase(GuardedPurchase),
    Journal(Journal),
}

impl Pending {
    fn user_id(&self) -> Uuid {
        match &self.work {
            Work::Purchase(purchase) => purchase.user_id,
            Work::Journal(journal) => journal.user_id,
        }
    }
}

pub(super) struct Committer {
    queue: std::sync::Mutex<Option<mpsc::Sender<Pending>>>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub(super) fn start(writer: Arc<Mutex<Writer>>, wait: Duration) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(commit_batches(writer, wait, receiver));
        Self { queue: std::sync::Mutex::new(Some(queue)), task: std::sync::Mutex::new(Some(task)) }
    }

    /// Queues a journal of tenant `tenant_id` and waits for its batch to
    /// commit. The committer answers every journal it takes, even when the
    /// request that sent it has gone.
    pub(super) async fn commit(&self, tenant_id: Uuid, journal: Journal) -> StorageResult<Commit> {
        let closed = || StorageError::Unavailable("the store is closing".into());
        let queue = self.queue.lock().expect("committer queue lock").clone().ok_or_else(closed)?;
        let work = match Shaped::of(journal) {
            Shaped::Guarded(purchase) => Work::Purchase(purchase),
            Shaped::Other(journal) => Work::Journal(journal),
        };
        let (reply, answer) = oneshot::channel();
        queue.send(Pending { tenant_id, work, reply }).await.map_err(|_| closed())?;
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

async fn commit_batches(writer: Arc<Mutex<Writer>>, wait: Duration, mut receiver: mpsc::Receiver<Pending>) {
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
        commit_batch(&writer, wait, batch).await;
    }
}

/// Takes from `waiting` the first commit of each user, in order: the
/// guards of the batch's purchases are all checked before any of it is
/// written, so a user's second commit waits for the next batch.
fn take_one_per_user(waiting: &mut Vec<Pending>) -> Vec<Pending> {
    let mut users = HashSet::with_capacity(waiting.len());
    let (batch, rest): (Vec<_>, _) =
        std::mem::take(waiting).into_iter().partition(|pending| users.insert(pending.user_id()));
    *waiting = rest;
    batch
}

async fn commit_batch(writer: &Arc<Mutex<Writer>>, wait: Duration, batch: Vec<Pending>) {
    let purchases: Vec<(Uuid, &GuardedPurchase)> = batch
        .iter()
        .filter_map(|pending| match &pending.work {
            Work::Purchase(purchase) => Some((pending.tenant_id, purchase)),
            Work::Journal(_) => None,
        })
        .collect();
    let written = async {
        let mut write = Writing::begin(writer, wait).await?;
        let passed = match purchases.is_empty() {
            true => Vec::new(),
            false => write_batch(write.connection(), &purchases).await?,
        };
        let states = asked_states(write.connection(), &purchases, &passed).await?;
        let mut journals = Vec::new();
        for pending in &batch {
            if let Work::Journal(journal) = &pending.work {
                journals.push(write_journal(write.connection(), pending.tenant_id, journal).await);
            }
        }
        write.commit().await?;
        StorageResult::Ok((passed, states, journals))
    }
    .await;
    let (passed, mut states, journals) = match written {
        Ok(written) => written,
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    let (mut passed, mut journals) = (passed.into_iter(), journals.into_iter());
    for pending in batch {
        let outcome = match &pending.work {
            Work::Purchase(purchase) => match passed.next() {
                Some(Guards::Passed) => {
                    let collection = purchase.collection.is_some().then(|| states.next()).flatten();
                    Ok(Commit::Done { collection })
                }
                Some(Guards::StackFull) => Err(StorageError::StackLimit),
                Some(Guards::Failed) | None => Ok(Commit::Stale),
            },
            Work::Journal(_) => journals.next().unwrap_or(Ok(None)).map(|done| done.unwrap_or(Commit::Stale)),
        };
        let _ = pending.reply.send(outcome);
    }
}

/// The states of the collections that the purchases which passed asked
/// for, in their order, as the open transaction leaves them.
async fn asked_states(
    connection: &mut SqliteConnection,
    purchases: &[(Uuid, &GuardedPurchase)],
    passed: &[Guards],
) -> StorageResult<std::vec::IntoIter<Vec<Held>>> {
    let asked: Vec<(Uuid, &str)> = purchases
        .iter()
        .zip(passed)
        .filter(|(_, passed)| **passed == Guards::Passed)
        .filter_map(|((_, purchase), _)| Some((purchase.user_id, purchase.collection.as_deref()?)))
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
async fn write_batch(
    connection: &mut SqliteConnection,
    batch: &[(Uuid, &GuardedPurchase)],
) -> StorageResult<Vec<Guards>> {
    let now = now();
    let mut rows = Vec::with_capacity(batch.len());
    let mut grants = Vec::new();
    for (i, (tenant_id, p)) in batch.iter().enumerate() {
        let keyed = p.record.idempotency_key.is_some();
        rows.push(PurchaseRow {
            i,
            tenant: hex_id(*tenant_id),
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
    let mut passed = vec![Guards::Failed; batch.len()];
    for row in rows {
        let i: i64 = row.try_get("i")?;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| passed.get_mut(i)) {
            *slot = match (row.try_get("ok")?, row.try_get("full")?) {
                (_, true) => Guards::StackFull,
                (true, false) => Guards::Passed,
                (false, false) => Guards::Failed,
            };
        }
    }
    Ok(passed)
}

/// How a purchase of a batch met its guards.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guards {
    Passed,
    /// Something it read moved: it runs again on fresh reads.
    Failed,
    /// A stack it grants to would pass its maximum: refused.
    StackFull,
}

/// The batch: `$1` its purchases and `$2` their grants (JSON arrays of
/// [`PurchaseRow`] and [`GrantRow`]), `$3` the time. Ids travel as hex.
const GUARDED_BATCH: &str = concat!(
    "CREATE TEMP TABLE IF NOT EXISTS guarded_batch (
        i INTEGER PRIMARY KEY, tenant_id BLOB, user_id BLOB, code TEXT, delta INTEGER, before INTEGER,
        ledger_id BLOB, reason TEXT, reference TEXT, module_sha256 TEXT, purchase_id BLOB, item_id BLOB,
        store_id BLOB, quantity INTEGER, unit_price INTEGER, total INTEGER, idempotency_key TEXT,
        request_hash BLOB, response_status INTEGER, response_body TEXT, ok INTEGER NOT NULL DEFAULT 0,
        full INTEGER NOT NULL DEFAULT 0);
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
    UPDATE guarded_batch AS b SET full = 1
    WHERE EXISTS (SELECT 1 FROM guarded_grants g JOIN inventory s
           ON s.user_id = b.user_id AND s.item_id = g.item_id AND s.collection_id = g.collection_id AND s.stack_id = g.stack_id
           WHERE g.i = b.i AND (s.expires_at IS NULL OR s.expires_at > $3) AND s.quantity + g.quantity > 1000000000000000);
    UPDATE guarded_batch AS b SET ok = 1
    WHERE NOT b.full
      AND EXISTS (SELECT 1 FROM balances WHERE user_id = b.user_id AND currency_code = b.code AND balance = b.before)
      AND (b.idempotency_key IS NULL OR NOT EXISTS
           (SELECT 1 FROM purchases p WHERE p.user_id = b.user_id AND p.idempotency_key = b.idempotency_key))
      AND NOT EXISTS (SELECT 1 FROM guarded_grants g WHERE g.i = b.i AND NOT EXISTS
           (SELECT 1 FROM catalog_items c WHERE c.tenant_id = b.tenant_id AND c.id = g.item_id));
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
    SELECT i, ok, full FROM guarded_batch ORDER BY i"
);
