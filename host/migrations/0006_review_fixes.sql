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

-- Custom-id logins have a namespace of their own. The custom id is a
-- secret the game client holds (the client key that sends it ships inside
-- the game), so it is stored only as its SHA-256, and it names the player
-- it created or the one the server linked it to: a login can never reach
-- a player the server created by naming that player's identity.
CREATE TABLE custom_ids (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    custom_id_hash  bytea NOT NULL,
    user_id         uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, custom_id_hash)
);

-- A tenant whose players all sign in through its game server turns
-- custom-id login off.
ALTER TABLE tenants ADD COLUMN custom_id_login boolean NOT NULL DEFAULT true;

-- Regenerating currencies. A balance's clock (`recharged_at`) runs only
-- while the balance is below its recharge max and is NULL while stopped, so
-- time spent at or above the max earns nothing. `recharge_since` is when
-- the currency's recharge last changed: no clock starts before it (what
-- accrued under the old settings is settled when they change), so raising
-- the max or turning recharge on pays nothing back-dated.
ALTER TABLE currencies ADD COLUMN recharge_since timestamptz NOT NULL DEFAULT now();
UPDATE currencies SET recharge_since = created_at;
ALTER TABLE balances ALTER COLUMN recharged_at DROP NOT NULL, ALTER COLUMN recharged_at DROP DEFAULT;
UPDATE balances b SET recharged_at = NULL
FROM users u, currencies c
WHERE u.id = b.user_id AND c.tenant_id = u.tenant_id AND c.code = b.currency_code
  AND (c.recharge_amount IS NULL OR b.balance >= c.recharge_max);

-- A stack holds at most 10^15 of an item: far from bigint overflow even
-- after the largest grant one request can make is added, so a grant past
-- it is refused with a client error instead of failing as an overflow.
ALTER TABLE inventory ADD CONSTRAINT inventory_quantity_max CHECK (quantity <= 1000000000000000);

-- Idempotency records of grants and consumes (a purchase's lives on its
-- purchase row): written in the same transaction as the work, keyed by the
-- user, so a retried grant or consume replays instead of running twice.
CREATE TABLE idempotency_records (
    user_id       uuid NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    response_body jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- A purchase's stored answer is now the purchase receipt itself, which
-- every front end renders in its own shape (it was the native API's body).
UPDATE purchases SET response_body = jsonb_build_object(
        'purchase_id', id, 'item_id', item_id, 'store_id', store_id, 'quantity', quantity,
        'currency_code', currency_code, 'unit_price', unit_price, 'total', total,
        'balance_after', response_body -> 'data' -> 'balance_after')
WHERE response_body ? 'data';

-- An item a studio sells only through its stores: a purchase must name a
-- store listing it (whose price, cap and sale flag then apply).
ALTER TABLE catalog_items ADD COLUMN store_only boolean NOT NULL DEFAULT false;
