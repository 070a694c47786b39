//! What one request's store holds: its transaction, its limits, and a WASI
//! context that grants nothing (no environment, files, sockets or stdin;
//! stderr is captured into a small buffer for the failure log).

use crate::storage::Tx;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How much of a guest's stderr (its panic message) is kept for the log.
const STDERR_CAPTURE_BYTES: usize = 4096;

pub struct RequestState {
    /// The request's transaction; every storage import runs in it.
    pub(crate) tx: Box<dyn Tx>,
    import_calls: u32,
    max_import_calls: u32,
    pub(crate) limits: StoreLimits,
    stderr: MemoryOutputPipe,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl RequestState {
    pub fn new(tx: Box<dyn Tx>, memory_bytes: usize, max_import_calls: u32) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        Self {
            tx,
            import_calls: 0,
            max_import_calls,
            limits,
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Counts one storage import call; a guest that calls imports in a loop
    /// traps here instead of holding its transaction open.
    pub(crate) fn charge_import(&mut self) -> wasmtime::Result<()> {
        self.import_calls += 1;
        if self.import_calls > self.max_import_calls {
            wasmtime::bail!(
                "the module made more than {} storage calls",
                self.max_import_calls
            );
        }
        Ok(())
    }

    /// What the guest wrote to stderr, lossily decoded.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim_end()
            .to_owned()
    }
}

/// `economy:plugin/types` declares only types.
impl super::bindings::types::Host for RequestState {}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
