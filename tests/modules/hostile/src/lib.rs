//! A rules module that misbehaves on purpose. What it does depends on the
//! key of the item bought; any other item is priced as the default rules
//! price it.
//!
//! | item key   | behaviour                                        |
//! |------------|--------------------------------------------------|
//! | `loop`     | spins forever                                    |
//! | `alloc`    | allocates without bound                          |
//! | `recurse`  | recurses without bound                           |
//! | `trap`     | panics                                           |
//! | `negative` | prices the item at -5                            |
//! | `flood`    | calls a storage import in a loop                 |
//! | `mint`     | credits a million gems, then prices normally     |
//! | `skim`     | debits 500 gems more than the price              |
//! | `slow`     | spins two to four seconds, then prices normally  |
//! | `sleep`    | sleeps an hour (past any deadline): a wait that  |
//! |            | burns no fuel                                    |
//! | `bad-ids`  | hands every import ids that name nothing; the    |
//! |            | price is 1 plus a bit for each import that did   |
//! |            | not answer as for a thing that does not exist    |
//! | `escape`   | probes the sandbox: the price is 1 plus a bit for |
//! |            | each of environment, files, network and a moving  |
//! |            | clock that it could reach                         |

use economy_core::{CatalogPrice, Context, Env, Item, Listing, PricePolicy, RuleError};
use std::hint::black_box;

pub struct Hostile;

/// Iterations of the `slow` behaviour: two to four seconds of wasm,
/// depending on the machine.
const SLOW_SPINS: u64 = 4_000_000_000;

impl PricePolicy for Hostile {
    fn unit_price(
        env: &mut impl Env,
        ctx: &Context,
        item: &Item,
        listing: Option<&Listing>,
        currency_code: &str,
    ) -> Result<i64, RuleError> {
        match item.key.as_str() {
            "loop" => spin(),
            "alloc" => hoard(),
            "recurse" => Ok(recurse(black_box(u64::MAX)) as i64),
            "trap" => panic!("the hostile module panics on purpose"),
            "negative" => Ok(-5),
            "flood" => loop {
                black_box(env.balance(currency_code));
            },
            "mint" => {
                let _ = env.credit(currency_code, 1_000_000, &ctx.request_id);
                CatalogPrice::unit_price(env, ctx, item, listing, currency_code)
            }
            "escape" => Ok(1 + sandbox_leaks()),
            "bad-ids" => Ok(1 + misanswered(env)),
            "slow" => {
                let mut counter = 0u64;
                for _ in 0..SLOW_SPINS {
                    counter = black_box(counter.wrapping_add(1));
                }
                black_box(counter);
                CatalogPrice::unit_price(env, ctx, item, listing, currency_code)
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3_600));
                CatalogPrice::unit_price(env, ctx, item, listing, currency_code)
            }
            "skim" => {
                let _ = env.debit(currency_code, 500, &ctx.request_id);
                CatalogPrice::unit_price(env, ctx, item, listing, currency_code)
            }
            _ => CatalogPrice::unit_price(env, ctx, item, listing, currency_code),
        }
    }
}

/// One bit per import that, given ids naming nothing (not UUIDs, or UUIDs
/// of nothing), did not answer as for a thing that does not exist.
fn misanswered(env: &mut impl Env) -> i64 {
    use economy_core::{Grant, InventoryError, WalletError};
    let nothing = "00000000-0000-7000-8000-000000000000";
    let grant = |item_id: &str| Grant { item_id: item_id.into(), quantity: 1, duration_seconds: None };
    let answers = [
        env.item_by_id("not-a-uuid").is_none() && env.item_by_id(nothing).is_none(),
        env.listing("not-a-uuid", "not-a-uuid").is_none() && env.listing(nothing, nothing).is_none(),
        env.balance("no-such-currency").is_none(),
        env.debit("no-such-currency", 1, "r") == Err(WalletError::UnknownCurrency),
        env.grant_items(&[grant("not-a-uuid")]) == Err(InventoryError::UnknownItem)
            && env.grant_items(&[grant(nothing)]) == Err(InventoryError::UnknownItem),
        env.consume("not-a-uuid", 1) == Err(InventoryError::UnknownItem)
            && env.consume(nothing, 1) == Err(InventoryError::UnknownItem),
        env.item_purchases("not-a-uuid") == 0,
        env.claim_listing("not-a-uuid", "not-a-uuid", 1, 5).is_none()
            && env.claim_listing(nothing, nothing, 1, 5).is_none(),
    ];
    answers.iter().enumerate().map(|(bit, right)| i64::from(!*right) << (bit + 1)).sum()
}

/// One bit per way out of the sandbox that worked.
fn sandbox_leaks() -> i64 {
    let environment = std::env::vars().next().is_some();
    let files = std::fs::read_dir("/").is_ok() || std::fs::read_dir(".").is_ok();
    let network = std::net::TcpStream::connect("127.0.0.1:5432").is_ok();
    let started = std::time::SystemTime::now();
    let mut counter = 0u64;
    for _ in 0..10_000 {
        counter = black_box(counter.wrapping_add(1));
    }
    let clock_moves = std::time::SystemTime::now() != started;
    [environment, files, network, clock_moves]
        .iter()
        .enumerate()
        .map(|(bit, leaked)| i64::from(*leaked) << (bit + 1))
        .sum()
}

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

fn hoard() -> ! {
    // Reserving without writing grows linear memory at almost no fuel cost,
    // so the memory cap, not the fuel budget, is what stops this.
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::with_capacity(1 << 20);
        block.push(1u8);
        hoard.push(black_box(block));
    }
}

fn recurse(depth: u64) -> u64 {
    // Small frames, and a result the optimiser cannot fold into a loop: the
    // wasm call stack, not the shadow stack in linear memory, runs out.
    if depth == 0 { 0 } else { black_box(recurse(depth - 1)) + 1 }
}

#[cfg(target_arch = "wasm32")]
economy_core::export_rules!(Hostile);
