//! Rows into the storage types.

use super::super::*;
use super::at;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;

pub(super) fn time(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    Ok(at(row.try_get(column)?))
}

pub(super) fn optional_time(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(at))
}

pub(super) fn recharge_from_row(row: &SqliteRow) -> Result<Option<Recharge>, sqlx::Error> {
    Ok(
        match (
            row.try_get::<Option<i64>, _>("recharge_amount")?,
            row.try_get::<Option<i64>, _>("recharge_period_seconds")?,
            row.try_get::<Option<i64>, _>("recharge_max")?,
        ) {
            (Some(amount), Some(period_seconds), Some(max)) => Some(Recharge { amount, period_seconds, max }),
            _ => None,
        },
    )
}

pub(super) fn currency_from_row(row: &SqliteRow) -> Result<Currency, sqlx::Error> {
    Ok(Currency {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        initial_balance: row.try_get("initial_balance")?,
        max_balance: row.try_get("max_balance")?,
        recharge: recharge_from_row(row)?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(super) fn item_from_row(row: &SqliteRow) -> Result<CatalogItem, sqlx::Error> {
    Ok(CatalogItem {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        icon_url: row.try_get("icon_url")?,
        item_type: ItemType::parse(row.try_get("item_type")?),
        category: row.try_get("category")?,
        display_properties: row.try_get::<Json<Value>, _>("display_properties")?.0,
        prices: row.try_get::<Json<Vec<Price>>, _>("prices")?.0,
        contents: row.try_get::<Json<Vec<Content>>, _>("contents")?.0,
        duration_seconds: row.try_get("duration_seconds")?,
        store_only: row.try_get("store_only")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(super) fn store_from_row(row: &SqliteRow) -> Result<Store, sqlx::Error> {
    Ok(Store {
        id: row.try_get("id")?,
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        listings: row.try_get::<Json<Vec<Listing>>, _>("listings")?.0,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub(super) fn module_from_row(row: &SqliteRow) -> Result<ModuleInfo, sqlx::Error> {
    Ok(ModuleInfo { sha256: row.try_get("sha256")?, size: row.try_get("size")?, created_at: time(row, "created_at")? })
}

pub(super) fn stack_from_row(row: &SqliteRow) -> Result<Stack, sqlx::Error> {
    Ok(Stack {
        catalog_item_id: row.try_get("item_id")?,
        collection_id: row.try_get("collection_id")?,
        stack_id: row.try_get("stack_id")?,
        quantity: row.try_get("quantity")?,
        acquired_via: row.try_get("acquired_via")?,
        acquired_at: time(row, "acquired_at")?,
        expires_at: optional_time(row, "expires_at")?,
    })
}

pub(super) fn tenant_from_row(row: &SqliteRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: time(row, "created_at")?,
    })
}

pub(super) fn paid_price_from_row(row: &SqliteRow) -> Result<PaidPrice, sqlx::Error> {
    Ok(PaidPrice {
        item_id: row.try_get("item_id")?,
        currency_code: row.try_get("currency_code")?,
        unit_price: row.try_get("unit_price")?,
    })
}

pub(super) fn module_event_from_row(row: &SqliteRow) -> Result<ModuleEvent, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(ModuleEvent {
        id: row.try_get("id")?,
        kind: ModuleEventKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown module event kind {kind}").into()))?,
        module_sha256: row.try_get("module_sha256")?,
        operation: row.try_get("operation")?,
        reason: row.try_get("reason")?,
        created_at: time(row, "created_at")?,
    })
}
