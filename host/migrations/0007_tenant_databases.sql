-- Tenants' data may live in a database of their own. The control plane
-- (tenants, keys, modules) stays in the host's default database; a tenant's
-- database holds its catalog, players and everything per player, and runs
-- these same migrations (its control-plane tables stay empty). So tenant
-- data no longer refers to the tenants table.

-- Where the tenant's data lives; NULL: the default database.
ALTER TABLE tenants ADD COLUMN database_url text;

ALTER TABLE currencies DROP CONSTRAINT IF EXISTS currencies_tenant_id_fkey;
ALTER TABLE catalog_items DROP CONSTRAINT IF EXISTS catalog_items_tenant_id_fkey;
ALTER TABLE stores DROP CONSTRAINT IF EXISTS stores_tenant_id_fkey;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_tenant_id_fkey;
ALTER TABLE custom_ids DROP CONSTRAINT IF EXISTS custom_ids_tenant_id_fkey;

-- The catalog's version lives with the catalog, moved in the same
-- statement as every write to it (and its row lock makes the tenant's
-- catalog writes take turns). The control plane's config_version now
-- counts only the module, limits and settings.
CREATE TABLE catalog_versions (
    tenant_id  uuid PRIMARY KEY,
    version    bigint NOT NULL DEFAULT 0
);
INSERT INTO catalog_versions (tenant_id, version) SELECT id, config_version FROM tenants;
