-- no-transaction
-- On a database with the Citus extension (a coordinator with workers),
-- a tenant's data is distributed by player: every per-player table is
-- distributed by user_id and co-located with balances, so one player's
-- purchase touches one worker; the catalog and the player directory
-- (currencies, items, stores, catalog versions, users, custom ids,
-- sessions) are reference tables on every node. The control plane
-- (tenants, keys, modules) stays on the coordinator. On any other
-- database this does nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;
    PERFORM create_reference_table(relation)
    FROM unnest(ARRAY['currencies', 'catalog_items', 'stores', 'catalog_versions', 'users', 'custom_ids',
                      'sessions']) AS relation
    WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = relation::regclass);
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'balances'::regclass) THEN
        PERFORM create_distributed_table('balances', 'user_id');
    END IF;
    PERFORM create_distributed_table(relation, 'user_id', colocate_with => 'balances')
    FROM unnest(ARRAY['ledger', 'inventory', 'purchases', 'listing_purchases', 'consumes',
                      'idempotency_records']) AS relation
    WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = relation::regclass);
END
$$;
