//! Group commit of guarded purchases (see `guarded`). A few committer tasks, each with a
//! connection of its own (outside the pool), take every purchase waiting
//! when they come free and write them in one statement: one round trip, one
//! executor start and one WAL flush for the lot. Under light load a batch is
//! one purchase; under heavy load the queue fills while the committers are
//! busy, and the batches grow with it.
//!
//! Each purchase in a batch keeps its own guard (the balance its rules saw,
//! its items in the catalog, its idempotency key unused), so one that fails
//! its guard writes nothing and the others are unaffected. A statement the
//! database refuses whole (a lock wait past the committers' short lock
//! timeout, a key taken meanwhile, a stack past its limit) is retried one
//! purchase at a time, so only the purchase at fault fails.
//!
//! A purchase that names a collection (one answered with its ETag) gets
//! back the collection as the statement left it, from the same statement:
//! the rows its snapshot held and the stacks and balance it wrote, put
//! together here (read after the commit instead, it cost a query per group
//! of purchases, and PlayFab's purchases ran at 60 to 85 % of native ones).

use super::super::guarded::GuardedPurchase;
use super::super::*;
use super::error::{self, is_unique_violation, refused};
use super::rows::{IdempotencyColumns, held_from_row};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection, Row};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The most purchases one statement writes.
const MAX_BATCH: usize = 64;
/// Purchases waiting to commit, at most; past it, a purchase waits for room
/// (backpressure) instead of growing the queue.
const QUEUE_CAPACITY: usize = 16 * MAX_BATCH;
/// How long a batch waits on a row lock before it gives up and commits its
/// purchases one by one: a row locked elsewhere (a grant, a locked
/// purchase on another host) must not hold up everyone batched with it.
const BATCH_LOCK_TIMEOUT_MS: &str = "500";

/// A guarded purchase of a tenant, waiting to commit.
pub(super) struct Batched {
    pub tenant_id: Uuid,
    pub purchase: GuardedPurchase,
}

/// The outcome of one purchase of a batch.
type Reply = StorageResult<Commit>;

struct Pending {
    batched: Batched,
    reply: oneshot::Sender<Reply>,
}

/// The queue of purchases waiting to commit, and the tasks that commit them.
pub(super) struct Committers {
    /// `None` once closed: no purchase is taken after that.
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Committers {
    /// Starts `count` committer tasks on the current runtime, connecting
    /// as the pool does. Their connections are set to plan the statement
    /// once: planned for each batch's sizes, it would be planned again on
    /// every execution, which costs more than running it.
    pub(super) fn start(pool: &PgPool, count: usize) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .options([("plan_cache_mode", "force_generic_plan"), ("lock_timeout", BATCH_LOCK_TIMEOUT_MS)]);
        let tasks = (0..count).map(|_| tokio::spawn(commit_batches(options.clone(), receiver.clone()))).collect();
        Self { queue: Mutex::new(Some(queue)), tasks: Mutex::new(tasks) }
    }

