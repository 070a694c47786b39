-- What happened to a tenant's rules modules that its admin should see:
-- calls they failed, and automatic rollbacks. A control-plane table (on a
-- Citus coordinator it stays local, as the modules do); only the latest
-- events of each tenant are kept.
CREATE TABLE module_events (
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    id             uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('failure', 'rolled_back')),
    module_sha256  text NOT NULL,
    operation      text,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
