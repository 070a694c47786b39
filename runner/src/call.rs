//! One call of a rules component: a fresh instance with fuel and a memory
//! cap, the imports served from a copy of the player, the re-check of what
//! the guest moved, and the commit.

use crate::bindings::types::{self, RuleError};
use crate::bindings::{Economy, EconomyPre, PriceQuote, PurchaseOutcome, PurchaseRequest};
use crate::memory::{Catalog, Memory, Player};
use crate::sandbox::{ImportBudget, wasi_context};
use economy_core::check;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The tenant every call belongs to (one runner, one tenant).
pub const TENANT_ID: &str = "00000000-0000-4000-8000-000000000001";

/// The most linear memory a call may be given.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// What one call may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Fuel (about one per wasm instruction).
    pub fuel: u64,
    /// Linear memory, in bytes (at most [`MAX_MEMORY_BYTES`]).
    pub memory_bytes: usize,
    /// Storage import calls.
    pub max_import_calls: u32,
}

impl Default for Limits {
    /// The limits the economy server gives a call by default.
    fn default() -> Self {
        Self { fuel: 10_000_000, memory_bytes: 16 << 20, max_import_calls: 1_000 }
    }
}

/// How a call ended when it did not succeed.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The rules refused: the API error code (`NO_PRICE`, ...) and the
    /// rules' own error.
    Refused(RuleError),
    /// The guest trapped or ran out of a limit (fuel, memory, storage calls).
    Trapped(String),
    /// The guest answered, but what it moved is not what the catalog says
    /// (see `economy_core::check`): nothing is committed.
    Rejected(String),
}

impl Failure {
    /// The API error code an economy server answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(error) => rule_error_code(error),
            Self::Trapped(_) | Self::Rejected(_) => "MODULE_FAILED",
        }
    }
}

/// The API error code of a rule error.
pub fn rule_error_code(error: &RuleError) -> &'static str {
    match error {
        RuleError::NotFound(_) => "NOT_FOUND",
        RuleError::NoPrice => "NO_PRICE",
        RuleError::NotPurchasable => "NOT_PURCHASABLE",
        RuleError::MaxPurchasesReached => "MAX_PURCHASES_REACHED",
        RuleError::InsufficientBalance => "INSUFFICIENT_BALANCE",
        RuleError::MaxBalanceExceeded(_) => "MAX_BALANCE_EXCEEDED",
        RuleError::NotConsumable => "NOT_CONSUMABLE",
        RuleError::InsufficientQuantity => "INSUFFICIENT_QUANTITY",
        RuleError::Invalid(_) => "VALIDATION_FAILED",
    }
}

/// What a call answered, and what it cost.
#[derive(Clone, Debug)]
pub struct Report<T> {
    pub result: Result<T, Failure>,
    /// The fuel the call burned.
    pub fuel_used: u64,
    /// The most linear memory the instance had, in bytes.
    pub memory_bytes: usize,
}

/// A rules component, compiled, ready to be called.
pub struct Runner {
    engine: Engine,
    pre: EconomyPre<CallState>,
    sha256: String,
    limits: Limits,
    /// Calls made so far: each gets its own request id.
    calls: AtomicU64,
}

impl Runner {
    /// Compiles `component` (a component implementing the economy world);
    /// the error says why it is not one.
    pub fn new(component: &[u8]) -> anyhow::Result<Self> {
        Self::compile(component).map_err(|error| anyhow::anyhow!("{error:#}"))
    }

