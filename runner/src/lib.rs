//! A second embedder of the economy rules, with nothing of the server: it
//! runs a rules component (the built-in rules, or a tenant's module) against
//! a store kept in memory and a clock the caller sets.
//!
//! Module authors use it to test a module before uploading it, from a
//! `#[test]` or from the command line (`economy-runner`), with the fuel and
//! memory each call used; game platforms read it as the smallest complete
//! embedding of the rules: the storage imports, the transaction (a copy of
//! the player, kept only on success), and the re-check before commit.
//!
//! ```no_run
//! use economy_runner::{Memory, Runner, scenario::Scenario};
//! let runner = Runner::from_file("target/wasm32-wasip2/guest/half_price.wasm")?;
//! let scenario = Scenario::from_file("scenarios/store-prices-and-caps.json".as_ref())?;
//! let outcome = economy_runner::scenario::run(&runner, &scenario)?;
//! assert!(outcome.passed());
//! # Ok::<(), anyhow::Error>(())
//! ```

mod bindings;
mod call;
mod memory;
pub mod report;
pub mod sandbox;
pub mod scenario;

pub use bindings::types::{Content, Currency, Item, ItemQuantity, ItemType, Listing, Price, RuleError};
pub use bindings::{PriceQuote, PurchaseOutcome, PurchaseRequest};
pub use call::{Failure, Limits, MAX_MEMORY_BYTES, Report, Runner, TENANT_ID, rule_error_code};
pub use memory::{Catalog, LedgerEntry, MAX_STACK_QUANTITY, Memory, Player, Stack, Store};
