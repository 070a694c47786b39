//! The rules components this repository builds (see `build.rs`): the
//! example modules and the hostile ones, as the tests and the benchmark
//! harness upload them.

pub const SALE_PRICING: &[u8] = include_bytes!(env!("SALE_PRICING_WASM"));
pub const TIERED_PRICING: &[u8] = include_bytes!(env!("TIERED_PRICING_WASM"));
pub const VIP_PRICING: &[u8] = include_bytes!(env!("VIP_PRICING_WASM"));
/// Misbehaves on purpose, by the key of the item bought.
pub const HOSTILE: &[u8] = include_bytes!(env!("HOSTILE_RULES_WASM"));
/// Exports another world than the economy's.
pub const WRONG_WORLD: &[u8] = include_bytes!(env!("WRONG_WORLD_WASM"));
/// The economy's interface with `purchase` of the wrong type.
pub const MISTYPED: &[u8] = include_bytes!(env!("MISTYPED_RULES_WASM"));
/// Built against the interface's first version: every durable item is free.
pub const LEGACY: &[u8] = include_bytes!(env!("LEGACY_RULES_WASM"));
