//! The PostgreSQL backend. Statements are static (so sqlx prepares and
//! caches them per connection) and coarse: a balance change is one
//! statement that locks, checks, updates and appends the ledger entry.

use super::*;
use batch::Committers;
use error::is_unique_violation;
use optimistic::{OptimisticTx, SeenBalances};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Migrations shipped with the host, run on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Pool and session settings for a PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// `lock_timeout` and `statement_timeout` for every statement: a request
    /// never waits on a lock or a query longer than this.
    pub statement_timeout: Duration,
}

#[derive(Clone)]
pub struct PgStorage {
    pool: PgPool,
    committers: Arc<Committers>,
    seen: Arc<SeenBalances>,
}

impl PgStorage {
    /// Connects (lazily: the pool fills on demand) and runs the migrations.
    pub async fn connect(settings: &PgSettings) -> StorageResult<Self> {
        let timeout_ms = settings.statement_timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(&settings.url)?.application_name("economy-host").options([
            ("lock_timeout", timeout_ms.as_str()),
            ("statement_timeout", timeout_ms.as_str()),
            // A connection left inside a transaction by a lost client is reclaimed.
            ("idle_in_transaction_session_timeout", "60000"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // Every checkout would cost a round trip; a broken connection
            // fails its statement instead and is dropped.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let seen = Arc::default();
        let committers = Arc::new(Committers::start(&pool, &seen, committers(settings.max_connections)));
        Ok(Self { pool, committers, seen })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates a user with its initial and regenerating balances (each
    /// credit with its ledger entry) and, for a custom-id login, its link. `None`, with nothing
    /// written, if the identity or the custom id was taken meanwhile.
    async fn create_user(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        identity: &str,
        custom_id_hash: Option<&[u8; 32]>,
    ) -> StorageResult<Option<User>> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, tenant_id, identity) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, identity) DO NOTHING RETURNING id",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(identity)
        .fetch_optional(&mut *tx)
        .await?;
        let linked = match custom_id_hash {
            Some(hash) if inserted.is_some() => sqlx::query(
                "INSERT INTO custom_ids (tenant_id, custom_id_hash, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(tenant_id)
            .bind(hash.as_slice())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some(),
            _ => true,
        };
        if inserted.is_none() || !linked {
            tx.rollback().await?;
            return Ok(None);
        }
        let user = User { id, tenant_id, identity: identity.to_owned() };
        // Regenerating balances open too, so their clocks start with the user.
        let opened: Vec<(String, i64)> = sqlx::query_as(
            "SELECT code, initial_balance FROM currencies c
             WHERE tenant_id = $1 AND (initial_balance > 0 OR recharge_amount IS NOT NULL)",
        )
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await?;
        for (code, _) in &opened {
            open_balance(&mut tx, tenant_id, user.id, code).await?;
        }
        tx.commit().await?;
        for (code, balance) in &opened {
            self.seen.set(user.id, code, *balance);
        }
        Ok(Some(user))
    }

    /// The user of rows `(id, identity, currency_code, balance)`, if any;
    /// remembers its balances: a player found is usually about to play, and
    /// they are what its first optimistic purchase starts from.
    fn found_user(&self, tenant_id: Uuid, rows: &[PgRow]) -> StorageResult<Option<User>> {
        let Some(first) = rows.first() else { return Ok(None) };
        let user = User { id: first.try_get("id")?, tenant_id, identity: first.try_get("identity")? };
        for row in rows {
            if let Some(code) = row.try_get::<Option<String>, _>("currency_code")? {
                self.seen.set(user.id, &code, row.try_get("balance")?);
            }
        }
        Ok(Some(user))
    }

    /// Commits what is queued, then closes the pool once every connection
    /// is back.
    pub async fn close(&self) {
        self.committers.close().await;
        self.pool.close().await;
    }
}

/// How many committers write optimistic purchases in batches, each on a
/// connection of its own beside the pool: an eighth of the pool's size, at
/// least two, so one slow batch never holds up all of them. Fewer
/// committers make bigger batches: two commit over 10,000 purchases a
/// second on a two-core machine.
fn committers(pool_size: u32) -> usize {
    (pool_size as usize / 8).max(2)
}

/// Turns a unique violation into [`StorageError::Conflict`].
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |error| if is_unique_violation(&error) { StorageError::Conflict(what) } else { error.into() }
}

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
             ), settled AS (
                UPDATE balances b SET
                  balance = LEAST(GREATEST(d.max, d.balance), d.balance + d.periods * d.amount),
                  recharged_at = CASE WHEN d.balance + d.periods * d.amount >= d.max THEN NULL
                                      ELSE d.start + make_interval(secs => (d.periods * d.period)::double precision) END,
                  updated_at = $4
                FROM counted d
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

fn currency_from_row(row: &PgRow) -> Result<Currency, sqlx::Error> {
    let recharge = match (
        row.try_get::<Option<i64>, _>("recharge_amount")?,
        row.try_get::<Option<i64>, _>("recharge_period_seconds")?,
        row.try_get::<Option<i64>, _>("recharge_max")?,
    ) {
        (Some(amount), Some(period_seconds), Some(max)) => Some(Recharge { amount, period_seconds, max }),
        _ => None,
    };
    Ok(Currency {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        initial_balance: row.try_get("initial_balance")?,
        max_balance: row.try_get("max_balance")?,
        recharge,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn item_from_row(row: &PgRow) -> Result<CatalogItem, sqlx::Error> {
    Ok(CatalogItem {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        icon_url: row.try_get("icon_url")?,
        item_type: ItemType::parse(row.try_get("item_type")?),
        category: row.try_get("category")?,
        display_properties: row.try_get("display_properties")?,
        prices: row.try_get::<Json<Vec<Price>>, _>("prices")?.0,
        contents: row.try_get::<Json<Vec<Content>>, _>("contents")?.0,
        duration_seconds: row.try_get("duration_seconds")?,
        store_only: row.try_get("store_only")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn store_from_row(row: &PgRow) -> Result<Store, sqlx::Error> {
    Ok(Store {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        listings: row.try_get::<Json<Vec<Listing>>, _>("listings")?.0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn module_from_row(row: &PgRow) -> Result<ModuleInfo, sqlx::Error> {
    Ok(ModuleInfo {
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        created_at: row.try_get("created_at")?,
    })
}

fn stack_from_row(row: &PgRow) -> Result<Stack, sqlx::Error> {
    Ok(Stack {
        catalog_item_id: row.try_get("item_id")?,
        collection_id: row.try_get("collection_id")?,
        stack_id: row.try_get("stack_id")?,
        quantity: row.try_get("quantity")?,
        acquired_via: row.try_get("acquired_via")?,
        acquired_at: row.try_get("acquired_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// A CTE head that moves the config version of tenant `$n`, so every
/// host's in-memory catalog of it is replaced.
macro_rules! bump_catalog {
    ($tenant:literal) => {
        concat!("WITH bump AS (UPDATE tenants SET config_version = config_version + 1 WHERE id = ", $tenant, ") ")
    };
}

/// The catalog item columns every item query selects.
macro_rules! item_columns {
    () => {
        "i.id, i.key, i.name, i.icon_url, i.item_type, i.category, i.display_properties, i.prices, i.contents, i.duration_seconds, i.store_only, i.created_at, i.updated_at"
    };
}

#[async_trait]
impl Storage for PgStorage {
    async fn ping(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_tenant(&self, slug: &str, name: &str, keys: &[(KeyKind, [u8; 32])]) -> StorageResult<Tenant> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3) RETURNING id, slug, name, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(slug)
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict("tenant slug"))?;
        let tenant = Tenant {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        };
        for (kind, hash) in keys {
            sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, kind) VALUES ($1, $2, $3)")
                .bind(hash.as_slice())
                .bind(tenant.id)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(tenant)
    }

    async fn find_api_key(&self, key_hash: &[u8; 32]) -> StorageResult<Option<ApiKeyRecord>> {
        let row = sqlx::query("SELECT tenant_id, kind FROM api_keys WHERE key_hash = $1")
            .bind(key_hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => {
                KeyKind::parse(row.try_get("kind")?).map(|kind| ApiKeyRecord { tenant_id: row.get("tenant_id"), kind })
            }
            None => None,
        })
    }

    async fn put_currency(&self, tenant_id: Uuid, c: &NewCurrency) -> StorageResult<Currency> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let old: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT recharge_amount, recharge_period_seconds, recharge_max FROM currencies
             WHERE tenant_id = $1 AND code = $2 FOR UPDATE",
        )
        .bind(tenant_id)
        .bind(&c.code)
        .fetch_optional(&mut *tx)
        .await?;
        let recharge = c.recharge.as_ref();
        let new = (recharge.map(|r| r.amount), recharge.map(|r| r.period_seconds), recharge.map(|r| r.max));
        if let Some(old @ (Some(_), Some(_), Some(old_max))) = old
            && old != new
        {
            // What accrued under the old recharge is paid under it, up to now.
            let below_max: Vec<Uuid> = sqlx::query_scalar(
                "SELECT b.user_id FROM balances b JOIN users u ON u.id = b.user_id
                 WHERE u.tenant_id = $1 AND b.currency_code = $2 AND b.balance < $3",
            )
            .bind(tenant_id)
            .bind(&c.code)
            .bind(old_max)
            .fetch_all(&mut *tx)
            .await?;
            let ledger_ids: Vec<Uuid> = below_max.iter().map(|_| Uuid::now_v7()).collect();
            sqlx::query(settle_statement!(
                "balances b JOIN unnest($2::uuid[], $5::uuid[]) AS t(user_id, ledger_id) ON t.user_id = b.user_id",
                "true",
                "t.ledger_id"
            ))
            .bind(tenant_id)
            .bind(&below_max)
            .bind(&c.code)
            .bind(now)
            .bind(&ledger_ids)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(concat!(bump_catalog!("$1"), "INSERT INTO currencies AS c (tenant_id, code, name, initial_balance, max_balance, recharge_amount, recharge_period_seconds, recharge_max, recharge_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, code) DO UPDATE SET name = excluded.name, initial_balance = excluded.initial_balance,
               max_balance = excluded.max_balance, recharge_amount = excluded.recharge_amount,
               recharge_period_seconds = excluded.recharge_period_seconds, recharge_max = excluded.recharge_max,
               recharge_since = CASE
                 WHEN (c.recharge_amount, c.recharge_period_seconds, c.recharge_max)
                      IS DISTINCT FROM (excluded.recharge_amount, excluded.recharge_period_seconds, excluded.recharge_max)
                 THEN excluded.recharge_since ELSE c.recharge_since END,
               updated_at = $9
             RETURNING ", currency_columns!()))
        .bind(tenant_id)
        .bind(&c.code)
        .bind(&c.name)
        .bind(c.initial_balance)
        .bind(c.max_balance)
        .bind(new.0)
        .bind(new.1)
        .bind(new.2)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(currency_from_row(&row)?)
    }

    async fn currencies(&self, tenant_id: Uuid) -> StorageResult<Vec<Currency>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            currency_columns!(),
            " FROM currencies c WHERE tenant_id = $1 ORDER BY code"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(currency_from_row).collect::<Result<_, _>>()?)
    }

    async fn put_item(
        &self,
        tenant_id: Uuid,
        item: &NewItem,
        check: &CatalogCheck<'_>,
    ) -> StorageResult<Result<CatalogItem, String>> {
        let mut tx = self.pool.begin().await?;
        // The tenant's catalog writes take turns, so each is checked against
        // the catalog as it is when written.
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE").bind(tenant_id).execute(&mut *tx).await?;
        let rows =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items i WHERE tenant_id = $1 ORDER BY key"))
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await?;
        let items = rows.iter().map(item_from_row).collect::<Result<Vec<_>, _>>()?;
        if let Err(reason) = check(&items) {
            tx.rollback().await?;
            return Ok(Err(reason));
        }
        let row = sqlx::query(concat!(bump_catalog!("$2"), "INSERT INTO catalog_items AS i (id, tenant_id, key, name, icon_url, item_type, category, display_properties, prices, contents, duration_seconds, store_only)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, icon_url = excluded.icon_url,
               item_type = excluded.item_type, category = excluded.category, display_properties = excluded.display_properties,
               prices = excluded.prices, contents = excluded.contents, duration_seconds = excluded.duration_seconds,
               store_only = excluded.store_only, updated_at = now()
             RETURNING ", item_columns!()))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(&item.key)
        .bind(&item.name)
        .bind(&item.icon_url)
        .bind(item.item_type.as_str())
        .bind(&item.category)
        .bind(&item.display_properties)
        .bind(Json(&item.prices))
        .bind(Json(&item.contents))
        .bind(item.duration_seconds)
        .bind(item.store_only)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(item_from_row(&row)?))
    }

    async fn items(&self, tenant_id: Uuid) -> StorageResult<Vec<CatalogItem>> {
        let rows =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items i WHERE tenant_id = $1 ORDER BY key"))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(item_from_row).collect::<Result<_, _>>()?)
    }

    async fn item_by_key(&self, tenant_id: Uuid, key: &str) -> StorageResult<Option<CatalogItem>> {
        let row =
            sqlx::query(concat!("SELECT ", item_columns!(), " FROM catalog_items i WHERE tenant_id = $1 AND key = $2"))
                .bind(tenant_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(item_from_row).transpose()?)
    }

    async fn put_store(&self, tenant_id: Uuid, key: &str, name: &str, listings: &[Listing]) -> StorageResult<Store> {
        let row = sqlx::query(concat!(
            bump_catalog!("$2"),
            "INSERT INTO stores AS s (id, tenant_id, key, name, listings) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, listings = excluded.listings, updated_at = now()
             RETURNING id, key, name, listings, created_at, updated_at"
        ))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(key)
        .bind(name)
        .bind(Json(listings))
        .fetch_one(&self.pool)
        .await?;
        Ok(store_from_row(&row)?)
    }

    async fn store_by_key(&self, tenant_id: Uuid, key: &str) -> StorageResult<Option<Store>> {
        let row = sqlx::query(
            "SELECT id, key, name, listings, created_at, updated_at FROM stores WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(store_from_row).transpose()?)
    }

    async fn stores(&self, tenant_id: Uuid) -> StorageResult<Vec<Store>> {
        let rows = sqlx::query(
            "SELECT id, key, name, listings, created_at, updated_at FROM stores WHERE tenant_id = $1 ORDER BY key",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(store_from_row).collect::<Result<_, _>>()?)
    }

    async fn find_or_create_user(&self, tenant_id: Uuid, identity: &str) -> StorageResult<User> {
        if let Some(user) = self.find_user(tenant_id, identity).await? {
            return Ok(user);
        }
        match self.create_user(tenant_id, Uuid::now_v7(), identity, None).await? {
            Some(user) => Ok(user),
            // A concurrent request created the user first.
            None => self
                .find_user(tenant_id, identity)
                .await?
                .ok_or_else(|| StorageError::Backend("a user vanished while it was created".into())),
        }
    }

    async fn find_user(&self, tenant_id: Uuid, identity: &str) -> StorageResult<Option<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.identity, b.currency_code, b.balance FROM users u LEFT JOIN balances b ON b.user_id = u.id
             WHERE u.tenant_id = $1 AND u.identity = $2",
        )
        .bind(tenant_id)
        .bind(identity)
        .fetch_all(&self.pool)
        .await?;
        self.found_user(tenant_id, &rows)
    }

    async fn custom_id_user(&self, tenant_id: Uuid, custom_id_hash: &[u8; 32]) -> StorageResult<User> {
        let find = || async {
            let rows = sqlx::query(
                "SELECT u.id, u.identity, b.currency_code, b.balance
                 FROM custom_ids c JOIN users u ON u.id = c.user_id LEFT JOIN balances b ON b.user_id = u.id
                 WHERE c.tenant_id = $1 AND c.custom_id_hash = $2",
            )
            .bind(tenant_id)
            .bind(custom_id_hash.as_slice())
            .fetch_all(&self.pool)
            .await?;
            self.found_user(tenant_id, &rows)
        };
        if let Some(user) = find().await? {
            return Ok(user);
        }
        let id = Uuid::now_v7();
        match self.create_user(tenant_id, id, &id.to_string(), Some(custom_id_hash)).await? {
            Some(user) => Ok(user),
            // A concurrent first login with the same custom id won.
            None => find().await?.ok_or_else(|| StorageError::Backend("a user vanished while it was created".into())),
        }
    }

    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool> {
        let linked: Uuid = sqlx::query_scalar(
            "WITH linked AS (
                INSERT INTO custom_ids (tenant_id, custom_id_hash, user_id) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING RETURNING user_id
             )
             SELECT user_id FROM linked
             UNION ALL SELECT user_id FROM custom_ids WHERE tenant_id = $1 AND custom_id_hash = $2
             LIMIT 1",
        )
        .bind(user.tenant_id)
        .bind(custom_id_hash.as_slice())
        .bind(user.id)
        .fetch_one(&self.pool)
        .await?;
        Ok(linked == user.id)
    }

    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()> {
        sqlx::query("INSERT INTO sessions (token_hash, tenant_id, user_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash.as_slice())
            .bind(user.tenant_id)
            .bind(user.id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT u.id, u.tenant_id, u.identity, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user =
            User { id: row.try_get("id")?, tenant_id: row.try_get("tenant_id")?, identity: row.try_get("identity")? };
        Ok(Some(Session { user, expires_at: row.try_get("expires_at")? }))
    }

    async fn wallet(&self, user: &User, recharging: &[String]) -> StorageResult<Vec<WalletEntry>> {
        if !recharging.is_empty() {
            let scope = TxScope {
                tenant_id: user.tenant_id,
                user_id: user.id,
                module_sha256: None,
                recharging: recharging.into(),
            };
            let mut tx = self.begin_pg(scope).await?;
            for code in recharging {
                tx.settle(code).await?;
            }
            tx.tx.commit().await?;
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            currency_columns!(),
            ", COALESCE(b.balance, c.initial_balance) AS balance,
                CASE WHEN COALESCE(b.balance, c.initial_balance) < c.recharge_max
                     THEN GREATEST(COALESCE(b.recharged_at, c.recharge_since), c.recharge_since)
                          + make_interval(secs => c.recharge_period_seconds::double precision)
                END AS next_recharge_at
             FROM currencies c LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
             WHERE c.tenant_id = $1 ORDER BY c.code"
        ))
        .bind(user.tenant_id)
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let currency = currency_from_row(row)?;
                Ok(WalletEntry {
                    currency_code: currency.code,
                    balance: row.try_get("balance")?,
                    recharge: currency.recharge,
                    next_recharge_at: row.try_get("next_recharge_at")?,
                })
            })
            .collect()
    }

    async fn inventory(&self, user: &User) -> StorageResult<Vec<InventoryEntry>> {
        let rows = sqlx::query(
            "SELECT s.item_id, s.collection_id, s.stack_id, s.quantity, s.acquired_via, s.acquired_at, s.expires_at,
                    i.key, i.name, i.icon_url, i.item_type, i.category
             FROM inventory s JOIN catalog_items i ON i.id = s.item_id AND i.tenant_id = $1
             WHERE s.user_id = $2 AND s.quantity > 0 AND (s.expires_at IS NULL OR s.expires_at > now())
             ORDER BY s.acquired_at, s.item_id",
        )
        .bind(user.tenant_id)
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let stack = stack_from_row(row)?;
                Ok(InventoryEntry {
                    app_user_id: user.id,
                    catalog_item_id: stack.catalog_item_id,
                    collection_id: stack.collection_id,
                    stack_id: stack.stack_id,
                    quantity: stack.quantity,
                    acquired_via: stack.acquired_via,
                    acquired_at: stack.acquired_at,
                    expires_at: stack.expires_at,
                    catalog_items: ItemSummary {
                        key: row.try_get("key")?,
                        name: row.try_get("name")?,
                        icon_url: row.try_get("icon_url")?,
                        item_type: ItemType::parse(row.try_get("item_type")?),
                        category: row.try_get("category")?,
                    },
                })
            })
            .collect()
    }

    async fn idempotency_record(
        &self,
        user_id: Uuid,
        kind: RecordKind,
        key: &str,
    ) -> StorageResult<Option<IdempotencyRecord>> {
        let statement = match kind {
            RecordKind::Purchase => {
                "SELECT request_hash, response_status, response_body FROM purchases WHERE user_id = $1 AND idempotency_key = $2"
            }
            RecordKind::Request => {
                "SELECT request_hash, 200::smallint AS response_status, response_body FROM idempotency_records
                 WHERE user_id = $1 AND key = $2"
            }
        };
        let row = sqlx::query(statement).bind(user_id).bind(key).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(IdempotencyRecord {
            request_hash: row.try_get("request_hash")?,
            response: StoredResponse {
                status: row
                    .try_get::<i16, _>("response_status")
                    .ok()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(200),
                body: row.try_get("response_body")?,
            },
        }))
    }

    async fn ledger(&self, user: &User, query: &LedgerQuery) -> StorageResult<Vec<LedgerEntry>> {
        let rows = sqlx::query(
            "SELECT id, currency_code, delta, balance_after, reason, reference, created_at FROM ledger
             WHERE user_id = $1 AND ($2::text IS NULL OR currency_code = $2) AND ($3::uuid IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(user.id)
        .bind(&query.currency_code)
        .bind(query.cursor)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LedgerEntry {
                    id: row.try_get("id")?,
                    currency_code: row.try_get("currency_code")?,
                    delta: row.try_get("delta")?,
                    balance_after: row.try_get("balance_after")?,
                    reason: row.try_get("reason")?,
                    reference: row.try_get("reference")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn put_module(&self, tenant_id: Uuid, sha256: &str, bytes: &[u8]) -> StorageResult<ModuleInfo> {
        let row = sqlx::query(
            "WITH stored AS (
                INSERT INTO modules (tenant_id, sha256, bytes, size) VALUES ($1, $2, $3, $4)
                ON CONFLICT DO NOTHING RETURNING sha256, size, created_at
             )
             SELECT sha256, size, created_at FROM stored
             UNION ALL SELECT sha256, size, created_at FROM modules WHERE tenant_id = $1 AND sha256 = $2
             LIMIT 1",
        )
        .bind(tenant_id)
        .bind(sha256)
        .bind(bytes)
        .bind(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
        .fetch_one(&self.pool)
        .await?;
        Ok(module_from_row(&row)?)
    }

    async fn modules(&self, tenant_id: Uuid) -> StorageResult<Vec<ModuleInfo>> {
        let rows = sqlx::query(
            "SELECT sha256, size, created_at FROM modules WHERE tenant_id = $1 ORDER BY created_at, sha256",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(module_from_row).collect::<Result<_, _>>()?)
    }

    async fn module_info(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<ModuleInfo>> {
        let row = sqlx::query("SELECT sha256, size, created_at FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(module_from_row).transpose()?)
    }

    async fn module_bytes(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<Vec<u8>>> {
        let bytes = sqlx::query_scalar("SELECT bytes FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(bytes)
    }

    async fn set_active_module(&self, tenant_id: Uuid, sha256: Option<&str>) -> StorageResult<bool> {
        let updated = sqlx::query(
            "UPDATE tenants SET active_module_sha256 = $2, config_version = config_version + 1
             WHERE id = $1 AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM modules WHERE tenant_id = $1 AND sha256 = $2))",
        )
        .bind(tenant_id)
        .bind(sha256)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn tenant_rules(&self, tenant_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, TenantRules)>> {
        let rows = sqlx::query(
            "SELECT id, active_module_sha256, module_fuel, module_deadline_ms, module_memory_bytes, module_max_import_calls,
                    config_version, custom_id_login
             FROM tenants WHERE id = ANY($1)",
        )
        .bind(tenant_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let rules = TenantRules {
                    active_sha256: row.try_get("active_module_sha256")?,
                    limits: LimitOverrides {
                        fuel: row.try_get("module_fuel")?,
                        deadline_ms: row.try_get("module_deadline_ms")?,
                        memory_bytes: row.try_get("module_memory_bytes")?,
                        max_import_calls: row.try_get("module_max_import_calls")?,
                    },
                    settings: TenantSettings { custom_id_login: row.try_get("custom_id_login")? },
                    config_version: row.try_get("config_version")?,
                };
                Ok((row.try_get("id")?, rules))
            })
            .collect()
    }

    async fn set_settings(&self, tenant_id: Uuid, settings: &TenantSettings) -> StorageResult<()> {
        sqlx::query("UPDATE tenants SET custom_id_login = $2, config_version = config_version + 1 WHERE id = $1")
            .bind(tenant_id)
            .bind(settings.custom_id_login)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_limits(&self, tenant_id: Uuid, limits: &LimitOverrides) -> StorageResult<bool> {
        let updated = sqlx::query(
            "UPDATE tenants SET module_fuel = $2, module_deadline_ms = $3, module_memory_bytes = $4, module_max_import_calls = $5,
               config_version = config_version + 1
             WHERE id = $1",
        )
        .bind(tenant_id)
        .bind(limits.fuel)
        .bind(limits.deadline_ms)
        .bind(limits.memory_bytes)
        .bind(limits.max_import_calls)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn artifact(&self, sha256: &str, engine_hash: &str) -> StorageResult<Option<Vec<u8>>> {
        let artifact =
            sqlx::query_scalar("SELECT artifact FROM module_artifacts WHERE sha256 = $1 AND engine_hash = $2")
                .bind(sha256)
                .bind(engine_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(artifact)
    }

    async fn put_artifact(&self, sha256: &str, engine_hash: &str, artifact: &[u8]) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO module_artifacts (sha256, engine_hash, artifact) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(sha256)
        .bind(engine_hash)
        .bind(artifact)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn begin(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>> {
        Ok(Box::new(self.begin_pg(scope).await?))
    }

    async fn begin_optimistic(&self, scope: TxScope) -> StorageResult<Box<dyn Tx>> {
        Ok(Box::new(OptimisticTx::new(self, scope)))
    }
}

/// Creates the user's balance row for `code` at the currency's initial
/// balance, with its ledger entry. Does nothing if the row exists or the
/// currency does not.
async fn open_balance(
    tx: &mut Transaction<'static, Postgres>,
    tenant_id: Uuid,
    user_id: Uuid,
    code: &str,
) -> Result<(), sqlx::Error> {
    // A regenerating balance opened below its max accrues from when the
    // user, or the currency's recharge, came to be, whichever is later.
    sqlx::query(
        "WITH opened AS (
            INSERT INTO balances (user_id, currency_code, balance, recharged_at)
            SELECT $2, c.code, c.initial_balance,
                   CASE WHEN c.initial_balance < c.recharge_max THEN GREATEST(c.recharge_since, u.created_at) END
            FROM currencies c JOIN users u ON u.id = $2
            WHERE c.tenant_id = $1 AND c.code = $3
            ON CONFLICT DO NOTHING
            RETURNING balance
         )
         INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference)
         SELECT $2, $4, $3, balance, balance, 'grant', 'initial_balance' FROM opened WHERE balance > 0",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(code)
    .bind(Uuid::now_v7())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How a grant lands on an existing stack: an expired or emptied stack
/// starts over; otherwise quantities add up and a timed stack keeps the
/// later expiry (an untimed grant makes it untimed).
macro_rules! stack_upsert {
    () => {
        "ON CONFLICT (user_id, item_id, collection_id, stack_id) DO UPDATE SET
           quantity = CASE WHEN s.expires_at <= now() OR s.quantity = 0 THEN excluded.quantity ELSE s.quantity + excluded.quantity END,
           acquired_at = CASE WHEN s.expires_at <= now() OR s.quantity = 0 THEN now() ELSE s.acquired_at END,
           expires_at = CASE
             WHEN s.expires_at <= now() OR s.quantity = 0 THEN excluded.expires_at
             WHEN s.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
             ELSE greatest(s.expires_at, excluded.expires_at) END"
    };
}

/// Grants into the default stacks, as `$3..$6` arrays (item id, quantity,
/// acquired via, duration seconds) for tenant `$1` and user `$2`, without
/// its RETURNING clause. Items not in the tenant's catalog are left out.
macro_rules! grant_statement {
    () => {
        concat!(
            "INSERT INTO inventory AS s (user_id, item_id, quantity, acquired_via, expires_at)
             SELECT $2, g.item_id, g.quantity, g.via, now() + make_interval(secs => g.duration)
             FROM unnest($3::uuid[], $4::bigint[], $5::text[], $6::bigint[]) AS g(item_id, quantity, via, duration)
             JOIN catalog_items i ON i.tenant_id = $1 AND i.id = g.item_id ",
            stack_upsert!()
        )
    };
}

/// Grants as the column arrays `grant_statement!` binds.
struct GrantColumns<'a> {
    ids: Vec<Uuid>,
    quantities: Vec<i64>,
    vias: Vec<&'a str>,
    durations: Vec<Option<i64>>,
}

impl<'a> GrantColumns<'a> {
    fn new(grants: &'a [NewGrant]) -> Self {
        Self {
            ids: grants.iter().map(|g| g.item_id).collect(),
            quantities: grants.iter().map(|g| g.quantity).collect(),
            vias: grants.iter().map(|g| g.acquired_via.as_str()).collect(),
            durations: grants.iter().map(|g| g.duration_seconds).collect(),
        }
    }
}

/// A purchase row's idempotency columns: set with a key, NULL without one.
struct IdempotencyColumns<'a> {
    request_hash: Option<&'a [u8]>,
    status: Option<i16>,
    body: Option<&'a Value>,
}

impl<'a> IdempotencyColumns<'a> {
    fn new(purchase: &'a PurchaseRecord, response: &'a StoredResponse) -> Self {
        let keyed = purchase.idempotency_key.is_some();
        Self {
            request_hash: keyed.then_some(purchase.request_hash.as_slice()),
            status: keyed.then(|| i16::try_from(response.status).unwrap_or(200)),
            body: keyed.then_some(&response.body),
        }
    }
}

/// How often a balance change retries after its row appeared or changed
/// between the fast path and the check of why it did not apply.
const BALANCE_ATTEMPTS: usize = 3;

struct PgTx {
    tx: Transaction<'static, Postgres>,
    scope: TxScope,
    seen: Arc<SeenBalances>,
    /// Balances this transaction left, remembered once it commits.
    balances_after: Vec<(String, i64)>,
}

impl PgStorage {
    async fn begin_pg(&self, scope: TxScope) -> StorageResult<PgTx> {
        let tx = self.pool.begin().await?;
        Ok(PgTx { tx, scope, seen: self.seen.clone(), balances_after: Vec::new() })
    }
}

impl PgTx {
    /// Settles the user's balance of `code` if the currency regenerates,
    /// opening it first if the user never held it. The only place that
    /// settles one user: every read and change of a balance calls it.
    async fn settle(&mut self, code: &str) -> StorageResult<()> {
        if !self.scope.recharging.iter().any(|recharging| recharging == code) {
            return Ok(());
        }
        for _ in 0..2 {
            let found: i64 = sqlx::query_scalar(settle_statement!("balances b", "b.user_id = $2", "$5::uuid"))
                .bind(self.scope.tenant_id)
                .bind(self.scope.user_id)
                .bind(code)
                .bind(Utc::now())
                .bind(Uuid::now_v7())
                .fetch_one(&mut *self.tx)
                .await?;
            if found > 0 {
                return Ok(());
            }
            open_balance(&mut self.tx, self.scope.tenant_id, self.scope.user_id, code).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn balance(&mut self, code: &str) -> StorageResult<Option<i64>> {
        self.settle(code).await?;
        let balance = sqlx::query_scalar(
            "SELECT COALESCE(b.balance, c.initial_balance) FROM currencies c
             LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
             WHERE c.tenant_id = $1 AND c.code = $3",
        )
        .bind(self.scope.tenant_id)
        .bind(self.scope.user_id)
        .bind(code)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(balance)
    }

    async fn change_balance(
        &mut self,
        code: &str,
        delta: i64,
        reason: LedgerReason,
        reference: Option<&str>,
    ) -> StorageResult<Result<i64, WalletRefusal>> {
        self.settle(code).await?;
        let now = Utc::now();
        // Fast path: one statement locks the row, checks both bounds (the
        // WHERE clause is re-checked on the latest row version after a lock
        // wait), updates it and appends the ledger entry.
        for _ in 0..BALANCE_ATTEMPTS {
            let after: Option<i64> = sqlx::query_scalar(
                "WITH changed AS (
                    UPDATE balances b SET balance = b.balance + $3, updated_at = $9,
                      -- A regenerating balance's clock runs only below its max
                      -- (the balance was settled just before this).
                      recharged_at = CASE WHEN c.recharge_amount IS NULL OR b.balance + $3 >= c.recharge_max THEN NULL
                                          ELSE COALESCE(b.recharged_at, $9) END
                    FROM currencies c
                    WHERE b.user_id = $2 AND b.currency_code = $4 AND c.tenant_id = $1 AND c.code = $4
                      AND CASE WHEN $3 < 0 THEN b.balance >= -$3
                               ELSE b.balance <= 9223372036854775807 - $3 AND (c.max_balance IS NULL OR b.balance <= c.max_balance - $3) END
                    RETURNING b.balance
                 ), entry AS (
                    INSERT INTO ledger (user_id, id, currency_code, delta, balance_after, reason, reference, module_sha256)
                    SELECT $2, $5, $4, $3, balance, $6, $7, $8 FROM changed
                 )
                 SELECT balance FROM changed",
            )
            .bind(self.scope.tenant_id)
            .bind(self.scope.user_id)
            .bind(delta)
            .bind(code)
            .bind(Uuid::now_v7())
            .bind(reason.as_str())
            .bind(reference)
            .bind(&self.scope.module_sha256)
            .bind(now)
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(after) = after {
                self.balances_after.retain(|(changed, _)| changed != code);
                self.balances_after.push((code.to_owned(), after));
                return Ok(Ok(after));
            }
            // Slow path: find out why, opening the balance row on first use.
            let row = sqlx::query(
                "SELECT c.max_balance, b.balance FROM currencies c
                 LEFT JOIN balances b ON b.user_id = $2 AND b.currency_code = c.code
                 WHERE c.tenant_id = $1 AND c.code = $3",
            )
            .bind(self.scope.tenant_id)
            .bind(self.scope.user_id)
            .bind(code)
            .fetch_optional(&mut *self.tx)
            .await?;
            let Some(row) = row else {
                return Ok(Err(WalletRefusal::UnknownCurrency));
            };
            let max_balance: Option<i64> = row.try_get("max_balance")?;
            let Some(balance) = row.try_get::<Option<i64>, _>("balance")? else {
                open_balance(&mut self.tx, self.scope.tenant_id, self.scope.user_id, code).await?;
                continue;
            };
            let after = balance.checked_add(delta);
            if delta < 0 && after.is_none_or(|after| after < 0) {
                return Ok(Err(WalletRefusal::InsufficientBalance));
            }
            if delta > 0 && after.is_none_or(|after| max_balance.is_some_and(|max| after > max)) {
                return Ok(Err(WalletRefusal::MaxBalanceExceeded));
            }
            // Otherwise a concurrent change made room in between: try again.
        }
        Err(StorageError::Busy("the balance row kept changing".into()))
    }

    async fn quantity(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let quantity = sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0)::bigint FROM inventory
             WHERE user_id = $1 AND item_id = $2 AND (expires_at IS NULL OR expires_at > now())",
        )
        .bind(self.scope.user_id)
        .bind(item_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(quantity)
    }

    async fn grant_items(&mut self, grants: &[NewGrant]) -> StorageResult<Result<Vec<Stack>, InventoryRefusal>> {
        let columns = GrantColumns::new(grants);
        // Only items of this tenant's catalog are granted; a short count
        // means an unknown item, and the caller rolls the transaction back.
        let rows = sqlx::query(concat!(
            grant_statement!(),
            " RETURNING item_id, collection_id, stack_id, quantity, acquired_via, acquired_at, expires_at"
        ))
        .bind(self.scope.tenant_id)
        .bind(self.scope.user_id)
        .bind(&columns.ids)
        .bind(&columns.quantities)
        .bind(&columns.vias)
        .bind(&columns.durations)
        .fetch_all(&mut *self.tx)
        .await?;
        if rows.len() != grants.len() {
            return Ok(Err(InventoryRefusal::UnknownItem));
        }
        Ok(Ok(rows.iter().map(stack_from_row).collect::<Result<_, _>>()?))
    }

    async fn consume(&mut self, item_id: Uuid, quantity: i64) -> StorageResult<Result<i64, InventoryRefusal>> {
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE inventory SET quantity = quantity - $3
             WHERE user_id = $1 AND item_id = $2 AND collection_id = 'default' AND stack_id = 'default'
               AND quantity >= $3 AND (expires_at IS NULL OR expires_at > now())
             RETURNING quantity",
        )
        .bind(self.scope.user_id)
        .bind(item_id)
        .bind(quantity)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(left.ok_or(InventoryRefusal::InsufficientQuantity))
    }

    async fn item_purchases(&mut self, item_id: Uuid) -> StorageResult<i64> {
        let count = sqlx::query_scalar(
            "SELECT COALESCE(sum(quantity), 0)::bigint FROM purchases WHERE user_id = $1 AND item_id = $2",
        )
        .bind(self.scope.user_id)
        .bind(item_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(count)
    }

    async fn listing_purchases(&mut self, store_id: Uuid, item_id: Uuid) -> StorageResult<i64> {
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT purchased FROM listing_purchases WHERE user_id = $1 AND store_id = $2 AND item_id = $3",
        )
        .bind(self.scope.user_id)
        .bind(store_id)
        .bind(item_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(count.unwrap_or(0))
    }

    async fn claim_listing(
        &mut self,
        store_id: Uuid,
        item_id: Uuid,
        quantity: i64,
        cap: i64,
    ) -> StorageResult<Option<i64>> {
        if quantity > cap {
            return Ok(None);
        }
        // On conflict the WHERE clause is evaluated on the locked, latest
        // row, so concurrent claims never pass the cap together.
        let total = sqlx::query_scalar(
            "INSERT INTO listing_purchases AS l (user_id, store_id, item_id, purchased) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, store_id, item_id) DO UPDATE SET purchased = l.purchased + excluded.purchased
             WHERE l.purchased + excluded.purchased <= $5
             RETURNING purchased",
        )
        .bind(self.scope.user_id)
        .bind(store_id)
        .bind(item_id)
        .bind(quantity)
        .bind(cap)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(total)
    }

    async fn record_purchase(
        &mut self,
        p: &PurchaseRecord,
        grants: &[NewGrant],
        response: &StoredResponse,
    ) -> StorageResult<Recorded> {
        let grants = GrantColumns::new(grants);
        let idempotency = IdempotencyColumns::new(p, response);
        let row = sqlx::query(concat!(
            "WITH granted AS (",
            grant_statement!(),
            " RETURNING 1
             ), recorded AS (
                INSERT INTO purchases (user_id, id, item_id, store_id, quantity, currency_code, unit_price, total,
                                       idempotency_key, request_hash, response_status, response_body, module_sha256)
                VALUES ($2, $7, $8, $9, $10, $11, $12, $17, $13, $14, $15, $16, $18)
                ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING 1
             )
             SELECT (SELECT count(*) FROM granted) AS granted, (SELECT count(*) FROM recorded) AS recorded"
        ))
        .bind(self.scope.tenant_id)
        .bind(self.scope.user_id)
        .bind(&grants.ids)
        .bind(&grants.quantities)
        .bind(&grants.vias)
        .bind(&grants.durations)
        .bind(p.id)
        .bind(p.item_id)
        .bind(p.store_id)
        .bind(p.quantity)
        .bind(&p.currency_code)
        .bind(p.unit_price)
        .bind(&p.idempotency_key)
        .bind(idempotency.request_hash)
        .bind(idempotency.status)
        .bind(idempotency.body)
        .bind(p.total)
        .bind(&self.scope.module_sha256)
        .fetch_one(&mut *self.tx)
        .await?;
        let granted: i64 = row.try_get("granted")?;
        let recorded: i64 = row.try_get("recorded")?;
        Ok(if granted != grants.ids.len() as i64 {
            Recorded::UnknownItem
        } else if recorded == 0 {
            Recorded::KeyTaken
        } else {
            Recorded::Done
        })
    }

    async fn record_request(
        &mut self,
        key: &str,
        request_hash: &[u8],
        response: &StoredResponse,
    ) -> StorageResult<bool> {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_records (user_id, key, request_hash, response_body) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(self.scope.user_id)
        .bind(key)
        .bind(request_hash)
        .bind(&response.body)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(claimed.is_some())
    }

    async fn record_consume(&mut self, id: Uuid, item_id: Uuid, quantity: i64, remaining: i64) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO consumes (user_id, id, item_id, quantity, remaining, module_sha256) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.scope.user_id)
        .bind(id)
        .bind(item_id)
        .bind(quantity)
        .bind(remaining)
        .bind(self.scope.module_sha256.as_deref().unwrap_or(""))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StorageResult<()> {
        self.tx.commit().await?;
        for (code, balance) in &self.balances_after {
            self.seen.set(self.scope.user_id, code, *balance);
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> StorageResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

mod batch;
mod error;
mod optimistic;
