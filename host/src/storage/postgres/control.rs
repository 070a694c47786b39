//! The control plane in PostgreSQL: tenants, keys, configuration, modules
//! and their compiled artifacts. It lives in the host's default database.

use super::super::*;
use super::rows::{module_event_from_row, module_from_row};
use super::{begin, conflict};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgPool, Row};

pub struct PgControl {
    pub(super) pool: PgPool,
}

#[async_trait]
impl ControlStore for PgControl {
    async fn ping(&self) -> StorageResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn has_tenants(&self) -> StorageResult<bool> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants)").fetch_one(&self.pool).await?)
    }

    async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        keys: &[(KeyKind, [u8; 32])],
        database: Option<&DatabaseUrl>,
    ) -> StorageResult<Tenant> {
        let mut tx = begin(&self.pool).await?;
        let row = sqlx::query(
            "INSERT INTO tenants (id, slug, name, database_url) VALUES ($1, $2, $3, $4) RETURNING id, slug, name, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(slug)
        .bind(name)
        .bind(database.map(DatabaseUrl::expose))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict("tenant slug"))?;
        let tenant = tenant_from_row(&row)?;
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

    async fn tenant_configs(&self, tenant_ids: &[Uuid]) -> StorageResult<Vec<(Uuid, TenantConfig)>> {
        let rows = sqlx::query(
            "SELECT id, active_module_sha256, module_fuel, module_deadline_ms, module_memory_bytes, module_max_import_calls,
                    config_version, custom_id_login, module_settings, rate_limits, database_url
             FROM tenants WHERE id = ANY($1)",
        )
        .bind(tenant_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
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
                        rate_limits: rate_limits(row)?,
                    },
                    config_version: row.try_get("config_version")?,
                    database: row.try_get::<Option<String>, _>("database_url")?.map(DatabaseUrl::new),
                };
                Ok((row.try_get("id")?, config))
            })
            .collect()
    }

    async fn tenants_with_databases(&self) -> StorageResult<Vec<Tenant>> {
        let rows =
            sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE database_url IS NOT NULL ORDER BY slug")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(tenant_from_row).collect::<Result<_, _>>()?)
    }

    async fn set_settings(&self, tenant_id: Uuid, settings: &TenantSettings) -> StorageResult<()> {
        sqlx::query(
            "UPDATE tenants SET custom_id_login = $2, module_settings = $3, rate_limits = $4, config_version = config_version + 1
             WHERE id = $1",
        )
            .bind(tenant_id)
            .bind(settings.custom_id_login)
            .bind(Json(&settings.module_settings))
            .bind(Json(&settings.rate_limits))
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

    async fn put_module(
        &self,
        tenant_id: Uuid,
        sha256: &str,
        bytes: &[u8],
        quota: &ModuleQuota,
    ) -> StorageResult<Uploaded> {
        let mut tx = begin(&self.pool).await?;
        // The tenant's uploads take turns on its row: two never both pass the quota.
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE").bind(tenant_id).execute(&mut *tx).await?;
        let row = sqlx::query(
            "WITH kept AS (SELECT count(*) AS modules, COALESCE(sum(size), 0) AS bytes FROM modules WHERE tenant_id = $1),
             stored AS (
                INSERT INTO modules (tenant_id, sha256, bytes, size)
                SELECT $1, $2, $3, $4 FROM kept WHERE kept.modules < $5 AND kept.bytes + $4 <= $6
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
        .bind(quota.modules)
        .bind(quota.bytes)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match row {
            Some(row) => Uploaded::Stored(module_from_row(&row)?),
            None => Uploaded::OverQuota,
        })
    }

    async fn delete_module(&self, tenant_id: Uuid, sha256: &str) -> StorageResult<Deleted> {
        let mut tx = begin(&self.pool).await?;
        let active: Option<Option<String>> =
            sqlx::query_scalar("SELECT active_module_sha256 FROM tenants WHERE id = $1 FOR UPDATE")
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
        if active.flatten().as_deref() == Some(sha256) {
            tx.rollback().await?;
            return Ok(Deleted::Active);
        }
        let deleted = sqlx::query("DELETE FROM modules WHERE tenant_id = $1 AND sha256 = $2")
            .bind(tenant_id)
            .bind(sha256)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Deleted::Unknown);
        }
        let artifacts = sqlx::query(
            "DELETE FROM module_artifacts WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM modules WHERE sha256 = $1)",
        )
        .bind(sha256)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Deleted::Deleted { last: artifacts.rows_affected() > 0 })
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
        let mut tx = begin(&self.pool).await?;
        // Takes turns with a deletion of the module (see `delete_module`).
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE").bind(tenant_id).execute(&mut *tx).await?;
        let updated = sqlx::query(
            "UPDATE tenants SET active_module_sha256 = $2, config_version = config_version + 1
             WHERE id = $1 AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM modules WHERE tenant_id = $1 AND sha256 = $2))",
        )
        .bind(tenant_id)
        .bind(sha256)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn replace_active_module(&self, tenant_id: Uuid, from: &str, to: Option<&str>) -> StorageResult<bool> {
        let updated = sqlx::query(
            "UPDATE tenants SET active_module_sha256 = $3, config_version = config_version + 1
             WHERE id = $1 AND active_module_sha256 = $2
               AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM modules WHERE tenant_id = $1 AND sha256 = $3))",
        )
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn record_module_event(&self, tenant_id: Uuid, event: &ModuleEvent) -> StorageResult<()> {
        sqlx::query(
            "WITH recorded AS (
                INSERT INTO module_events (tenant_id, id, kind, module_sha256, operation, reason, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
             )
             DELETE FROM module_events WHERE tenant_id = $1 AND id <= (
                SELECT id FROM module_events WHERE tenant_id = $1 ORDER BY id DESC OFFSET $8 - 1 LIMIT 1
             )",
        )
        .bind(tenant_id)
        .bind(event.id)
        .bind(event.kind.as_str())
        .bind(&event.module_sha256)
        .bind(&event.operation)
        .bind(&event.reason)
        .bind(event.created_at)
        .bind(MODULE_EVENTS_KEPT)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn module_events(&self, tenant_id: Uuid, limit: i64) -> StorageResult<Vec<ModuleEvent>> {
        let rows = sqlx::query(
            "SELECT id, kind, module_sha256, operation, reason, created_at FROM module_events
             WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(module_event_from_row).collect::<Result<_, _>>()?)
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
}

fn tenant_from_row(row: &PgRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A tenant's rate limits as stored: none set keeps the defaults, a JSON
/// null turns them off.
fn rate_limits(row: &PgRow) -> Result<Option<RateLimits>, sqlx::Error> {
    Ok(match row.try_get::<Option<Json<Option<RateLimits>>>, _>("rate_limits")? {
        Some(Json(set)) => set,
        None => Some(RateLimits::DEFAULT),
    })
}
