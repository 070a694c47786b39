//! What a wasmtime embedder of the rules gives each call, shared by this
//! runner and the economy server: a WASI context that grants nothing but a
//! clock stopped at the call's time and seeded randomness, and a budget of
//! storage import calls that also keeps a quote from changing anything.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::time::Duration;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

/// A WASI context with no environment, files or sockets: the clocks read
/// `now_ms` and never move, randomness comes from `seed`, and stderr goes to
/// `stderr` (for the failure log).
pub fn wasi_context(now_ms: i64, seed: u64, stderr: MemoryOutputPipe) -> WasiCtx {
    let now = Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    WasiCtx::builder()
        .stderr(stderr)
        .wall_clock(StoppedClock(now))
        .monotonic_clock(StoppedClock(now))
        .secure_random(SmallRng::seed_from_u64(seed))
        .insecure_random(SmallRng::seed_from_u64(seed))
        .insecure_random_seed(u128::from(seed))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// Both WASI clocks, stopped at a request's time: a guest sees time stand
/// still for its whole call.
pub struct StoppedClock(pub Duration);

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The storage import calls one call may make.
#[derive(Clone, Copy, Debug)]
pub struct ImportBudget {
    used: u32,
    max: u32,
    /// A quote: it may only read.
    read_only: bool,
}

impl ImportBudget {
    pub fn new(max: u32, read_only: bool) -> Self {
        Self { used: 0, max, read_only }
    }

    /// Counts one storage import call; a guest that calls imports in a loop
    /// traps here instead of holding its transaction open.
    pub fn charge(&mut self) -> wasmtime::Result<()> {
        self.used += 1;
        if self.used > self.max {
            wasmtime::bail!("the module made more than {} storage calls", self.max);
        }
        Ok(())
    }

    /// Counts one call of an import that changes storage: a quote changes
    /// nothing (as the world says), so in a quote the guest traps here,
    /// before it takes a lock or writes anything.
    pub fn charge_change(&mut self, import: &str) -> wasmtime::Result<()> {
        self.charge()?;
        if self.read_only {
            wasmtime::bail!("a quote changes nothing, but the module called {import}");
        }
        Ok(())
    }
}
