//! The default economy rules, compiled to a `wasm32-wasip2` component.
//!
//! Every decision lives in a pure module that takes and returns plain Rust
//! types (`pricing`, `bundle`) or drives storage through the [`Env`] trait
//! (`purchase`, `consume`), so all of it is unit-tested natively. Only
//! `component` (built for wasm32 alone) knows about the WIT bindings: it
//! converts types and forwards to the imports. Nothing here may read a clock,
//! randomness or the environment: the request context is the only input.

pub mod bundle;
pub mod check;
pub mod consume;
pub mod model;
pub mod pricing;
pub mod purchase;
#[cfg(test)]
mod testing;

#[cfg(target_arch = "wasm32")]
pub mod component;

pub use model::*;

// Lets the bindings name this crate as dependents do.
extern crate self as economy_core;

#[cfg(all(target_arch = "wasm32", feature = "default-rules"))]
export_rules!(CatalogPrice);