    /// Commits `batched` with whatever else is waiting.
    pub(super) async fn commit(&self, batched: Batched) -> Reply {
        let closed = || StorageError::Unavailable("the host is shutting down".into());
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.lock().expect("commit queue lock").clone();
        let Some(queue) = queue else { return Err(closed()) };
        if queue.send(Pending { batched, reply }).await.is_err() {
            return Err(closed());
        }
        // A committer answers every purchase it takes, even when the
        // request that sent it has gone.
        answer.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Takes no more purchases, lets the committers finish what is queued
    /// and waits for them to close their connections.
    pub(super) async fn close(&self) {
        self.queue.lock().expect("commit queue lock").take();
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("committer tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// One committer: waits for purchases, writes them, answers each.
async fn commit_batches(options: PgConnectOptions, receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    let mut connection: Option<PgConnection> = None;
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    let mut used_at = std::time::Instant::now();
    loop {
        if receiver.lock().await.recv_many(&mut waiting, MAX_BATCH).await == 0 {
            if let Some(connection) = connection {
                let _ = connection.close().await;
            }
            return;
        }
        // Tested as the pool tests its connections: one idle for a while
        // (perhaps through a restart of the database), or any after a
        // connection failed, is replaced if it does not answer.
        if (used_at.elapsed() > super::TEST_IDLE_AFTER || error::connections_suspect())
            && let Some(open) = connection.as_mut()
            && open.ping().await.is_err()
        {
            error::connection_failed();
            connection = None;
        }
        used_at = std::time::Instant::now();
        // The purchases of one user go to separate statements (one host
        // serves a user's purchases one at a time, so this is rare).
        while !waiting.is_empty() {
            let batch = take_one_per_user(&mut waiting);
            commit_batch(&options, &mut connection, batch).await;
        }
    }
}

/// Takes from `waiting` the first purchase of each user, in the order of
/// their user ids: every batch, on every host, locks balances in that
/// order, so two batches do not wait on each other's balances in a cycle
/// (a wait that remains, on other rows, ends at the lock timeout and its
/// purchases are retried one by one).
fn take_one_per_user(waiting: &mut Vec<Pending>) -> Vec<Pending> {
    let mut users = std::collections::HashSet::with_capacity(waiting.len());
    let (mut batch, rest): (Vec<_>, _) =
        std::mem::take(waiting).into_iter().partition(|p| users.insert(p.batched.purchase.user_id));
    *waiting = rest;
    batch.sort_unstable_by_key(|p| p.batched.purchase.user_id);
    batch
}

async fn commit_batch(options: &PgConnectOptions, connection: &mut Option<PgConnection>, batch: Vec<Pending>) {
    let result = match connection {
        Some(open) => write(open, &batch).await,
        None => match PgConnection::connect_with(options).await {
            Ok(fresh) => write(connection.insert(fresh), &batch).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(outcomes) => {
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                let _ = pending.reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            // An error the database reported leaves the connection in step;
            // after any other, the next batch opens a fresh one.
            if !refused(&error) {
                connection.take();
            }
            if refused(&error) && batch.len() > 1 {
                // Nothing of the statement was written, and any one purchase
                // may have caused the refusal: each runs alone, so only the
                // one at fault fails.
                for pending in batch {
                    Box::pin(commit_batch(options, connection, vec![pending])).await;
                }
                return;
            }
            let outcome = alone(&error);
            for pending in batch {
                let _ = pending.reply.send(outcome.clone());
            }
        }
    }
}

/// What a statement's error means for the purchases in it: after a lost
/// connection, each its own `Unavailable`; for a purchase alone, its fate.
/// A key taken meanwhile makes it stale (the service then finds the earlier
/// purchase and replays it); a row locked elsewhere past the lock timeout
/// makes it busy: nothing of a request holds a row that long, so something
/// outside the host does.
fn alone(error: &sqlx::Error) -> Reply {
    if is_unique_violation(error) { Ok(Commit::Stale) } else { Err(error::classify(error)) }
}

/// Writes a batch (one purchase per user) in one statement; how each
/// purchase ended: its balance after and, if it named a collection, the
/// collection's state after (what the statement's snapshot held, but for
/// the stacks and balance it wrote, as it wrote them), or stale where its
/// guard failed. The subqueries per purchase end in `OFFSET 0` so that
/// they stay index probes: as joins, the planner may hash a whole table
/// instead.
async fn write(connection: &mut PgConnection, batch: &[Pending]) -> Result<Vec<Commit>, sqlx::Error> {
    let columns = BatchColumns::new(batch);
    let rows = sqlx::query(concat!(
        "WITH d AS (
            SELECT * FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[],
                                 $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[],
                                 $13::smallint[], $14::jsonb[], $15::uuid[], $16::uuid[], $17::uuid[],
                                 $18::bigint[], $19::text[], $20::bigint[], $21::bigint[], $31::text[])
              AS d(n, tenant_id, user_id, code, delta, before, ledger_id, reason, reference, module_sha256,
                   idempotency_key, request_hash, response_status, response_body, purchase_id, item_id,
                   store_id, quantity, currency_code, unit_price, total, collection_id)
         ), g AS (
            SELECT * FROM unnest($22::int[], $23::uuid[], $24::bigint[], $25::text[], $26::bigint[],
                                 $27::text[], $28::text[], $29::jsonb[], $30::uuid[])
              AS g(n, item_id, quantity, via, duration, collection_id, stack_id, display, bundle)
         ), changed AS (
            UPDATE balances b SET balance = b.balance + d.delta, updated_at = now()
            FROM d
            WHERE b.user_id = d.user_id AND b.currency_code = d.code AND b.balance = d.before
              AND NOT EXISTS (SELECT 1 FROM g WHERE g.n = d.n AND NOT EXISTS (
                    SELECT 1 FROM catalog_items i WHERE i.tenant_id = d.tenant_id AND i.id = g.item_id OFFSET 0
                  ) OFFSET 0)
              AND NOT EXISTS (SELECT 1 FROM purchases p
                              WHERE p.user_id = d.user_id AND p.idempotency_key = d.idempotency_key OFFSET 0)
            RETURNING d.*, b.balance AS after
         ), entry AS (
            INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256)
            SELECT user_id, ledger_id, code, delta, after, reason, reference, module_sha256 FROM changed
         ), granted AS (
            INSERT INTO inventory AS s (user_id, item_id, quantity, acquired_via, acquired_at, expires_at,
                                        collection_id, stack_id, display_properties, bundle_purchase_id)
            SELECT c.user_id, g.item_id, g.quantity, g.via, now(), now() + make_interval(secs => g.duration),
                   g.collection_id, g.stack_id, g.display, g.bundle
            FROM g JOIN changed c ON c.n = g.n ",
        stack_upsert!(),
        "
            RETURNING s.user_id, s.item_id, s.collection_id, s.stack_id, s.quantity, s.expires_at
         ), recorded AS (
            INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
                                   idempotency_key, request_hash, response_status, response_body, module_sha256)
            SELECT user_id, purchase_id, item_id, store_id, quantity, currency_code, unit_price, total,
                   idempotency_key, request_hash, response_status, response_body, module_sha256
            FROM changed
         ), asked AS (
            SELECT n, user_id, code, collection_id FROM changed WHERE collection_id IS NOT NULL
         )
         SELECT n, after, NULL::uuid AS user_id, NULL::text AS collection_id, NULL::uuid AS item_id,
                NULL::text AS stack_id, NULL::bigint AS quantity, NULL::timestamptz AS expires_at,
                NULL::text AS currency_code, NULL::bool AS live
         FROM changed
         UNION ALL
         SELECT a.n, NULL, NULL, NULL, held.item_id, held.stack_id, held.quantity, held.expires_at, NULL, NULL
         FROM asked a, LATERAL (
            SELECT s.item_id, s.stack_id, s.quantity, s.expires_at FROM inventory s
            WHERE s.user_id = a.user_id AND s.collection_id = a.collection_id
              AND s.quantity > 0 AND (s.expires_at IS NULL OR s.expires_at > now())
            OFFSET 0
         ) held
         UNION ALL
         SELECT a.n, NULL, NULL, NULL, NULL, NULL, held.balance, NULL, held.currency_code, NULL
         FROM asked a, LATERAL (
            SELECT b.currency_code, b.balance FROM balances b
            WHERE b.user_id = a.user_id AND b.currency_code <> a.code AND a.collection_id = 'default'
            OFFSET 0
         ) held
         UNION ALL
         SELECT NULL, NULL, x.user_id, x.collection_id, x.item_id, x.stack_id, x.quantity, x.expires_at, NULL,
                x.quantity > 0 AND (x.expires_at IS NULL OR x.expires_at > now())
         FROM granted x WHERE EXISTS (SELECT 1 FROM asked)"
    ))
    .bind(&columns.n)
    .bind(&columns.tenant_id)
    .bind(&columns.user_id)
    .bind(&columns.code)
    .bind(&columns.delta)
    .bind(&columns.before)
    .bind(&columns.ledger_id)
    .bind(&columns.reason)
    .bind(&columns.reference)
    .bind(&columns.module_sha256)
    .bind(&columns.idempotency_key)
    .bind(&columns.request_hash)
    .bind(&columns.response_status)
    .bind(&columns.response_body)
    .bind(&columns.purchase_id)
    .bind(&columns.item_id)
    .bind(&columns.store_id)
    .bind(&columns.quantity)
    .bind(&columns.currency_code)
    .bind(&columns.unit_price)
    .bind(&columns.total)
    .bind(&columns.grant_n)
    .bind(&columns.grant_item_id)
    .bind(&columns.grant_quantity)
    .bind(&columns.grant_via)
    .bind(&columns.grant_duration)
    .bind(&columns.grant_collection)
    .bind(&columns.grant_stack)
    .bind(&columns.grant_display)
    .bind(&columns.grant_bundle)
    .bind(&columns.collection)
    .fetch_all(connection)
    .await?;
    let mut after = vec![None; batch.len()];
    let mut snapshot = vec![Vec::new(); batch.len()];
    let mut written: HashMap<Uuid, Vec<WrittenStack>> = HashMap::new();
    for row in &rows {
        match row.try_get::<Option<i32>, _>("n")? {
            Some(n) => {
                let Some(n) = usize::try_from(n).ok().filter(|n| *n < batch.len()) else { continue };
                match row.try_get::<Option<i64>, _>("after")? {
                    Some(balance_after) => after[n] = Some(balance_after),
                    None => snapshot[n].push(held_from_row(row)?),
                }
            }
            None => written.entry(row.try_get("user_id")?).or_default().push(WrittenStack {
                collection_id: row.try_get("collection_id")?,
                held: held_from_row(row)?,
                live: row.try_get("live")?,
            }),
        }
    }
    let outcomes = after.into_iter().zip(snapshot).zip(batch).map(|((after, snapshot), pending)| {
        let Some(balance_after) = after else { return Commit::Stale };
        let p = &pending.batched.purchase;
        let collection = p.collection.as_deref().map(|collection_id| {
            let written = written.get(&p.user_id).into_iter().flatten();
            let mut state = state_after(snapshot, written.filter(|stack| stack.collection_id == collection_id));
            // Its balances, in the default collection: the one it paid with as it left it.
            if collection_id == DEFAULT_STACK {
                state.push(Held::Balance { currency_code: p.currency_code.clone(), balance: balance_after });
            }
            state
        });
        Commit::Done { collection }
    });
    Ok(outcomes.collect())
}

/// A stack the statement wrote, as it left it.
struct WrittenStack {
    collection_id: String,
    held: Held,
    /// Not used up nor expired: part of its collection.
    live: bool,
}

/// A collection after a purchase: what the statement's snapshot held of
/// it (read before its writes), with the stacks it wrote as written.
fn state_after<'a>(mut snapshot: Vec<Held>, written: impl Iterator<Item = &'a WrittenStack>) -> Vec<Held> {
    for stack in written {
        snapshot.retain(|held| !held.same_holding(&stack.held));
        if stack.live {
            snapshot.push(stack.held.clone());
        }
    }
    snapshot
}