    fn compile(component: &[u8]) -> wasmtime::Result<Self> {
        // Instances come from a small pool, reset between calls, rather
        // than mapping fresh memory each time; a call's memory limit is the
        // limiter's, under the pool's ceiling.
        let mut pooling = PoolingAllocationConfig::default();
        pooling.total_component_instances(4).total_core_instances(32).total_memories(8).total_tables(16);
        pooling.total_stacks(4).max_memory_size(MAX_MEMORY_BYTES);
        let mut config = Config::new();
        config.consume_fuel(true).allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Economy::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)?;
        let compiled = Component::new(&engine, component)?;
        let pre = EconomyPre::new(linker.instantiate_pre(&compiled)?)?;
        let sha256 = hex::encode(Sha256::digest(component));
        Ok(Self { engine, pre, sha256, limits: Limits::default(), calls: AtomicU64::new(0) })
    }

    /// Reads and compiles the component at `path`.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?;
        Self::new(&bytes).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }

    /// The same component under other limits.
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    /// The SHA-256 of the component's bytes, as the server names modules.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Buys as player `user_id` at `now_ms`: committed to `memory` only if
    /// the rules succeed and what they moved passes the re-check.
    pub fn purchase(
        &self,
        memory: &mut Memory,
        user_id: &str,
        request: &PurchaseRequest,
        now_ms: i64,
    ) -> Report<PurchaseOutcome> {
        let (report, state) = self.call(memory, user_id, now_ms, false, |economy, store, ctx| {
            economy.economy_plugin_rules().call_purchase(store, ctx, request)
        });
        let Some(mut state) = state else { return report };
        let result = report.result.and_then(|outcome| {
            let item = memory
                .catalog
                .item_by_id(&request.item_id)
                .ok_or_else(|| Failure::Rejected("the rules bought an item the catalog does not have".to_owned()))?;
            let asked = check::Purchase {
                item: &rules_item(item),
                currency_code: &request.currency_code,
                quantity: request.quantity,
                unit_price: outcome.unit_price,
                total: outcome.total,
                balance_after: outcome.balance_after,
            };
            let catalog = &memory.catalog;
            check::purchase(&asked, &state.moved, &mut |key| catalog.item_by_key(key).map(rules_item))
                .map_err(Failure::Rejected)?;
            Ok(outcome)
        });
        if result.is_ok() {
            *state.player.item_purchases.entry(request.item_id.clone()).or_insert(0) += request.quantity;
            memory.players.insert(user_id.to_owned(), state.player);
        }
        Report { result, ..report }
    }

    /// Quotes as player `user_id` at `now_ms`; nothing is committed, and
    /// an import that changes storage traps.
    pub fn quote(&self, memory: &Memory, user_id: &str, request: &PurchaseRequest, now_ms: i64) -> Report<PriceQuote> {
        self.call(memory, user_id, now_ms, true, |economy, store, ctx| {
            economy.economy_plugin_rules().call_quote(store, ctx, request)
        })
        .0
    }

    /// Consumes as player `user_id` at `now_ms`: committed only if the
    /// rules succeed and moved no money.
    pub fn consume(
        &self,
        memory: &mut Memory,
        user_id: &str,
        item_id: &str,
        quantity: u64,
        now_ms: i64,
    ) -> Report<u64> {
        let (report, state) = self.call(memory, user_id, now_ms, false, |economy, store, ctx| {
            economy.economy_plugin_rules().call_consume(store, ctx, item_id, quantity)
        });
        let Some(state) = state else { return report };
        let result = report.result.and_then(|remaining| {
            check::consume(&state.moved).map_err(Failure::Rejected)?;
            Ok(remaining)
        });
        if result.is_ok() {
            memory.players.insert(user_id.to_owned(), state.player);
        }
        Report { result, ..report }
    }

    /// Runs one export in a fresh instance over a copy of the player (only
    /// reading it when `read_only`); returns the call's state too when the
    /// guest answered `ok`.
    fn call<T>(
        &self,
        memory: &Memory,
        user_id: &str,
        now_ms: i64,
        read_only: bool,
        export: impl FnOnce(
            &Economy,
            &mut Store<CallState>,
            &types::RequestContext,
        ) -> wasmtime::Result<Result<T, RuleError>>,
    ) -> (Report<T>, Option<CallState>) {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let ctx = types::RequestContext {
            tenant_id: TENANT_ID.to_owned(),
            user_id: user_id.to_owned(),
            request_id: format!("00000000-0000-7000-8000-{call:012x}"),
            now_ms,
        };
        let state = CallState::new(memory, user_id, now_ms, self.limits, read_only);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        let answered = store
            .set_fuel(self.limits.fuel)
            .and_then(|()| self.pre.instantiate(&mut store))
            .and_then(|economy| export(&economy, &mut store, &ctx));
        let fuel_used = self.limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let memory_bytes = state.memory.peak;
        let (result, state) = match answered {
            Ok(Ok(answer)) => (Ok(answer), Some(state)),
            Ok(Err(refusal)) => (Err(Failure::Refused(refusal)), None),
            Err(trap) => {
                let stderr = String::from_utf8_lossy(&state.stderr.contents()).trim().to_owned();
                let cause = trap.root_cause().to_string();
                (
                    Err(Failure::Trapped(if stderr.is_empty() { cause } else { format!("{cause}; stderr: {stderr}") })),
                    None,
                )
            }
        };
        (Report { result, fuel_used, memory_bytes }, state)
    }
}

/// An item as the re-check rules see it.
pub fn rules_item(item: &types::Item) -> economy_core::Item {
    economy_core::Item {
        id: item.id.clone(),
        key: item.key.clone(),
        item_type: match item.item_type {
            types::ItemType::Consumable => economy_core::ItemType::Consumable,
            types::ItemType::Durable => economy_core::ItemType::Durable,
            types::ItemType::Bundle => economy_core::ItemType::Bundle,
        },
        prices: Vec::new(),
        contents: item
            .contents
            .iter()
            .map(|content| match content {
                types::Content::Item(types::ItemQuantity { item_key, quantity }) => {
                    economy_core::Content::Item { item_key: item_key.clone(), quantity: *quantity }
                }
                types::Content::Currency(types::Price { currency_code, amount }) => {
                    economy_core::Content::Currency(economy_core::Price {
                        currency_code: currency_code.clone(),
                        amount: *amount,
                    })
                }
            })
            .collect(),
        duration_seconds: None,
        display_properties: String::new(),
    }
}

/// What one call's store holds: the catalog, its copy of the player, what
/// the guest moved, its limits, and a WASI context that grants nothing: no
/// environment, files or sockets; the clocks read the call's `now`.
pub struct CallState {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) settings: Arc<Map<String, Value>>,
    pub(crate) user_id: String,
    pub(crate) player: Player,
    pub(crate) now_ms: i64,
    pub(crate) moved: check::Moved,
    pub(crate) imports: ImportBudget,
    memory: MemoryCap,
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl CallState {
    fn new(memory: &Memory, user_id: &str, now_ms: i64, limits: Limits, read_only: bool) -> Self {
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(4096);
        let wasi = wasi_context(now_ms, u64::try_from(now_ms).unwrap_or(0), stderr.clone());
        Self {
            catalog: memory.catalog.clone(),
            settings: memory.settings.clone(),
            user_id: user_id.to_owned(),
            player: memory.player(user_id),
            now_ms,
            moved: check::Moved::default(),
            imports: ImportBudget::new(limits.max_import_calls, read_only),
            memory: MemoryCap { max: limits.memory_bytes, peak: 0 },
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory and remembers the most an instance asked for.
struct MemoryCap {
    max: usize,
    peak: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            wasmtime::bail!("the module asked for {desired} bytes of memory; the limit is {}", self.max);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
