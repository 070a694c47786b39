//! A tenant's players in PostgreSQL: identities, custom-id logins and
//! sessions, and the balances a new player opens with.

use super::super::*;
use super::{PgTenant, begin};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

impl PgTenant {
    /// Creates a user with its initial and regenerating balances (each
    /// credit with its ledger entry) and, for a custom-id login, its link. `None`, with nothing
    /// written, if the identity or the custom id was taken meanwhile.
    pub(super) async fn insert_user(
        &self,
        id: Uuid,
        identity: &str,
        custom_id_hash: Option<&[u8; 32]>,
    ) -> StorageResult<Option<User>> {
        let tenant_id = self.tenant_id;
        let mut tx = begin(&self.db.pool).await?;
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
        let opened: Vec<String> = sqlx::query_scalar(
            "SELECT code FROM currencies c
             WHERE tenant_id = $1 AND (initial_balance > 0 OR recharge_amount IS NOT NULL)",
        )
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await?;
        for code in &opened {
            open_balance(&mut tx, tenant_id, user.id, code).await?;
        }
        tx.commit().await?;
        Ok(Some(user))
    }

    /// The user of a row `(id, identity)`, if any.
    fn found_user(&self, row: Option<PgRow>) -> StorageResult<Option<User>> {
        let Some(row) = row else { return Ok(None) };
        Ok(Some(User { id: row.try_get("id")?, tenant_id: self.tenant_id, identity: row.try_get("identity")? }))
    }
}

#[async_trait]
impl PlayerStore for PgTenant {
    async fn create_user(&self, identity: &str) -> StorageResult<Option<User>> {
        self.insert_user(Uuid::now_v7(), identity, None).await
    }

    async fn find_user(&self, identity: &str) -> StorageResult<Option<User>> {
        let tenant_id = self.tenant_id;
        let row = sqlx::query("SELECT id, identity FROM users WHERE tenant_id = $1 AND identity = $2")
            .bind(tenant_id)
            .bind(identity)
            .fetch_optional(&self.db.pool)
            .await?;
        self.found_user(row)
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> StorageResult<Option<User>> {
        let row = sqlx::query("SELECT id, identity FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(self.tenant_id)
            .bind(user_id)
            .fetch_optional(&self.db.pool)
            .await?;
        self.found_user(row)
    }

    async fn find_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.identity FROM custom_ids c JOIN users u ON u.id = c.user_id
             WHERE c.tenant_id = $1 AND c.custom_id_hash = $2",
        )
        .bind(self.tenant_id)
        .bind(custom_id_hash.as_slice())
        .fetch_optional(&self.db.pool)
        .await?;
        self.found_user(row)
    }

    async fn create_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>> {
        let id = Uuid::now_v7();
        self.insert_user(id, &id.to_string(), Some(custom_id_hash)).await
    }

    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool> {
        own(self.tenant_id, user)?;
        let linked: Uuid = sqlx::query_scalar(
            "WITH linked AS (
                INSERT INTO custom_ids (tenant_id, custom_id_hash, user_id) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING RETURNING user_id
             )
             SELECT user_id FROM linked
             UNION ALL SELECT user_id FROM custom_ids WHERE tenant_id = $1 AND custom_id_hash = $2
             LIMIT 1",
        )
        .bind(self.tenant_id)
        .bind(custom_id_hash.as_slice())
        .bind(user.id)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(linked == user.id)
    }

    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()> {
        own(self.tenant_id, user)?;
        sqlx::query("INSERT INTO sessions (token_hash, tenant_id, user_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash.as_slice())
            .bind(self.tenant_id)
            .bind(user.id)
            .bind(expires_at)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// The session of a token, looked up only among this tenant's.
    async fn find_session(&self, token_hash: &[u8; 32]) -> StorageResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT u.id, u.tenant_id, u.identity, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id
             WHERE s.token_hash = $1 AND s.tenant_id = $2",
        )
        .bind(token_hash.as_slice())
        .bind(self.tenant_id)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user =
            User { id: row.try_get("id")?, tenant_id: row.try_get("tenant_id")?, identity: row.try_get("identity")? };
        Ok(Some(Session { user, expires_at: row.try_get("expires_at")? }))
    }

    async fn attributes(&self, user_id: Uuid) -> StorageResult<Attributes> {
        Ok(attributes(&self.db.pool, self.tenant_id, user_id).await?)
    }

    async fn set_attributes(&self, user: &User, attributes: &Attributes) -> StorageResult<()> {
        own(self.tenant_id, user)?;
        sqlx::query("UPDATE users SET attributes = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(self.tenant_id)
            .bind(user.id)
            .bind(Json(attributes))
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

/// The attributes of the tenant's player `user_id` (empty if none).
pub(super) async fn attributes<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<Attributes, sqlx::Error> {
    let found: Option<Json<Attributes>> =
        sqlx::query_scalar("SELECT attributes FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(executor)
            .await?;
    Ok(found.map(|Json(attributes)| attributes).unwrap_or_default())
}

/// Creates the user's balance row for `code` at the currency's initial
/// balance, with its ledger entry. Does nothing if the row exists or the
/// currency does not.
pub(super) async fn open_balance(
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
            FROM currencies c JOIN users u ON u.id = $2 AND u.tenant_id = $1
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
