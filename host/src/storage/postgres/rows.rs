//! Rows into the storage types, and the storage types into the column
//! arrays statements bind.

use super::super::*;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

pub(super) fn currency_from_row(row: &PgRow) -> Result<Currency, sqlx::Error> {
    let recharge = match (
        row.try_get::<Option<i64>, _>("recharge_amount")?,
        row.try_get::<Option<i64>, _>("recharge_period_seconds")?,
        row.try_get::<Option<i64>, _>("recharge_max")?,
    ) {
        (Some(amount), Some(period_seconds), Some(max)) => Some(Recharge { amount, period_seconds, max }),
        _ => None,
    };
    Ok(Currency {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        initial_balance: row.try_get("initial_balance")?,
        max_balance: row.try_get("max_balance")?,
        recharge,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn item_from_row(row: &PgRow) -> Result<CatalogItem, sqlx::Error> {
    Ok(CatalogItem {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        icon_url: row.try_get("icon_url")?,
        item_type: ItemType::parse(row.try_get("item_type")?),
        category: row.try_get("category")?,
        display_properties: row.try_get("display_properties")?,
        prices: row.try_get::<Json<Vec<Price>>, _>("prices")?.0,
        contents: row.try_get::<Json<Vec<Content>>, _>("contents")?.0,
        duration_seconds: row.try_get("duration_seconds")?,
        store_only: row.try_get("store_only")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn store_from_row(row: &PgRow) -> Result<Store, sqlx::Error> {
    Ok(Store {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        listings: row.try_get::<Json<Vec<Listing>>, _>("listings")?.0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn module_from_row(row: &PgRow) -> Result<ModuleInfo, sqlx::Error> {
    Ok(ModuleInfo {
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn stack_from_row(row: &PgRow) -> Result<Stack, sqlx::Error> {
    Ok(Stack {
        catalog_item_id: row.try_get("item_id")?,
        collection_id: row.try_get("collection_id")?,
        stack_id: row.try_get("stack_id")?,
        quantity: row.try_get("quantity")?,
        acquired_via: row.try_get("acquired_via")?,
        acquired_at: row.try_get("acquired_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// One thing a collection holds, from a row of `item_id, stack_id,
/// quantity, expires_at, currency_code` (a balance where `currency_code`
/// is set, its amount in `quantity`).
pub(super) fn held_from_row(row: &PgRow) -> Result<Held, sqlx::Error> {
    Ok(match row.try_get::<Option<String>, _>("currency_code")? {
        Some(currency_code) => Held::Balance { currency_code, balance: row.try_get("quantity")? },
        None => Held::Stack {
            item_id: row.try_get("item_id")?,
            stack_id: row.try_get("stack_id")?,
            quantity: row.try_get("quantity")?,
            expires_at: row.try_get("expires_at")?,
        },
    })
}

/// A balance as read for a snapshot, with its currency's terms.
pub(super) fn balance_read_from_row(row: &PgRow) -> Result<BalanceRead, sqlx::Error> {
    let stored = match row.try_get::<Option<i64>, _>("balance")? {
        Some(balance) => Some(BalanceRow { balance, recharged_at: row.try_get("recharged_at")? }),
        None => None,
    };
    let recharge = match (
        row.try_get::<Option<i64>, _>("recharge_amount")?,
        row.try_get::<Option<i64>, _>("recharge_period_seconds")?,
        row.try_get::<Option<i64>, _>("recharge_max")?,
    ) {
        (Some(amount), Some(period_seconds), Some(max)) => {
            Some(RechargeTerms { amount, period_seconds, max, since: row.try_get("recharge_since")? })
        }
        _ => None,
    };
    Ok(BalanceRead {
        stored,
        initial_balance: row.try_get("initial_balance")?,
        max_balance: row.try_get("max_balance")?,
        recharge,
        player_since: row.try_get("player_since")?,
    })
}

/// Grants as the column arrays `grant_statement!` binds.
pub(super) struct GrantColumns<'a> {
    pub(super) ids: Vec<Uuid>,
    pub(super) quantities: Vec<i64>,
    pub(super) vias: Vec<&'a str>,
    pub(super) durations: Vec<Option<i64>>,
    pub(super) collections: Vec<&'a str>,
    pub(super) stacks: Vec<&'a str>,
    pub(super) displays: Vec<Option<&'a Value>>,
    pub(super) bundles: Vec<Option<Uuid>>,
}

impl<'a> GrantColumns<'a> {
    pub(super) fn new(grants: &'a [NewGrant]) -> Self {
        Self {
            ids: grants.iter().map(|g| g.item_id).collect(),
            quantities: grants.iter().map(|g| g.quantity).collect(),
            vias: grants.iter().map(|g| g.acquired_via.as_str()).collect(),
            durations: grants.iter().map(|g| g.duration_seconds).collect(),
            collections: grants.iter().map(|g| g.stack.collection_id.as_str()).collect(),
            stacks: grants.iter().map(|g| g.stack.stack_id.as_str()).collect(),
            displays: grants.iter().map(|g| g.display_properties.as_ref()).collect(),
            bundles: grants.iter().map(|g| g.bundle_purchase_id).collect(),
        }
    }
}

/// A purchase row's idempotency columns: set with a key, NULL without one.
pub(super) struct IdempotencyColumns<'a> {
    pub(super) request_hash: Option<&'a [u8]>,
    pub(super) status: Option<i16>,
    pub(super) body: Option<&'a Value>,
}

impl<'a> IdempotencyColumns<'a> {
    pub(super) fn new(purchase: &'a PurchaseRecord, response: &'a StoredResponse) -> Self {
        let keyed = purchase.idempotency_key.is_some();
        Self {
            request_hash: keyed.then_some(purchase.request_hash.as_slice()),
            status: keyed.then(|| i16::try_from(response.status).unwrap_or(200)),
            body: keyed.then_some(&response.body),
        }
    }
}

pub(super) fn paid_price_from_row(row: &PgRow) -> Result<PaidPrice, sqlx::Error> {
    Ok(PaidPrice {
        item_id: row.try_get("item_id")?,
        currency_code: row.try_get("currency_code")?,
        unit_price: row.try_get("unit_price")?,
    })
}

pub(super) fn module_event_from_row(row: &PgRow) -> Result<ModuleEvent, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(ModuleEvent {
        id: row.try_get("id")?,
        kind: ModuleEventKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown module event kind {kind}").into()))?,
        module_sha256: row.try_get("module_sha256")?,
        operation: row.try_get("operation")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
    })
}
