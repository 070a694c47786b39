//! The demo tenant a fresh embedded store starts with, so a first purchase
//! is one pasted command away: two currencies (one regenerating), a
//! consumable, a durable, a bundle, and a store with an override price and
//! a per-player cap, plus a player with a session. Made through the economy
//! service, as an admin would make it.

use crate::domain::{CatalogKey, Identity, Name, Slug};
use crate::economy::{CreatedTenant, Economy, EconomyError, OpenedSession};
use crate::storage::{Content, ItemType, Listing, NewCurrency, NewItem, Price, Recharge};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// What the demo made: the tenant's keys, a player's session, and the item
/// the first purchase buys.
pub struct Demo {
    pub tenant: CreatedTenant,
    pub session: OpenedSession,
    pub potion_id: Uuid,
}

/// How long the demo player's session lasts.
const SESSION: Duration = Duration::from_secs(30 * 24 * 3600);

fn price(currency_code: &str, amount: i64) -> Price {
    Price { currency_code: currency_code.into(), amount }
}

fn item(name: &str, item_type: ItemType, prices: Vec<Price>, contents: Vec<Content>) -> NewItem {
    NewItem {
        key: name.to_lowercase().replace(' ', "-"),
        name: name.into(),
        icon_url: None,
        item_type,
        category: None,
        display_properties: json!({}),
        prices,
        contents,
        duration_seconds: None,
        store_only: false,
    }
}

fn valid<T: TryFrom<String, Error = crate::domain::ValidationError>>(text: &str) -> T {
    T::try_from(text.to_owned()).expect("the demo's names are valid")
}

/// Creates the demo tenant, its catalog and a player.
pub async fn create(economy: &Economy) -> Result<Demo, EconomyError> {
    let tenant = economy.create_tenant(&valid::<Slug>("demo"), &valid::<Name>("Demo"), None).await?;
    let id = tenant.tenant.id;
    let gold = NewCurrency {
        code: "gold".into(),
        name: "Gold".into(),
        initial_balance: 1_000,
        max_balance: None,
        recharge: None,
    };
    let energy = NewCurrency {
        code: "energy".into(),
        name: "Energy".into(),
        initial_balance: 5,
        max_balance: Some(10),
        recharge: Some(Recharge { amount: 1, period_seconds: 60, max: 5 }),
    };
    for currency in [gold, energy] {
        economy.put_currency(id, currency).await?;
    }
    let potion = economy.put_item(id, item("Potion", ItemType::Consumable, vec![price("gold", 50)], vec![])).await?;
    let sword = item("Sword", ItemType::Durable, vec![price("gold", 300), price("energy", 5)], vec![]);
    economy.put_item(id, sword).await?;
    let contents = vec![
        Content::Item { item_key: "sword".into(), quantity: 1 },
        Content::Item { item_key: "potion".into(), quantity: 3 },
    ];
    // Sold only through the shop, whose listing sells it once per player.
    let starter_pack = item("Starter Pack", ItemType::Bundle, vec![price("gold", 400)], contents);
    economy.put_item(id, NewItem { store_only: true, ..starter_pack }).await?;
    let listings = vec![
        Listing {
            item_key: "sword".into(),
            override_prices: Some(vec![price("gold", 250)]),
            max_purchases_per_user: None,
            purchasable: true,
        },
        Listing {
            item_key: "starter-pack".into(),
            override_prices: None,
            max_purchases_per_user: Some(1),
            purchasable: true,
        },
    ];
    economy.put_store(id, &valid::<CatalogKey>("shop"), &valid::<Name>("Shop"), &listings).await?;
    let session = economy.open_session(id, &valid::<Identity>("demo-player"), Some(SESSION)).await?;
    Ok(Demo { tenant, session, potion_id: potion.value.id })
}
