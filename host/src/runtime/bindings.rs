//! Host-side bindings of the economy world, generated once. Every import is
//! async (it runs SQL) and trappable (a host failure aborts the request).

wasmtime::component::bindgen!({
    world: "economy",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use economy::plugin::types;
pub use exports::economy::plugin::rules::{PriceQuote, PurchaseOutcome, PurchaseRequest};