/// A batch as the column arrays the statement unnests: one row per
/// purchase, numbered `n`, and one per grant, carrying its purchase's `n`.
#[derive(Default)]
struct BatchColumns<'a> {
    n: Vec<i32>,
    tenant_id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    code: Vec<&'a str>,
    delta: Vec<i64>,
    before: Vec<i64>,
    ledger_id: Vec<Uuid>,
    reason: Vec<&'static str>,
    reference: Vec<Option<&'a str>>,
    module_sha256: Vec<Option<&'a str>>,
    idempotency_key: Vec<Option<&'a str>>,
    request_hash: Vec<Option<&'a [u8]>>,
    response_status: Vec<Option<i16>>,
    response_body: Vec<Option<&'a Value>>,
    purchase_id: Vec<Uuid>,
    item_id: Vec<Uuid>,
    store_id: Vec<Option<Uuid>>,
    quantity: Vec<i64>,
    currency_code: Vec<&'a str>,
    unit_price: Vec<i64>,
    total: Vec<i64>,
    grant_n: Vec<i32>,
    grant_item_id: Vec<Uuid>,
    grant_quantity: Vec<i64>,
    grant_via: Vec<&'a str>,
    grant_duration: Vec<Option<i64>>,
    grant_collection: Vec<&'a str>,
    grant_stack: Vec<&'a str>,
    grant_display: Vec<Option<&'a Value>>,
    grant_bundle: Vec<Option<Uuid>>,
    collection: Vec<Option<&'a str>>,
}

