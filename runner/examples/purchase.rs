//! The smallest complete embedding of the rules in Rust: a catalog of one
//! currency and one item, kept in memory, and one purchase.
//! `cargo run -p economy-runner --example purchase -- dist/economy_core.wasm`

use economy_runner::{Catalog, Currency, Item, ItemType, Memory, PurchaseRequest, Runner};

fn main() -> anyhow::Result<()> {
    let component = std::env::args().nth(1).unwrap_or_else(|| "dist/economy_core.wasm".into());
    let runner = Runner::from_file(&component)?;
    let gems = Currency { code: "gems".into(), name: "Gems".into(), initial_balance: 100, max_balance: None };
    let potion = Item {
        id: "7b0c7d64-1d0b-4d9f-9d43-2f4f3f1a0c01".into(),
        key: "potion".into(),
        name: "Potion".into(),
        item_type: ItemType::Consumable,
        category: None,
        prices: vec![economy_runner::Price { currency_code: "gems".into(), amount: 30 }],
        contents: vec![],
        duration_seconds: None,
        display_properties: "{}".into(),
    };
    let mut memory = Memory::new(Catalog { items: vec![potion.clone()], stores: vec![], currencies: vec![gems] });
    let request = PurchaseRequest { item_id: potion.id, currency_code: "gems".into(), store_id: None, quantity: 2 };
    let now_ms = 1_767_225_600_000;
    let report = runner.purchase(&mut memory, "player-1", &request, now_ms);
    println!("{:?} (fuel {}, memory {} KiB)", report.result, report.fuel_used, report.memory_bytes / 1024);
    println!(
        "gems left: {:?}, potions held: {}",
        memory.balance("player-1", "gems"),
        memory.held("player-1", "potion", now_ms)
    );
    Ok(())
}
