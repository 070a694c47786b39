//! The wasmtime side: one engine with a pooling allocator, the compiled
//! rules modules, and one fresh instance per request. A request's store
//! owns its transaction while the guest runs and hands it back afterwards,
//! so the caller decides to commit or roll back.
//!
//! Limits per call (all in [`RuntimeLimits`]): fuel, a wall-clock epoch
//! deadline, linear memory, wasm stack, and the number of storage calls.

mod bindings;
mod catalog;
mod history;
mod inventory;
mod state;
mod wallet;

pub use bindings::types::{RequestContext, RuleError};
pub use bindings::{PriceQuote, PurchaseOutcome, PurchaseRequest};
pub use state::RequestState;

use crate::storage::Tx;
use bindings::{Economy, EconomyPre};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// The default rules, built from `economy-core/` by `build.rs`.
pub static ECONOMY_CORE_WASM: &[u8] = include_bytes!(env!("ECONOMY_CORE_WASM"));

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-call limits for rules modules.
#[derive(Clone, Debug)]
pub struct RuntimeLimits {
    /// Fuel per call (roughly, wasm instructions).
    pub fuel: u64,
    /// Wall-clock time a call may take, storage waits included.
    pub deadline: Duration,
    /// Linear memory a module may grow to.
    pub memory_bytes: usize,
    /// Wasm stack a module may use.
    pub stack_bytes: usize,
    /// Storage import calls per call.
    pub max_import_calls: u32,
    /// Instances alive at once (the pooling allocator's size).
    pub max_instances: u32,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000,
            deadline: Duration::from_secs(5),
            memory_bytes: 16 << 20,
            stack_bytes: 512 << 10,
            max_import_calls: 1_000,
            max_instances: 128,
        }
    }
}

/// A compiled rules module, ready to instantiate.
pub struct RulesModule {
    /// Hex SHA-256 of the component's bytes.
    pub sha256: String,
    pre: EconomyPre<RequestState>,
}

/// Why a module call failed: a trap, exhaustion of a limit, or an
/// instantiation failure. The request is rolled back.
#[derive(Debug)]
pub struct ModuleFailure {
    pub sha256: String,
    pub message: String,
}

/// What a call returns: the transaction back, and the guest's answer.
pub struct Invocation<R> {
    pub tx: Box<dyn Tx>,
    pub result: Result<R, ModuleFailure>,
}

#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<RequestState>,
    limits: RuntimeLimits,
    instances: Semaphore,
    default_module: Arc<RulesModule>,
}

type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Runtime {
    /// Builds the engine and linker, starts the epoch ticker, and compiles
    /// the built-in `economy-core` module.
    pub fn new(limits: RuntimeLimits) -> wasmtime::Result<Self> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances * 8)
            .total_memories(limits.max_instances * 2)
            .total_tables(limits.max_instances * 4)
            .total_stacks(limits.max_instances)
            .max_memory_size(limits.memory_bytes);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.stack_bytes)
            // Host imports run on the fiber stack too, with sqlx futures on it.
            .async_stack_size(limits.stack_bytes + (4 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Economy::add_to_linker::<_, HasSelf<RequestState>>(&mut linker, |state| state)?;

        spawn_epoch_ticker(&engine);
        let default_module = Arc::new(compile(&engine, &linker, ECONOMY_CORE_WASM)?);
        let instances = Semaphore::new(limits.max_instances as usize);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                instances,
                default_module,
            }),
        })
    }

    /// The built-in rules.
    pub fn default_module(&self) -> Arc<RulesModule> {
        self.inner.default_module.clone()
    }

    /// Compiles a component and checks it implements the economy world.
    pub fn compile(&self, bytes: &[u8]) -> wasmtime::Result<RulesModule> {
        compile(&self.inner.engine, &self.inner.linker, bytes)
    }

    pub async fn purchase(
        &self,
        module: &RulesModule,
        tx: Box<dyn Tx>,
        ctx: RequestContext,
        request: PurchaseRequest,
    ) -> Invocation<Result<PurchaseOutcome, RuleError>> {
        self.call(module, tx, move |instance, store| {
            Box::pin(async move {
                instance
                    .economy_plugin_rules()
                    .call_purchase(store, &ctx, &request)
                    .await
            })
        })
        .await
    }

    pub async fn quote(
        &self,
        module: &RulesModule,
        tx: Box<dyn Tx>,
        ctx: RequestContext,
        request: PurchaseRequest,
    ) -> Invocation<Result<PriceQuote, RuleError>> {
        self.call(module, tx, move |instance, store| {
            Box::pin(async move {
                instance
                    .economy_plugin_rules()
                    .call_quote(store, &ctx, &request)
                    .await
            })
        })
        .await
    }

    pub async fn consume(
        &self,
        module: &RulesModule,
        tx: Box<dyn Tx>,
        ctx: RequestContext,
        item_id: String,
        quantity: u64,
    ) -> Invocation<Result<u64, RuleError>> {
        self.call(module, tx, move |instance, store| {
            Box::pin(async move {
                instance
                    .economy_plugin_rules()
                    .call_consume(store, &ctx, &item_id, quantity)
                    .await
            })
        })
        .await
    }

    /// Runs one export in a fresh store holding `tx`, under the limits.
    async fn call<R>(
        &self,
        module: &RulesModule,
        tx: Box<dyn Tx>,
        export: impl for<'a> FnOnce(&'a Economy, &'a mut Store<RequestState>) -> CallFuture<'a, R>,
    ) -> Invocation<R> {
        let limits = &self.inner.limits;
        let _permit = self
            .inner
            .instances
            .acquire()
            .await
            .expect("the instance semaphore is never closed");
        let mut store = Store::new(
            &self.inner.engine,
            RequestState::new(tx, limits.memory_bytes, limits.max_import_calls),
        );
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        let result = match store.set_fuel(limits.fuel) {
            Ok(()) => match module.pre.instantiate_async(&mut store).await {
                Ok(instance) => export(&instance, &mut store).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let state = store.into_data();
        let result = result.map_err(|error| {
            let stderr = state.stderr();
            let message = if stderr.is_empty() {
                format!("{error:#}")
            } else {
                format!("{error:#}; stderr: {stderr}")
            };
            ModuleFailure {
                sha256: module.sha256.clone(),
                message,
            }
        });
        Invocation {
            tx: state.tx,
            result,
        }
    }
}

fn compile(
    engine: &Engine,
    linker: &Linker<RequestState>,
    bytes: &[u8],
) -> wasmtime::Result<RulesModule> {
    let component = Component::new(engine, bytes)?;
    let pre = EconomyPre::new(linker.instantiate_pre(&component)?)?;
    Ok(RulesModule {
        sha256: hex::encode(Sha256::digest(bytes)),
        pre,
    })
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// Advances the engine's epoch every tick until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("the epoch thread starts");
}
