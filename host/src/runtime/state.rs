//! What one request's store holds: its snapshot of the player, its limits,
//! what the guest did (for the host's re-check), and a WASI context that grants
//! nothing beyond the request: no environment, files or sockets; the clocks
//! read the request's `now` and randomness is seeded by the request id, so a
//! module's decision depends only on its inputs. Stderr is captured into a
//! small buffer for the failure log.

use super::Placement;
use super::journal::Journal;
use super::player::PlayerContext;
use crate::catalog::Catalog;
use crate::commit::Snapshot;
use crate::storage::{NewGrant, StorageError, StorageResult};
use economy_runner::sandbox::{ImportBudget, wasi_context};
use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Runs a storage call of the request's snapshot for the guest: marks the
/// guest as parked in storage meanwhile (a deadline that passes then is the
/// database's fault), and records a failure as the host's.
macro_rules! storage {
    ($state:ident . snapshot . $call:ident ( $($arg:expr),* $(,)? )) => {{
        $state.in_storage = true;
        let result = $state.snapshot.$call($($arg),*).await;
        $state.in_storage = false;
        $state.host(result)?
    }};
}
pub(crate) use storage;

/// How much of a guest's stderr (its panic message) is kept for the log.
const STDERR_CAPTURE_BYTES: usize = 4096;

pub struct RequestState {
    /// The request's view of the player: every storage import reads it and
    /// records its changes in it; nothing is written while the guest runs.
    pub(crate) snapshot: Snapshot,
    /// The tenant's catalog, as it was when the request began.
    pub(crate) catalog: Arc<Catalog>,
    /// What the guest read and wrote, for the host's re-check.
    pub(crate) journal: Journal,
    /// Every grant of the call, merged by item: what the grant caps count.
    pub(crate) granted: Vec<NewGrant>,
    /// Where the request's grants land.
    pub(crate) placement: Placement,
    /// Who the player is to the game, and the tenant's module settings.
    pub(crate) player: PlayerContext,
    /// A storage failure while the guest ran: the host's fault, not the
    /// module's. The guest was trapped with it.
    pub(crate) host_failure: Option<StorageError>,
    /// Whether the guest is parked in a storage call right now.
    pub(crate) in_storage: bool,
    /// The storage import calls left, and whether the call may only read.
    imports: ImportBudget,
    pub(crate) limits: CallMemory,
    stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl RequestState {
    pub fn new(
        snapshot: Snapshot,
        catalog: Arc<Catalog>,
        memory_bytes: usize,
        imports: ImportBudget,
        now_ms: i64,
        seed: u64,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = wasi_context(now_ms, seed, stderr.clone());
        let limits = CallMemory { limit_bytes: memory_bytes, used_bytes: 0 };
        Self {
            snapshot,
            catalog,
            journal: Journal::default(),
            granted: Vec::new(),
            placement: Placement::default(),
            player: PlayerContext::default(),
            host_failure: None,
            in_storage: false,
            imports,
            limits,
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Counts one storage import call (see [`ImportBudget`]).
    pub(crate) fn charge_import(&mut self) -> wasmtime::Result<()> {
        self.imports.charge()
    }

    /// Counts one call of an import that changes storage; in a quote, the
    /// guest traps.
    pub(crate) fn charge_change(&mut self, import: &str) -> wasmtime::Result<()> {
        self.imports.charge_change(import)
    }

    /// Passes a storage result to the guest; a failure is recorded as the
    /// host's and traps the guest (the request is rolled back).
    pub(crate) fn host<T>(&mut self, result: StorageResult<T>) -> wasmtime::Result<T> {
        result.map_err(|failure| {
            let trap = wasmtime::format_err!("storage failed: {failure}");
            self.host_failure.get_or_insert(failure);
            trap
        })
    }

    /// What the guest wrote to stderr, lossily decoded.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The linear memory of one call: all its memories together (a component
/// may have more than one) within the call's limit. Growing past it traps
/// the guest, with the limit in the message.
pub(crate) struct CallMemory {
    limit_bytes: usize,
    used_bytes: usize,
}

impl ResourceLimiter for CallMemory {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let used = self.used_bytes.saturating_add(desired.saturating_sub(current));
        if used > self.limit_bytes {
            wasmtime::bail!("the module's linear memory would pass its limit of {} bytes", self.limit_bytes);
        }
        self.used_bytes = used;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Bounded by the pool's per-table size.
        Ok(true)
    }
}

/// `economy:plugin/types` declares only types.
impl super::bindings::types::Host for RequestState {}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
