//! Where the CPU goes: clock ticks of this process's server threads, its
//! load threads, and every PostgreSQL process, read from `/proc` before and
//! after a run (Linux only; elsewhere every figure is 0).

use std::fs;

/// CPU seconds used so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub server: f64,
    pub load: f64,
    pub postgres: f64,
}

/// Clock ticks per second on Linux (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

impl Cpu {
    pub fn now() -> Self {
        let mut cpu = Self::default();
        for (name, seconds) in threads("/proc/self/task") {
            if name.starts_with("server") || name.starts_with("wasm-epoch") {
                cpu.server += seconds;
            } else if name.starts_with("load") {
                cpu.load += seconds;
            }
        }
        cpu.postgres =
            threads("/proc").filter(|(name, _)| name.starts_with("postgres")).map(|(_, seconds)| seconds).sum();
        cpu
    }

    pub fn since(self, start: Self) -> Self {
        Self {
            server: self.server - start.server,
            load: self.load - start.load,
            postgres: self.postgres - start.postgres,
        }
    }
}

/// `(command name, CPU seconds)` of every entry of a `/proc`-like directory.
fn threads(dir: &str) -> impl Iterator<Item = (String, f64)> {
    fs::read_dir(dir).into_iter().flatten().flatten().filter_map(|entry| {
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime and cstime are fields 14 to 17 of stat; `rest`
        // starts at field 3. Children's times count too: the postmaster
        // collects those of backends that ended (pgbench's, at the end of
        // its run).
        let ticks: f64 = fields.get(11..15)?.iter().map(|field| field.parse::<f64>().unwrap_or(0.0)).sum();
        Some((name.to_owned(), ticks / TICKS_PER_SECOND))
    })
}
