//! The wasmtime side: one engine with a pooling allocator, the compiled
//! rules modules, and one fresh instance per request. A request's store
//! owns its snapshot of the player while the guest runs (no connection,
//! lock or writer is held meanwhile) and hands it back afterwards, with a
//! journal of what the guest did, so the caller re-checks it and decides
//! to commit it or not.
//!
//! Limits per call ([`CallLimits`]): fuel, a wall-clock deadline, linear
//! memory and the number of storage calls; the wasm stack is capped for the
//! whole engine.

mod bindings;
mod catalog;
mod history;
mod inventory;
mod journal;
mod player;
mod shares;
mod state;
mod wallet;
mod world;

pub use bindings::types::{RequestContext, RuleError};
pub use bindings::{PriceQuote, PurchaseOutcome, PurchaseRequest};
pub use journal::{Journal, PurchaseCheck};
pub use player::PlayerContext;
pub use state::RequestState;

use crate::catalog::Catalog;
use crate::commit::Snapshot;
use crate::storage::{LimitOverrides, NewGrant, StackKey, StorageError, User};
use bindings::{Economy, EconomyPre};
use economy_runner::sandbox::ImportBudget;
use sha2::{Digest, Sha256};
use shares::CallShares;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig, Store,
};

/// The default rules, built from `economy-core/` by `build.rs`.
pub static ECONOMY_CORE_WASM: &[u8] = include_bytes!(env!("ECONOMY_CORE_WASM"));

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How much of an instance's tables and fiber stack stays mapped between
/// requests, and of its linear memory when dirty pages are not scanned.
const KEEP_RESIDENT_BYTES: usize = 64 << 10;
/// How much of an instance's linear memory stays mapped between requests
/// when only its dirty pages are reset: a Rust guest's stack ends at 1 MiB,
/// and its data and heap follow.
const KEEP_RESIDENT_SCANNED_BYTES: usize = 2 << 20;
/// How long past its deadline a call parked in a host import may run
/// before it is abandoned.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);
/// What one component may instantiate: core module instances, linear
/// memories and tables (a Rust rules module has 3, 1 and 2). The pool holds
/// this much for each instance alive at once, so no component can take
/// another's share; an upload past a cap is refused, naming it.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 8;
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 2;
pub const MAX_TABLES_PER_COMPONENT: u32 = 4;

impl RequestContext {
    /// The context of request `request_id` for `user`, at the current time.
    pub fn for_request(user: &User, request_id: uuid::Uuid) -> Self {
        Self {
            tenant_id: user.tenant_id.to_string(),
            user_id: user.id.to_string(),
            request_id: request_id.to_string(),
            now_ms: chrono::Utc::now().timestamp_millis(),
        }
    }
}

/// The host's default limits for rules modules.
#[derive(Clone, Debug)]
pub struct RuntimeLimits {
    /// Fuel per call (roughly, wasm instructions).
    pub fuel: u64,
    /// Wall-clock time a call may take, storage waits included.
    pub deadline: Duration,
    /// Linear memory a module may grow to (also the pool's per-instance cap).
    pub memory_bytes: usize,
    /// Wasm stack a module may use (engine-wide).
    pub stack_bytes: usize,
    /// Storage import calls per call.
    pub max_import_calls: u32,
    /// Instances alive at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Instances one tenant may hold at once (none: a quarter of
    /// `max_instances`); a call past its tenant's share waits for one of the
    /// tenant's own calls to end.
    pub tenant_instances: Option<u32>,
    /// Time on the host's cores one tenant's calls may take each second
    /// (none: a tenth of the host's cores); a tenant past it waits for its
    /// time to come back.
    pub tenant_cpu_per_second: Option<Duration>,
    /// How long a call waits for an instance before its tenant is told the
    /// host is busy.
    pub instance_wait: Duration,
    /// The compiled modules kept in memory, in bytes of their artifacts:
    /// past it, the least recently used are dropped (and loaded again from
    /// their stored artifacts when next used).
    pub module_cache_bytes: usize,
    /// Fuel and epoch deadlines. Only the benchmarks turn this off, to
    /// measure what metering costs; the server always meters.
    pub metering: bool,
    /// Reset a finished instance's memory by finding the pages it dirtied
    /// (Linux's `PAGEMAP_SCAN`, where the kernel has it) and restoring only
    /// those, keeping them mapped; otherwise a fixed prefix is restored and
    /// the rest unmapped, to fault back in on the next request. Only the
    /// benchmarks turn this off, to measure what it saves.
    pub scan_dirty_pages: bool,
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
            tenant_instances: None,
            tenant_cpu_per_second: None,
            instance_wait: Duration::from_secs(1),
            module_cache_bytes: 64 << 20,
            metering: true,
            scan_dirty_pages: true,
        }
    }
}

