//! The column lists queries select, as macros (so each query stays one
//! static string, prepared once per connection).

/// The columns of a currency.
macro_rules! currency_columns {
    () => {
        "code, name, initial_balance, max_balance, recharge_amount, recharge_period_seconds, recharge_max, recharge_since, created_at, updated_at"
    };
}

/// The columns of a catalog item.
macro_rules! item_columns {
    () => {
        "id, key, name, icon_url, item_type, category, display_properties, prices, contents, duration_seconds, store_only, created_at, updated_at"
    };
}

/// The columns of a store.
macro_rules! store_columns {
    () => {
        "id, key, name, listings, created_at, updated_at"
    };
}

/// Moves the catalog version of tenant `$1`: every host's in-memory catalog
/// of it is replaced.
macro_rules! bump_catalog {
    () => {
        "INSERT INTO catalog_versions (tenant_id, version) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1"
    };
}

/// How a grant lands on an existing stack (`s`, the grant `excluded`): an
/// expired or emptied stack starts over; otherwise quantities add up and a
/// timed stack keeps the later expiry (an untimed grant makes it untimed).
macro_rules! stack_upsert {
    () => {
        "ON CONFLICT (user_id, item_id, collection_id, stack_id) DO UPDATE SET
           quantity = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0
                           THEN excluded.quantity ELSE s.quantity + excluded.quantity END,
           acquired_at = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0
                              THEN excluded.acquired_at ELSE s.acquired_at END,
           expires_at = CASE
             WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0 THEN excluded.expires_at
             WHEN s.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
             ELSE max(s.expires_at, excluded.expires_at) END,
           display_properties = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0
                                     THEN excluded.display_properties ELSE s.display_properties END,
           bundle_purchase_id = CASE WHEN s.expires_at <= excluded.acquired_at OR s.quantity = 0
                                     THEN excluded.bundle_purchase_id ELSE s.bundle_purchase_id END"
    };
}
