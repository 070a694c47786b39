-- Fixes from the review of the first release.

-- A tenant runs only modules it uploaded itself. An activation stored for a
-- module of another tenant is undone (the tenant is back on the built-in
-- rules), and the key below makes such an activation impossible.
UPDATE tenants t SET active_module_sha256 = NULL
WHERE active_module_sha256 IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM modules m WHERE m.tenant_id = t.id AND m.sha256 = t.active_module_sha256);

ALTER TABLE tenants
    ADD CONSTRAINT tenants_active_module_uploaded
    FOREIGN KEY (id, active_module_sha256) REFERENCES modules (tenant_id, sha256);

-- The version moves on every change to what a tenant's requests run with
-- (catalog, active module, limits, settings), so a host never mistakes an
-- older state for the current one.
ALTER TABLE tenants RENAME COLUMN catalog_version TO config_version;