impl RuntimeLimits {
    /// Instances one tenant may hold at once.
    pub fn tenant_instances(&self) -> u32 {
        self.tenant_instances.unwrap_or(self.max_instances / 4).clamp(1, self.max_instances.max(1))
    }

    /// Time on the host's cores one tenant's calls may take each second.
    pub fn tenant_cpu_per_second(&self) -> Duration {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        self.tenant_cpu_per_second.unwrap_or(Duration::from_millis(100) * cores as u32)
    }

    /// The limits of one call, with a tenant's overrides applied. Memory
    /// never exceeds what the pool reserved per instance.
    pub fn for_call(&self, overrides: &LimitOverrides) -> CallLimits {
        let positive = |value: Option<i64>| value.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0);
        CallLimits {
            fuel: positive(overrides.fuel).unwrap_or(self.fuel),
            deadline: positive(overrides.deadline_ms).map_or(self.deadline, Duration::from_millis),
            memory_bytes: positive(overrides.memory_bytes)
                .map_or(self.memory_bytes, |m| usize::try_from(m).unwrap_or(usize::MAX).min(self.memory_bytes)),
            max_import_calls: overrides
                .max_import_calls
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(self.max_import_calls),
        }
    }
}

/// The limits one call runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLimits {
    pub fuel: u64,
    pub deadline: Duration,
    pub memory_bytes: usize,
    pub max_import_calls: u32,
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

/// Why a call ended without an answer from the guest, and whose fault it is.
#[derive(Debug)]
pub enum CallFailure {
    /// The module trapped, ran out of a limit, or could not be instantiated.
    Module(ModuleFailure),
    /// Storage failed while the module ran (the guest was trapped with it),
    /// or the call's deadline passed while the guest waited on storage: the
    /// host's fault, never blamed on the module.
    Host(StorageError),
}

/// Who runs a call: the module, its limits, the catalog it reads, and the
/// request context.
pub struct Call<'a> {
    pub module: &'a RulesModule,
    pub limits: &'a CallLimits,
    pub catalog: &'a Arc<Catalog>,
    pub ctx: RequestContext,
    /// Who the player is to the game, and the tenant's module settings.
    pub player: PlayerContext,
    /// Where the request's grants land.
    pub placement: Placement,
    /// Whether the call may only read (set for quotes).
    pub read_only: bool,
}

impl Call<'_> {
    pub fn placed(self, placement: Placement) -> Self {
        Self { placement, ..self }
    }
}

/// Where a request's grants land, as the caller asked: which stack, the
/// display properties of a stack the request creates, and the longest a
/// granted stack may last. The rules decide what is granted; this only
/// places it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    pub stack: StackKey,
    pub display_properties: Option<serde_json::Value>,
    /// Granted stacks expire at most this long after the grant.
    pub max_duration_seconds: Option<i64>,
    /// The bundle purchase the grants are the contents of (set by the
    /// host, never by a caller).
    pub bundle_purchase_id: Option<uuid::Uuid>,
}

impl Placement {
    /// A grant's duration here: the caller may ask for a shorter-lived
    /// stack, never a longer one.
    pub fn duration(&self, own: Option<i64>) -> Option<i64> {
        match (own, self.max_duration_seconds) {
            (Some(own), Some(max)) => Some(own.min(max)),
            (own, max) => own.or(max),
        }
    }

    /// A grant of `quantity` of the item into this placement's stack.
    pub fn grant(&self, item_id: uuid::Uuid, quantity: i64, acquired_via: String, duration: Option<i64>) -> NewGrant {
        NewGrant {
            stack: self.stack.clone(),
            display_properties: self.display_properties.clone(),
            bundle_purchase_id: self.bundle_purchase_id,
            ..NewGrant::new(item_id, quantity, acquired_via, self.duration(duration))
        }
    }
}

/// What a call returns: the snapshot back (with what the guest changed),
/// what the guest did for the re-check, and its answer.
pub struct Invocation<R> {
    pub snapshot: Snapshot,
    pub journal: Journal,
    pub result: Result<R, CallFailure>,
    /// The fuel the call burned (none when the host does not meter).
    pub fuel_used: Option<u64>,
}

#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<RequestState>,
    limits: RuntimeLimits,
    /// Each tenant's share of the instances, and the host's.
    shares: CallShares,
    default_module: Arc<RulesModule>,
    /// The built-in component: the reference for the world's export types.
    world: Component,
}

