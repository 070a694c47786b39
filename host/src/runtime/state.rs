//! What one request's store holds: its transaction, its limits, what the
//! guest did (for the host's re-check), and a WASI context that grants
//! nothing beyond the request: no environment, files or sockets; the clocks
//! read the request's `now` and randomness is seeded by the request id, so a
//! module's decision depends only on its inputs. Stderr is captured into a
//! small buffer for the failure log.

use super::Placement;
use super::journal::Journal;
use crate::catalog::Catalog;
use crate::storage::{NewGrant, StorageError, StorageResult, Tx};
use economy_runner::StoppedClock;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Runs a storage call of the request's transaction for the guest: marks
/// the guest as parked in storage meanwhile (a deadline that passes then is
/// the database's fault), and records a failure as the host's.
macro_rules! storage {
    ($state:ident . tx . $call:ident ( $($arg:expr),* $(,)? )) => {{
        $state.in_storage = true;
        let result = $state.tx.$call($($arg),*).await;
        $state.in_storage = false;
        $state.host(result)?
    }};
}
pub(crate) use storage;

/// How much of a guest's stderr (its panic message) is kept for the log.
const STDERR_CAPTURE_BYTES: usize = 4096;

pub struct RequestState {
    /// The request's transaction; every storage import runs in it.
    pub(crate) tx: Box<dyn Tx>,
    /// The tenant's catalog, as it was when the request began.
    pub(crate) catalog: Arc<Catalog>,
    /// What the guest read and wrote, for the host's re-check.
    pub(crate) journal: Journal,
    /// Grants not written yet: they go out with the purchase record.
    pub(crate) pending_grants: Vec<NewGrant>,
    /// Grants already written (before an inventory read in the same call).
    pub(crate) written_grants: Vec<NewGrant>,
    /// Where the request's grants land.
    pub(crate) placement: Placement,
    /// A storage failure while the guest ran: the host's fault, not the
    /// module's. The guest was trapped with it.
    pub(crate) host_failure: Option<StorageError>,
    /// Whether the guest is parked in a storage call right now.
    pub(crate) in_storage: bool,
    /// Whether the call may only read (a quote).
    pub(crate) read_only: bool,
    import_calls: u32,
    max_import_calls: u32,
    pub(crate) limits: StoreLimits,
    stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl RequestState {
    pub fn new(
        tx: Box<dyn Tx>,
        catalog: Arc<Catalog>,
        memory_bytes: usize,
        max_import_calls: u32,
        now_ms: i64,
        seed: u64,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let now = Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(StoppedClock(now))
            .monotonic_clock(StoppedClock(now))
            .secure_random(SmallRng::seed_from_u64(seed))
            .insecure_random(SmallRng::seed_from_u64(seed))
            .insecure_random_seed(u128::from(seed))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new().memory_size(memory_bytes).trap_on_grow_failure(true).build();
        Self {
            tx,
            catalog,
            journal: Journal::default(),
            pending_grants: Vec::new(),
            written_grants: Vec::new(),
            placement: Placement::default(),
            host_failure: None,
            in_storage: false,
            read_only: false,
            import_calls: 0,
            max_import_calls,
            limits,
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Counts one call of an import that changes storage: a quote changes
    /// nothing (as the world says), so in a quote the guest traps here, before
    /// it takes a lock or writes a row.
    pub(crate) fn charge_change(&mut self, import: &str) -> wasmtime::Result<()> {
        self.charge_import()?;
        if self.read_only {
            wasmtime::bail!("a quote changes nothing, but the module called {import}");
        }
        Ok(())
    }

    /// Counts one storage import call; a guest that calls imports in a loop
    /// traps here instead of holding its transaction open.
    pub(crate) fn charge_import(&mut self) -> wasmtime::Result<()> {
        self.import_calls += 1;
        if self.import_calls > self.max_import_calls {
            wasmtime::bail!("the module made more than {} storage calls", self.max_import_calls);
        }
        Ok(())
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

/// `economy:plugin/types` declares only types.
impl super::bindings::types::Host for RequestState {}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
