-- What happened to a tenant's rules modules that its admin should see:
-- calls they failed, and automatic rollbacks (the latest of each tenant).
CREATE TABLE module_events (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             BLOB NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('failure', 'rolled_back')),
    module_sha256  TEXT NOT NULL,
    operation      TEXT,
    reason         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