type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Runtime {
    /// Builds the engine and linker, starts the epoch ticker, and compiles
    /// the built-in `economy-core` module.
    pub fn new(limits: RuntimeLimits) -> wasmtime::Result<Self> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(limits.max_instances)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .total_core_instances(limits.max_instances * MAX_CORE_INSTANCES_PER_COMPONENT)
            .total_memories(limits.max_instances * MAX_MEMORIES_PER_COMPONENT)
            .total_tables(limits.max_instances * MAX_TABLES_PER_COMPONENT)
            .total_stacks(limits.max_instances)
            .max_memory_size(limits.memory_bytes)
            // Reset what a request dirtied with memset instead of madvise, so
            // the next request does not page-fault it back in.
            .pagemap_scan(if limits.scan_dirty_pages { Enabled::Auto } else { Enabled::No })
            .linear_memory_keep_resident(if limits.scan_dirty_pages {
                KEEP_RESIDENT_SCANNED_BYTES
            } else {
                KEEP_RESIDENT_BYTES
            })
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            .async_stack_keep_resident(KEEP_RESIDENT_BYTES);
        let mut config = Config::new();
        config
            .consume_fuel(limits.metering)
            .epoch_interruption(limits.metering)
            .max_wasm_stack(limits.stack_bytes)
            // Host imports run on the fiber stack too, with sqlx futures on it.
            .async_stack_size(limits.stack_bytes + (4 << 20))
            // One compilation takes one core: a tenant's upload never takes
            // the whole machine from the others' requests.
            .parallel_compilation(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Economy::add_to_linker::<_, HasSelf<RequestState>>(&mut linker, |state| state)?;

        spawn_epoch_ticker(&engine);
        let component = Component::new(&engine, ECONOMY_CORE_WASM)?;
        let default_module = Arc::new(prepare(&linker, &component, hex::encode(Sha256::digest(ECONOMY_CORE_WASM)))?);
        let shares = CallShares::new(
            limits.max_instances as usize,
            limits.tenant_instances() as usize,
            limits.tenant_cpu_per_second(),
            limits.instance_wait,
        );
        Ok(Self { inner: Arc::new(Inner { engine, linker, limits, shares, default_module, world: component }) })
    }

    /// The built-in rules.
    pub fn default_module(&self) -> Arc<RulesModule> {
        self.inner.default_module.clone()
    }

    /// The host's default limits.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.inner.limits
    }

    /// Identifies the engine's compilation settings: an artifact compiled by
    /// one engine loads only into an engine with the same hash.
    pub fn engine_hash(&self) -> String {
        let mut hasher = std::hash::DefaultHasher::new();
        self.inner.engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{}-{:016x}", env!("CARGO_PKG_VERSION"), hasher.finish())
    }

    /// Compiles a component (slow: run it off the request path), checks it
    /// implements the economy world (its imports against the linker, its
    /// exports against the built-in component's), and returns it with its
    /// serialized artifact. The error says what is wrong, for the uploader.
    pub fn compile(&self, bytes: &[u8]) -> wasmtime::Result<(RulesModule, Vec<u8>)> {
        let component = Component::new(&self.inner.engine, bytes)?;
        world::check_exports(&self.inner.engine, &self.inner.world, &component).map_err(wasmtime::Error::msg)?;
        let module = prepare(&self.inner.linker, &component, hex::encode(Sha256::digest(bytes)))?;
        Ok((module, component.serialize()?))
    }

    /// Loads an artifact that [`Runtime::compile`] produced.
    pub fn load_artifact(&self, sha256: &str, artifact: &[u8]) -> wasmtime::Result<RulesModule> {
        #[expect(unsafe_code, reason = "artifacts come only from this host's own compile(), kept in its own database")]
        // SAFETY: the bytes are a component serialized by `Component::serialize`
        // on an engine with the same compatibility hash (the artifact table is
        // keyed by it); wasmtime checks the header before use.
        let component = unsafe { Component::deserialize(&self.inner.engine, artifact)? };
        prepare(&self.inner.linker, &component, sha256.to_owned())
    }

    pub async fn purchase(
        &self,
        call: Call<'_>,
        snapshot: Snapshot,
        request: PurchaseRequest,
    ) -> Invocation<Result<PurchaseOutcome, RuleError>> {
        self.call(call, snapshot, move |instance, store, ctx| {
            Box::pin(async move { instance.economy_plugin_rules().call_purchase(store, ctx, &request).await })
        })
        .await
    }

    pub async fn quote(
        &self,
        call: Call<'_>,
        snapshot: Snapshot,
        request: PurchaseRequest,
    ) -> Invocation<Result<PriceQuote, RuleError>> {
        let call = Call { read_only: true, ..call };
        self.call(call, snapshot, move |instance, store, ctx| {
            Box::pin(async move { instance.economy_plugin_rules().call_quote(store, ctx, &request).await })
        })
        .await
    }

    pub async fn consume(
        &self,
        call: Call<'_>,
        snapshot: Snapshot,
        item_id: String,
        quantity: u64,
    ) -> Invocation<Result<u64, RuleError>> {
        self.call(call, snapshot, move |instance, store, ctx| {
            Box::pin(async move { instance.economy_plugin_rules().call_consume(store, ctx, &item_id, quantity).await })
        })
        .await
    }

    /// Runs one export in a fresh store holding `snapshot`, under the
    /// limits. The guest's clock reads the snapshot's time.
    async fn call<R>(
        &self,
        call: Call<'_>,
        snapshot: Snapshot,
        export: impl for<'a> FnOnce(&'a Economy, &'a mut Store<RequestState>, &'a RequestContext) -> CallFuture<'a, R>,
    ) -> Invocation<R> {
        let Call { module, limits, catalog, mut ctx, player, placement, read_only } = call;
        ctx.now_ms = snapshot.at().timestamp_millis();
        // The tenant's place among the host's instances: a tenant past its
        // share is busy by itself, never failed as its module's fault.
        let place = match self.inner.shares.enter(&ctx.tenant_id).await {
            Ok(place) => place,
            Err(full) => {
                let busy = CallFailure::Host(StorageError::Busy(full.to_string()));
                return Invocation { snapshot, journal: Journal::default(), result: Err(busy), fuel_used: None };
            }
        };
        // Everything the call costs, from its store to the reset of its
        // instance, is charged to its tenant's time on the cores.
        let ran = async {
            let seed = u64::from_le_bytes(Sha256::digest(ctx.request_id.as_bytes())[..8].try_into().expect("8 bytes"));
            let imports = ImportBudget::new(limits.max_import_calls, read_only);
            let mut state =
                RequestState::new(snapshot, catalog.clone(), limits.memory_bytes, imports, ctx.now_ms, seed);
            state.placement = placement;
            state.player = player;
            let mut store = Store::new(&self.inner.engine, state);
            store.limiter(|state| &mut state.limits);
            let metered = if self.inner.limits.metering {
                store.epoch_deadline_trap();
                store.set_epoch_deadline(deadline_ticks(limits.deadline));
                store.set_fuel(limits.fuel)
            } else {
                Ok(())
            };
            let result = async {
                metered?;
                let instance = module.pre.instantiate_async(&mut store).await?;
                // The epoch deadline stops running wasm; this stops a guest
                // parked in a host call (a lock wait, a WASI pollable).
                let deadline = limits.deadline + DEADLINE_GRACE;
                match tokio::time::timeout(deadline, export(&instance, &mut store, &ctx)).await {
                    Ok(result) => result,
                    Err(_) => Err(wasmtime::format_err!("the call passed its {:?} deadline", limits.deadline)),
                }
            }
            .await;
            let fuel_used = match self.inner.limits.metering {
                true => store.get_fuel().ok().map(|left| limits.fuel.saturating_sub(left)),
                false => None,
            };
            (result, fuel_used, store.into_data())
        };
        let ((result, fuel_used, mut state), on_cores) = timed_on_cores(ran).await;
        place.ran(on_cores);
        state.journal.grants = state.snapshot.grants().map(|grant| (grant.item_id, grant.quantity)).collect();
        let result = match (result, state.host_failure.take()) {
            (_, Some(failure)) => Err(CallFailure::Host(failure)),
            // The pool is the host's: a full one is never the module's fault.
            (Err(error), None) if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
                Err(CallFailure::Host(StorageError::Busy(format!("the host's instance pool is full: {error}"))))
            }
            (Err(_), None) if state.in_storage => Err(CallFailure::Host(StorageError::Busy(format!(
                "a storage call outlasted the call's {:?} deadline",
                limits.deadline
            )))),
            (Ok(answer), None) => Ok(answer),
            (Err(error), None) => {
                let stderr = state.stderr();
                // The root cause names the limit or the trap; the wasm
                // backtrace before it is noise in a one-line log.
                let cause = error.root_cause();
                let message = if stderr.is_empty() { cause.to_string() } else { format!("{cause}; stderr: {stderr}") };
                Err(CallFailure::Module(ModuleFailure { sha256: module.sha256.clone(), message }))
            }
        };
        Invocation { snapshot: state.snapshot, journal: state.journal, result, fuel_used }
    }
}

/// Runs `future`, adding up the CPU time its polls took on their thread:
/// the time it ran on a core, not the time it waited or was preempted.
async fn timed_on_cores<T>(future: impl Future<Output = T>) -> (T, Duration) {
    let mut future = std::pin::pin!(future);
    let mut on_cores = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let started = thread_cpu_time();
        let poll = future.as_mut().poll(cx);
        on_cores += thread_cpu_time().saturating_sub(started);
        poll
    })
    .await;
    (output, on_cores)
}

/// The CPU time the current thread has run.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn prepare(linker: &Linker<RequestState>, component: &Component, sha256: String) -> wasmtime::Result<RulesModule> {
    let pre = EconomyPre::new(linker.instantiate_pre(component)?)?;
    Ok(RulesModule { sha256, pre })
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
