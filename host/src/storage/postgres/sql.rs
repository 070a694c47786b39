//! The statements several files share, as macros (so each use stays one
//! static string sqlx prepares once per connection), and the column lists
//! queries select.

/// Settles regenerating balances up to `$4` (the moment of the read or
/// write that asked): for tenant `$1`, currency `$3`, and the balances `b`
/// that `$from` and `$users` select (one user, or many), with ledger ids
/// `$ledger_id`. A balance
/// below its max gains `amount` for each whole period its clock ran (at
/// most up to the max); its clock advances by those periods, and stops
/// (NULL) at the max. A clock starts no earlier than the currency's
/// `recharge_since`. The statement's one row counts the balances found.
macro_rules! settle_statement {
    ($from:literal, $users:literal, $ledger_id:literal) => {
        concat!(
            "WITH due AS (
                SELECT b.user_id, ", $ledger_id, " AS ledger_id, b.balance, b.recharged_at,
                       c.recharge_amount AS amount, c.recharge_period_seconds AS period, c.recharge_max AS max,
                       GREATEST(COALESCE(b.recharged_at, c.recharge_since), c.recharge_since) AS start
                FROM ", $from, "
                JOIN currencies c ON c.tenant_id = $1 AND c.code = b.currency_code
                WHERE ", $users, " AND b.currency_code = $3 AND c.recharge_amount IS NOT NULL
                FOR UPDATE OF b
             ), counted AS (
                SELECT *, CASE WHEN balance >= max THEN 0
                          ELSE LEAST(GREATEST(floor(extract(epoch FROM $4::timestamptz - start) / period), 0)::bigint,
                                     (max - balance + amount - 1) / amount) END AS periods
                FROM due
             ), clocked AS (
                SELECT *, CASE WHEN balance + periods * amount >= max THEN NULL
                               ELSE start + make_interval(secs => (periods * period)::double precision) END AS clock
                FROM counted
             ), settled AS (
                UPDATE balances b SET
                  balance = LEAST(GREATEST(d.max, d.balance), d.balance + d.periods * d.amount),
                  recharged_at = d.clock,
                  updated_at = $4
                FROM clocked d
                WHERE b.user_id = d.user_id AND b.currency_code = $3
                  AND (d.periods > 0 OR d.recharged_at IS DISTINCT FROM
                       (CASE WHEN d.balance >= d.max THEN NULL ELSE d.start END))
                RETURNING b.user_id, d.ledger_id, b.balance, b.balance - d.balance AS delta
             ), entry AS (
                INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, created_at)
                SELECT user_id, ledger_id, $3, delta, balance, 'recharge', $4 FROM settled WHERE delta > 0
             )
             SELECT count(*) FROM due"
        )
    };
}

/// The currency columns every currency query selects.
macro_rules! currency_columns {
    () => {
        "c.code, c.name, c.initial_balance, c.max_balance, c.recharge_amount, c.recharge_period_seconds, c.recharge_max, c.created_at, c.updated_at"
    };
}

/// A CTE head that moves the catalog version of tenant `$n` and holds its
/// row lock to the end of the transaction (so the tenant's catalog writes
/// take turns): every host's in-memory catalog of it is replaced.
macro_rules! bump_catalog {
    ($tenant:literal) => {
        concat!(
            "WITH bump AS (INSERT INTO catalog_versions AS v (tenant_id, version) VALUES (",
            $tenant,
            ", 1) ON CONFLICT (tenant_id) DO UPDATE SET version = v.version + 1) "
        )
    };
}

/// The catalog item columns every item query selects.
macro_rules! item_columns {
    () => {
        "i.id, i.key, i.name, i.icon_url, i.item_type, i.category, i.display_properties, i.prices, i.contents, i.duration_seconds, i.store_only, i.created_at, i.updated_at"
    };
}

/// How a grant lands on an existing stack: an expired or emptied stack
/// starts over; otherwise quantities add up and a timed stack keeps the
/// later expiry (an untimed grant makes it untimed). The grant's own
/// `acquired_at` is "now": an upsert on a distributed table may call no
/// function that is not immutable.
macro_rules! stack_upsert {
    () => {
        "ON CONFLICT (user_id, item_id, collection_id, stack_id) DO UPDATE SET
           quantity = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0 THEN excluded.quantity ELSE s.quantity + excluded.quantity END,
           acquired_at = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0 THEN excluded.acquired_at ELSE s.acquired_at END,
           expires_at = CASE
             WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0 THEN excluded.expires_at
             WHEN s.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
             ELSE greatest(s.expires_at, excluded.expires_at) END,
           display_properties = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0
                                     THEN excluded.display_properties ELSE s.display_properties END,
           bundle_purchase_id = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0
                                     THEN excluded.bundle_purchase_id ELSE s.bundle_purchase_id END"
    };
}

/// Grants, as `$3..$10` arrays (item id, quantity, acquired via, duration
/// seconds, collection, stack, display properties, bundle purchase) for
/// tenant `$1` and user `$2`, at `$11`, without its RETURNING clause. If
/// any item is not in the tenant's catalog, none is granted.
macro_rules! grant_statement {
    () => {
        concat!(
            "INSERT INTO inventory AS s (user_id, item_id, quantity, acquired_via, acquired_at, expires_at,
                                         collection_id, stack_id, display_properties, bundle_purchase_id)
             SELECT $2, g.item_id, g.quantity, g.via, $11, $11 + make_interval(secs => g.duration),
                    g.collection_id, g.stack_id, g.display, g.bundle
             FROM unnest($3::uuid[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::jsonb[],
                         $10::uuid[])
               AS g(item_id, quantity, via, duration, collection_id, stack_id, display, bundle)
             JOIN catalog_items i ON i.tenant_id = $1 AND i.id = g.item_id
             WHERE (SELECT count(*) FROM catalog_items k WHERE k.tenant_id = $1 AND k.id = ANY($3))
                 = (SELECT count(DISTINCT id) FROM unnest($3::uuid[]) AS u(id)) ",
            stack_upsert!()
        )
    };
}
