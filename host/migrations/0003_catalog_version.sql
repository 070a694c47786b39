-- Every write to a tenant's currencies, items or stores moves its catalog
-- version; hosts keep the catalog in memory and reload it when it moves.
ALTER TABLE tenants ADD COLUMN catalog_version bigint NOT NULL DEFAULT 0;

-- The idempotency row is now written once, complete, with the purchase.
ALTER TABLE idempotency_keys
    ALTER COLUMN response_status SET NOT NULL,
    ALTER COLUMN response_body SET NOT NULL;
