//! The control plane in SQLite: tenants, keys, configuration, modules and
//! their compiled artifacts, in the host's default file.

use super::super::*;
use super::error::is_unique_violation;
use super::rows::{module_event_from_row, module_from_row, tenant_from_row};
use super::{SqliteDatabase, now};
use sqlx::Row;
use sqlx::types::Json;

pub(crate) struct SqliteControl {
    pub(super) db: Arc<SqliteDatabase>,
}

#[async_trait]
impl ControlStore for SqliteControl {
    async fn ping(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.db.readers).await?;
        Ok(())
    }

    async fn has_tenants(&self) -> StorageResult<bool> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants)").fetch_one(&self.db.readers).await?)
    }

    async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        keys: &[(KeyKind, [u8; 32])],
        database: Option<&DatabaseUrl>,
    ) -> StorageResult<Tenant> {
        let mut write = self.db.write().await?;
        let row = sqlx::query(
            "INSERT INTO tenants (id, slug, name, database_url, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING id, slug, name, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(slug)
        .bind(name)
        .bind(database.map(DatabaseUrl::expose))
        .bind(now())
        .fetch_one(write.connection())
        .await
        .map_err(|error| match is_unique_violation(&error) {
            true => StorageError::Conflict("tenant slug"),
            false => error.into(),
        })?;
        let tenant = tenant_from_row(&row)?;
        for (kind, hash) in keys {
            sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, kind, created_at) VALUES ($1, $2, $3, $4)")
                .bind(hash.as_slice())
                .bind(tenant.id)
                .bind(kind.as_str())
                .bind(now())
                .execute(write.connection())
                .await?;
        }
        write.commit().await?;
        Ok(tenant)
    }

    async fn find_api_key(&self, key_hash: &[u8; 32]) -> StorageResult<Option<ApiKeyRecord>> {
        let row = sqlx::query("SELECT tenant_id, kind FROM api_keys WHERE key_hash = $1")
            .bind(key_hash.as_slice())
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(match row {
            Some(row) => KeyKind::parse(row.try_get("kind")?)
                .map(|kind| Ok::<_, sqlx::Error>(ApiKeyRecord { tenant_id: row.try_get("tenant_id")?, kind }))
                .transpose()?,
            None => None,
        })
    }

    async fn tenant_configs(&self, tenant_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, TenantConfig)>> {
        let mut configs = Vec::with_capacity(tenant_ids.len());
        for tenant_id in tenant_ids {
            let row = sqlx::query(
                "SELECT active_module_sha256, module_fuel, module_deadline_ms, module_memory_bytes,
                        module_max_import_calls, config_version, custom_id_login, module_settings, rate_limits, database_url
                 FROM tenants WHERE id = $1",
            )
            .bind(tenant_id)
            .fetch_optional(&self.db.readers)
            .await?;
            let Some(row) = row else { continue };
            let config = TenantConfig {
                active_sha256: row.try_get("active_module_sha256")?,
                limits: LimitOverrides {
                    fuel: row.try_get("module_fuel")?,
                    deadline_ms: row.try_get("module_deadline_ms")?,
                    memory_bytes: row.try_get("module_memory_bytes")?,
                    max_import_calls: row.try_get("module_max_import_calls")?,
                },
                settings: TenantSettings {
                    custom_id_login: row.try_get("custom_id_login")?,
                    module_settings: row.try_get::<Json<Attributes>, _>("module_settings")?.0,
                    rate_limits: rate_limits(&row)?,
                },
                config_version: row.try_get("config_version")?,
                database: row.try_get::<Option<String>, _>("database_url")?.map(DatabaseUrl::new),
            };
            configs.push((*tenant_id, config));
        }
        Ok(configs)
    }

    async fn tenants_with_databases(&self) -> StorageResult<Vec<Tenant>> {
        let rows =
            sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE database_url IS NOT NULL ORDER BY slug")
                .fetch_all(&self.db.readers)
                .await?;
        Ok(rows.iter().map(tenant_from_row).collect::<Result<_, _>>()?)
    }

    async fn set_settings(&self, tenant_id: Uuid, settings: &TenantSettings) -> StorageResult<()> {
        let mut write = self.db.write().await?;
        sqlx::query(
            "UPDATE tenants SET custom_id_login = $2, module_settings = $3, rate_limits = $4, config_version = config_version + 1
             WHERE id = $1",
        )
            .bind(tenant_id)
            .bind(settings.custom_id_login)
            .bind(Json(&settings.module_settings))
            .bind(Json(&settings.rate_limits))
            .execute(write.connection())
            .await?;
        write.commit().await
    }

    async fn set_limits(&self, tenant_id: Uuid, limits: &LimitOverrides) -> StorageResult<bool> {
        let mut write = self.db.write().await?;
        let updated = sqlx::query(
            "UPDATE tenants SET module_fuel = $2, module_deadline_ms = $3, module_memory_bytes = $4,
               module_max_import_calls = $5, config_version = config_version + 1
             WHERE id = $1",
        )
        .bind(tenant_id)
        .bind(limits.fuel)
        .bind(limits.deadline_ms)
        .bind(limits.memory_bytes)
        .bind(limits.max_import_calls)
        .execute(write.connection())
        .await?;
        write.commit().await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn put_module(
        &self,
        tenant_id: Uuid,
        sha256: &str,
        bytes: &[u8],
        quota: &ModuleQuota,
    ) -> StorageResult<Uploaded> {
        // The writer has the file to itself: the quota check and the insert
        // are one step.
        let mut write = self.db.write().await?;
        sqlx::query(
            "INSERT INTO modules (tenant_id, sha256, bytes, size, created_at)
             SELECT $1, $2, $3, $4, $5
             WHERE (SELECT count(*) FROM modules WHERE tenant_id = $1) < $6
               AND (SELECT COALESCE(sum(size), 0) FROM modules WHERE tenant_id = $1) + $4 <= $7
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant_id)
        .bind(sha256)
        .bind(bytes)
        .bind(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
        .bind(now())
        .bind(quota.modules)
        .bind(quota.bytes)
        .execute(write.connection())
        .await?;
        let row = sqlx::query("SELECT sha256, size, created_at FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .fetch_optional(write.connection())
            .await?;
        write.commit().await?;
        Ok(match row {
            Some(row) => Uploaded::Stored(module_from_row(&row)?),
            None => Uploaded::OverQuota,
        })
    }

    async fn delete_module(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Deleted> {
        let mut write = self.db.write().await?;
        let active: Option<Option<String>> =
            sqlx::query_scalar("SELECT active_module_sha256 FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(write.connection())
                .await?;
        if active.flatten().as_deref() == Some(sha256) {
            write.rollback().await?;
            return Ok(Deleted::Active);
        }
        let deleted = sqlx::query("DELETE FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .execute(write.connection())
            .await?;
        if deleted.rows_affected() == 0 {
            write.rollback().await?;
            return Ok(Deleted::Unknown);
        }
        let artifacts = sqlx::query(
            "DELETE FROM module_artifacts WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM modules WHERE sha256 = $1)",
        )
        .bind(sha256)
        .execute(write.connection())
        .await?;
        write.commit().await?;
        Ok(Deleted::Deleted { last: artifacts.rows_affected() > 0 })
    }

    async fn modules(&self, tenant_id: Uuid) -> StorageResult<Vec<ModuleInfo>> {
        let rows = sqlx::query(
            "SELECT sha256, size, created_at FROM modules WHERE tenant_id = $1 ORDER BY created_at, sha256",
        )
        .bind(tenant_id)
        .fetch_all(&self.db.readers)
        .await?;
        Ok(rows.iter().map(module_from_row).collect::<Result<_, _>>()?)
    }

    async fn module_info(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<ModuleInfo>> {
        let row = sqlx::query("SELECT sha256, size, created_at FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(row.as_ref().map(module_from_row).transpose()?)
    }

    async fn module_bytes(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Option<Vec<u8>>> {
        let bytes = sqlx::query_scalar("SELECT bytes FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .fetch_optional(&self.db.readers)
            .await?;
        Ok(bytes)
    }

    async fn set_active_module(&self, tenant_id: Uuid, sha256: Option<&str>) -> StorageResult<bool> {
        let mut write = self.db.write().await?;
        let updated = sqlx::query(
            "UPDATE tenants SET active_module_sha256 = $2, config_version = config_version + 1
             WHERE id = $1 AND ($2 IS NULL OR EXISTS (SELECT 1 FROM modules WHERE tenant_id = $1 AND sha256 = $2))",
        )
        .bind(tenant_id)
        .bind(sha256)
        .execute(write.connection())
        .await?;
        write.commit().await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn replace_active_module(&self, tenant_id: Uuid, from: &str, to: Option<&str>) -> StorageResult<bool> {
        let mut write = self.db.write().await?;
        let updated = sqlx::query(
            "UPDATE tenants SET active_module_sha256 = $3, config_version = config_version + 1
             WHERE id = $1 AND active_module_sha256 = $2
               AND ($3 IS NULL OR EXISTS (SELECT 1 FROM modules WHERE tenant_id = $1 AND sha256 = $3))",
        )
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .execute(write.connection())
        .await?;
        write.commit().await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn record_module_event(&self, tenant_id: Uuid, event: &ModuleEvent) -> StorageResult<()> {
        let mut write = self.db.write().await?;
        sqlx::query(
            "INSERT INTO module_events (tenant_id, id, kind, module_sha256, operation, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant_id)
        .bind(event.id)
        .bind(event.kind.as_str())
        .bind(&event.module_sha256)
        .bind(&event.operation)
        .bind(&event.reason)
        .bind(event.created_at.timestamp_micros())
        .execute(write.connection())
        .await?;
        sqlx::query(
            "DELETE FROM module_events WHERE tenant_id = $1 AND id NOT IN (
                SELECT id FROM module_events WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2
             )",
        )
        .bind(tenant_id)
        .bind(MODULE_EVENTS_KEPT)
        .execute(write.connection())
        .await?;
        write.commit().await?;
        Ok(())
    }

    async fn module_events(&self, tenant_id: Uuid, limit: i64) -> StorageResult<Vec<ModuleEvent>> {
        let rows = sqlx::query(
            "SELECT id, kind, module_sha256, operation, reason, created_at FROM module_events
             WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&self.db.readers)
        .await?;
        Ok(rows.iter().map(module_event_from_row).collect::<Result<_, _>>()?)
    }

    async fn artifact(&self, sha256: &str, engine_hash: &str) -> StorageResult<Option<Vec<u8>>> {
        let artifact =
            sqlx::query_scalar("SELECT artifact FROM module_artifacts WHERE sha256 = $1 AND engine_hash = $2")
                .bind(sha256)
                .bind(engine_hash)
                .fetch_optional(&self.db.readers)
                .await?;
        Ok(artifact)
    }

    async fn put_artifact(&self, sha256: &str, engine_hash: &str, artifact: &[u8]) -> StorageResult<()> {
        let mut write = self.db.write().await?;
        sqlx::query(
            "INSERT INTO module_artifacts (sha256, engine_hash, artifact, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(sha256)
        .bind(engine_hash)
        .bind(artifact)
        .bind(now())
        .execute(write.connection())
        .await?;
        write.commit().await
    }
}

/// A tenant's rate limits as stored: none set keeps the defaults, a JSON
/// null turns them off.
fn rate_limits(row: &sqlx::sqlite::SqliteRow) -> Result<Option<RateLimits>, sqlx::Error> {
    Ok(match row.try_get::<Option<Json<Option<RateLimits>>>, _>("rate_limits")? {
        Some(Json(set)) => set,
        None => Some(RateLimits::DEFAULT),
    })
}