impl<'a> BatchColumns<'a> {
    fn new(batch: &'a [Pending]) -> Self {
        let mut columns = Self::default();
        for (n, pending) in (0..).zip(batch) {
            let b = &pending.batched.purchase;
            let p = &b.record;
            let idempotency = IdempotencyColumns::new(p, &b.response);
            columns.n.push(n);
            columns.tenant_id.push(pending.batched.tenant_id);
            columns.user_id.push(b.user_id);
            columns.code.push(&b.currency_code);
            columns.delta.push(b.delta);
            columns.before.push(b.before);
            columns.ledger_id.push(Uuid::now_v7());
            columns.reason.push(b.reason.as_str());
            columns.reference.push(b.reference.as_deref());
            columns.module_sha256.push(b.module_sha256.as_deref());
            columns.idempotency_key.push(p.idempotency_key.as_deref());
            columns.request_hash.push(idempotency.request_hash);
            columns.response_status.push(idempotency.status);
            columns.response_body.push(idempotency.body);
            columns.purchase_id.push(p.id);
            columns.item_id.push(p.item_id);
            columns.store_id.push(p.store_id);
            columns.quantity.push(p.quantity);
            columns.currency_code.push(&p.currency_code);
            columns.unit_price.push(p.unit_price);
            columns.total.push(p.total);
            columns.collection.push(b.collection.as_deref());
            for grant in &b.grants {
                columns.grant_n.push(n);
                columns.grant_item_id.push(grant.item_id);
                columns.grant_quantity.push(grant.quantity);
                columns.grant_via.push(&grant.acquired_via);
                columns.grant_duration.push(grant.duration_seconds);
                columns.grant_collection.push(&grant.stack.collection_id);
                columns.grant_stack.push(&grant.stack.stack_id);
                columns.grant_display.push(grant.display_properties.as_ref());
                columns.grant_bundle.push(grant.bundle_purchase_id);
            }
        }
        columns
    }
}
