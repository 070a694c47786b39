//! Host-side bindings of the economy world: every import is synchronous (the
//! store is in memory) and trappable (the storage-call limit traps).

wasmtime::component::bindgen!({
    world: "economy",
    path: "../wit",
    imports: { default: trappable },
});

pub use economy::plugin::types;
pub use exports::economy::plugin::rules::{PriceQuote, PurchaseOutcome, PurchaseRequest};
