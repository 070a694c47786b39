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
//! | `slow`     | spins about two seconds, then prices normally    |
//! | `escape`   | probes the sandbox: the price is 1 plus a bit for |
//! |            | each of environment, files, network and a moving  |
//! |            | clock that it could reach                         |

use economy_core::{CatalogPrice, Context, Env, Item, Listing, PricePolicy, RuleError};
use std::hint::black_box;

pub struct Hostile;

/// Iterations of the `slow` behaviour: about two seconds of wasm here.
const SLOW_SPINS: u64 = 2_000_000_000;

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
            "slow" => {
                let mut counter = 0u64;
                for _ in 0..SLOW_SPINS {
                    counter = black_box(counter.wrapping_add(1));
                }
                black_box(counter);
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
