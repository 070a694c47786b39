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

/// The columns of an inventory stack.
macro_rules! stack_columns {
    () => {
        "item_id, collection_id, stack_id, quantity, acquired_via, acquired_at, expires_at"
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
