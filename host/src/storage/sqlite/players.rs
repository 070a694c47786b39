//! A tenant's players in SQLite: identities, custom-id logins and sessions,
//! and the balances a new player opens with.

use super::super::*;
use super::error::is_unique_violation;
use super::rows::time;
use super::writes::{attributes, open_balance};
use super::{SqliteTenant, now};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;

impl SqliteTenant {
    /// Creates a user with its initial and regenerating balances and, for a
    /// custom-id login, its link. `None`, with nothing written, if the
    /// identity or the custom id was taken meanwhile.
    async fn insert_user(
        &self,
        id: Uuid,
        identity: &str,
        custom_id_hash: Option<&[u8; 32]>,
    ) -> StorageResult<Option<User>> {
        let tenant_id = self.tenant_id;
        let mut write = self.db.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, tenant_id, identity, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, identity) DO NOTHING RETURNING id",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(identity)
        .bind(now())
        .fetch_optional(write.connection())
        .await?;
        let linked = match custom_id_hash {
            Some(hash) if inserted.is_some() => sqlx::query(
                "INSERT INTO custom_ids (tenant_id, custom_id_hash, user_id, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(tenant_id)
            .bind(hash.as_slice())
            .bind(id)
            .bind(now())
            .fetch_optional(write.connection())
            .await?
            .is_some(),
            _ => true,
        };
        if inserted.is_none() || !linked {
            write.rollback().await?;
            return Ok(None);
        }
        // Regenerating balances open too, so their clocks start with the user.
        let opened: Vec<String> = sqlx::query_scalar(
            "SELECT code FROM currencies
             WHERE tenant_id = $1 AND (initial_balance > 0 OR recharge_amount IS NOT NULL)",
        )
        .bind(tenant_id)
        .fetch_all(write.connection())
        .await?;
        for code in &opened {
            open_balance(write.connection(), tenant_id, id, code).await?;
        }
        write.commit().await?;
        Ok(Some(User { id, tenant_id, identity: identity.to_owned() }))
    }

    /// The user of a row `(id, identity)`, if any.
    fn found_user(&self, row: Option<SqliteRow>) -> StorageResult<Option<User>> {
        let Some(row) = row else { return Ok(None) };
        Ok(Some(User { id: row.try_get("id")?, tenant_id: self.tenant_id, identity: row.try_get("identity")? }))
    }
}

#[async_trait]
impl PlayerStore for SqliteTenant {
    async fn create_user(&self, identity: &str) -> StorageResult<Option<User>> {
        self.insert_user(Uuid::now_v7(), identity, None).await
    }

    async fn find_user(&self, identity: &str) -> StorageResult<Option<User>> {
        let row = sqlx::query("SELECT id, identity FROM users WHERE tenant_id = $1 AND identity = $2")
            .bind(self.tenant_id)
            .bind(identity)
            .fetch_optional(&self.db.readers)
            .await?;
        self.found_user(row)
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> StorageResult<Option<User>> {
        let row = sqlx::query("SELECT id, identity FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(self.tenant_id)
            .bind(user_id)
            .fetch_optional(&self.db.readers)
            .await?;
        self.found_user(row)
    }

    async fn find_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.identity FROM custom_ids c JOIN users u ON u.id = c.user_id AND u.tenant_id = c.tenant_id
             WHERE c.tenant_id = $1 AND c.custom_id_hash = $2",
        )
        .bind(self.tenant_id)
        .bind(custom_id_hash.as_slice())
        .fetch_optional(&self.db.readers)
        .await?;
        self.found_user(row)
    }

    async fn create_custom_id_user(&self, custom_id_hash: &[u8; 32]) -> StorageResult<Option<User>> {
        let id = Uuid::now_v7();
        self.insert_user(id, &id.to_string(), Some(custom_id_hash)).await
    }

    async fn link_custom_id(&self, user: &User, custom_id_hash: &[u8; 32]) -> StorageResult<bool> {
        own(self.tenant_id, user)?;
        let mut write = self.db.write().await?;
        sqlx::query(
            "INSERT INTO custom_ids (tenant_id, custom_id_hash, user_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant_id)
        .bind(custom_id_hash.as_slice())
        .bind(user.id)
        .bind(now())
        .execute(write.connection())
        .await?;
        let linked: Uuid =
            sqlx::query_scalar("SELECT user_id FROM custom_ids WHERE tenant_id = $1 AND custom_id_hash = $2")
                .bind(self.tenant_id)
                .bind(custom_id_hash.as_slice())
                .fetch_one(write.connection())
                .await?;
        write.commit().await?;
        Ok(linked == user.id)
    }

    async fn create_session(&self, user: &User, token_hash: &[u8; 32], expires_at: DateTime<Utc>) -> StorageResult<()> {
        own(self.tenant_id, user)?;
        let mut write = self.db.write().await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, tenant_id, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash.as_slice())
        .bind(self.tenant_id)
        .bind(user.id)
        .bind(expires_at.timestamp_micros())
        .bind(now())
        .execute(write.connection())
        .await
        .map_err(|error| match is_unique_violation(&error) {
            true => StorageError::Conflict("session token"),
            false => error.into(),
        })?;
        write.commit().await
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
        .fetch_optional(&self.db.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user =
            User { id: row.try_get("id")?, tenant_id: row.try_get("tenant_id")?, identity: row.try_get("identity")? };
        Ok(Some(Session { user, expires_at: time(&row, "expires_at")? }))
    }

    async fn attributes(&self, user_id: Uuid) -> StorageResult<Attributes> {
        Ok(attributes(&self.db.readers, self.tenant_id, user_id).await?)
    }

    async fn set_attributes(&self, user: &User, attributes: &Attributes) -> StorageResult<()> {
        own(self.tenant_id, user)?;
        let mut write = self.db.write().await?;
        sqlx::query("UPDATE users SET attributes = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(self.tenant_id)
            .bind(user.id)
            .bind(Json(attributes))
            .execute(write.connection())
            .await?;
        write.commit().await
    }
}
