-- The economy schema for the embedded SQLite store: the same tables and
-- rules as the PostgreSQL schema (see host/migrations), in SQLite's types.
-- Ids are 16-byte UUIDs (BLOB), times are microseconds since the Unix epoch
-- (INTEGER), JSON is TEXT, booleans are 0 or 1. Tables are STRICT, so a
-- value of the wrong type is refused instead of stored.

-- The control plane: tenants, their keys, configuration and modules.
CREATE TABLE tenants (
    id                       BLOB PRIMARY KEY,
    slug                     TEXT NOT NULL UNIQUE,
    name                     TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    active_module_sha256     TEXT,
    module_fuel              INTEGER CHECK (module_fuel > 0),
    module_deadline_ms       INTEGER CHECK (module_deadline_ms > 0),
    module_memory_bytes      INTEGER CHECK (module_memory_bytes > 0),
    module_max_import_calls  INTEGER CHECK (module_max_import_calls > 0),
    config_version           INTEGER NOT NULL DEFAULT 0,
    custom_id_login          INTEGER NOT NULL DEFAULT 1,
    database_url             TEXT,
    FOREIGN KEY (id, active_module_sha256) REFERENCES modules (tenant_id, sha256)
) STRICT;

-- API keys are stored only as SHA-256 hashes of the random key.
CREATE TABLE api_keys (
    key_hash     BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    kind         TEXT NOT NULL CHECK (kind IN ('client', 'server', 'admin')),
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE modules (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    sha256       TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
) STRICT;

CREATE TABLE module_artifacts (
    sha256       TEXT NOT NULL,
    engine_hash  TEXT NOT NULL,
    artifact     BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (sha256, engine_hash)
) STRICT;

-- A tenant's data: its catalog, players and everything per player.
CREATE TABLE catalog_versions (
    tenant_id  BLOB PRIMARY KEY,
    version    INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE currencies (
    tenant_id               BLOB NOT NULL,
    code                    TEXT NOT NULL,
    name                    TEXT NOT NULL,
    initial_balance         INTEGER NOT NULL DEFAULT 0 CHECK (initial_balance >= 0),
    max_balance             INTEGER CHECK (max_balance >= 0),
    recharge_amount         INTEGER CHECK (recharge_amount > 0),
    recharge_period_seconds INTEGER CHECK (recharge_period_seconds > 0),
    recharge_max            INTEGER CHECK (recharge_max >= 0),
    recharge_since          INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, code)
) STRICT, WITHOUT ROWID;

CREATE TABLE catalog_items (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL,
    key                TEXT NOT NULL,
    name               TEXT NOT NULL,
    icon_url           TEXT,
    item_type          TEXT NOT NULL CHECK (item_type IN ('consumable', 'durable', 'bundle')),
    category           TEXT,
    display_properties TEXT NOT NULL DEFAULT '{}',
    prices             TEXT NOT NULL DEFAULT '[]',
    contents           TEXT NOT NULL DEFAULT '[]',
    duration_seconds   INTEGER CHECK (duration_seconds > 0),
    store_only         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (tenant_id, key)
) STRICT;

CREATE TABLE stores (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL,
    key          TEXT NOT NULL,
    name         TEXT NOT NULL,
    listings     TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, key)
) STRICT;

CREATE TABLE users (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL,
    identity     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, identity)
) STRICT;

-- Custom ids are stored only as their SHA-256.
CREATE TABLE custom_ids (
    tenant_id       BLOB NOT NULL,
    custom_id_hash  BLOB NOT NULL,
    user_id         BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, custom_id_hash)
) STRICT, WITHOUT ROWID;

-- Session tokens are stored only as SHA-256 hashes of the random token.
CREATE TABLE sessions (
    token_hash   BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A regenerating balance's clock (recharged_at) runs only while it is
-- below its recharge max, and is NULL while stopped.
CREATE TABLE balances (
    user_id       BLOB NOT NULL,
    currency_code TEXT NOT NULL,
    balance       INTEGER NOT NULL CHECK (balance >= 0),
    recharged_at  INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, currency_code)
) STRICT, WITHOUT ROWID;

-- Append-only: for every user and currency, the balance equals the sum of
-- the deltas.
CREATE TABLE ledger (
    user_id       BLOB NOT NULL,
    id            BLOB NOT NULL,
    currency_code TEXT NOT NULL,
    delta         INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    reason        TEXT NOT NULL CHECK (reason IN ('purchase', 'grant', 'consume', 'recharge', 'refund', 'admin')),
    reference     TEXT,
    module_sha256 TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE inventory (
    user_id            BLOB NOT NULL,
    item_id            BLOB NOT NULL,
    collection_id      TEXT NOT NULL DEFAULT 'default',
    stack_id           TEXT NOT NULL DEFAULT 'default',
    quantity           INTEGER NOT NULL CHECK (quantity >= 0)
                       CONSTRAINT inventory_quantity_max CHECK (quantity <= 1000000000000000),
    acquired_via       TEXT NOT NULL,
    acquired_at        INTEGER NOT NULL,
    expires_at         INTEGER,
    display_properties TEXT,
    PRIMARY KEY (user_id, item_id, collection_id, stack_id)
) STRICT, WITHOUT ROWID;

-- A purchase's idempotency record is the purchase row itself.
CREATE TABLE purchases (
    user_id         BLOB NOT NULL,
    id              BLOB NOT NULL,
    item_id         BLOB NOT NULL,
    store_id        BLOB,
    quantity        INTEGER NOT NULL CHECK (quantity >= 1),
    currency_code   TEXT NOT NULL,
    unit_price      INTEGER NOT NULL CHECK (unit_price >= 0),
    total           INTEGER NOT NULL CHECK (total >= 0),
    idempotency_key TEXT,
    request_hash    BLOB,
    response_status INTEGER,
    response_body   TEXT,
    module_sha256   TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX purchases_by_item ON purchases (user_id, item_id);
CREATE UNIQUE INDEX purchases_by_idempotency_key ON purchases (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE listing_purchases (
    user_id     BLOB NOT NULL,
    store_id    BLOB NOT NULL,
    item_id     BLOB NOT NULL,
    purchased   INTEGER NOT NULL CHECK (purchased >= 0),
    PRIMARY KEY (user_id, store_id, item_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE consumes (
    user_id        BLOB NOT NULL,
    id             BLOB NOT NULL,
    item_id        BLOB NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity >= 1),
    remaining      INTEGER NOT NULL CHECK (remaining >= 0),
    module_sha256  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT, WITHOUT ROWID;

-- Idempotency records of grants and consumes.
CREATE TABLE idempotency_records (
    user_id       BLOB NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    response_body TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
