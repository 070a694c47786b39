-- Rules modules uploaded by tenants, their compiled artifacts, and the
-- module that decided each purchase, consume and ledger entry.

-- A tenant's uploaded components, by the SHA-256 (hex) of their bytes.
CREATE TABLE modules (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    sha256       text NOT NULL,
    bytes        bytea NOT NULL,
    size         integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
);

-- Compiled components, so a restarted host deserializes instead of
-- recompiling. Keyed by the module and the engine's compatibility hash: an
-- artifact only loads into an engine built the same way.
CREATE TABLE module_artifacts (
    sha256       text NOT NULL,
    engine_hash  text NOT NULL,
    artifact     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, engine_hash)
);

-- The active module (NULL: the built-in economy-core) and the operator's
-- per-tenant overrides of the sandbox limits (NULL: the host's default).
ALTER TABLE tenants
    ADD COLUMN active_module_sha256     text,
    ADD COLUMN module_fuel              bigint CHECK (module_fuel > 0),
    ADD COLUMN module_deadline_ms       bigint CHECK (module_deadline_ms > 0),
    ADD COLUMN module_memory_bytes      bigint CHECK (module_memory_bytes > 0),
    ADD COLUMN module_max_import_calls  integer CHECK (module_max_import_calls > 0);

ALTER TABLE ledger ADD COLUMN module_sha256 text;
ALTER TABLE purchases ADD COLUMN module_sha256 text;

CREATE TABLE consumes (
    user_id        uuid NOT NULL,
    id             uuid NOT NULL,
    item_id        uuid NOT NULL,
    quantity       bigint NOT NULL CHECK (quantity >= 1),
    remaining      bigint NOT NULL CHECK (remaining >= 0),
    module_sha256  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
