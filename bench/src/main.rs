//! Load generator for the economy server. It starts the server (in this
//! process, on its own runtime and threads) on a fresh database, sets up a
//! tenant and catalog over HTTP, then drives purchases, consumes and
//! inventory reads with N concurrent clients for T seconds, in two shapes:
//! spread over many users, and all on one hot user. Beside it, in the same
//! run and against the same PostgreSQL, pgbench runs a purchase done the
//! straightforward way (one statement per round trip) and in one statement.
//! At the end it audits conservation: every acknowledged purchase debited
//! exactly once, ledgers summing to balances, nothing negative.
//!
//! ```console
//! $ cargo run --release -p bench -- --clients 32 --seconds 10
//! $ cargo run --release -p bench -- --clients 1,4,16,32,64 --seconds 5 --chart BENCHMARKS.svg
//! $ cargo run --release -p bench -- --clients 32 --seconds 10 --outage
//! $ cargo run --release -p bench -- --clients 32 --seconds 10 --noisy --rounds 3 [--database sqlite]
//! $ cargo run --release -p bench -- --clients 32 --tenants 1000 [--database sqlite]
//! ```

mod audit;
mod chart;
mod cpu;
mod load;
mod noisy;
mod outage;
mod pgbench;
mod server;
mod tenants;

use clap::Parser;
use economy_tests::database::Backend;
use load::{Measurement, Op};
use std::time::Duration;

/// As the server binary (`economy-host`) allocates.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks the economy server's purchase path beside pgbench")]
struct Args {
    /// A PostgreSQL database to create the bench database from.
    #[arg(long, env = "BENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// The server's store: a fresh PostgreSQL database (from
    /// `--database-url`), or a fresh embedded SQLite file (pgbench, which
    /// speaks only PostgreSQL, is skipped).
    #[arg(long, value_enum, default_value = "postgres")]
    database: Store,
    /// Concurrent clients; a comma-separated list runs a sweep.
    #[arg(long, value_delimiter = ',', default_value = "32")]
    clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Users in the spread shape.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// The server's database pool size.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Write an SVG chart of throughput and latency against client count.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
    /// Skip the pgbench baselines.
    #[arg(long)]
    skip_pgbench: bool,
    /// Only these runs (e.g. `--only purchase-spread` to profile one).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Run>,
    /// Instead of the sweep, measure what a tenant's database outage costs
    /// the other tenants: purchases of the bench tenant (default database)
    /// beside those of a tenant on a PostgreSQL cluster of its own (started
    /// here with `initdb`), before and while that cluster is stopped.
    #[arg(long)]
    outage: bool,
    /// Instead of the sweep, measure what a noisy tenant costs a quiet one:
    /// the bench tenant's mix of purchases, consumes, reads and store pages
    /// alone, then while another tenant on the same host and database
    /// attacks every resource they share (see `noisy.rs`).
    #[arg(long)]
    noisy: bool,
    /// With `--noisy`: runs alone and beside the noisy tenant, alternated
    /// this many times and totalled.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Instead of the sweep, measure what many tenants cost one host: this
    /// many tenants, each with a module of its own, on a server in a
    /// process of its own; each tenant's first purchase after a restart,
    /// and the server's memory (see `tenants.rs`).
    #[arg(long)]
    tenants: Option<usize>,
    /// Serve this database on `--listen` until killed: the server process
    /// of `--tenants`.
    #[arg(long, hide = true, requires = "listen")]
    serve: Option<String>,
    #[arg(long, hide = true)]
    listen: Option<String>,
}

/// The server's store.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum Store {
    Postgres,
    Sqlite,
}

/// One measurement of the sweep, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum Run {
    PurchaseSpread,
    SverseSpread,
    PlayfabSpread,
    PurchaseHot,
    Consume,
    Inventory,
    Wallet,
    StorePage,
    Mix,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let (Some(database_url), Some(listen)) = (&args.serve, &args.listen) {
        return server::serve(database_url, listen);
    }
    let duration = Duration::from_secs(args.seconds);
    let backend = match args.database {
        Store::Postgres => Backend::Postgres,
        Store::Sqlite => Backend::Sqlite,
    };
    if let Some(tenants) = args.tenants {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        return runtime.block_on(async {
            let database = server::bench_database(&args.database_url, backend).await;
            let clients = args.clients.first().copied().unwrap_or(32);
            tenants::run(&database.url, tenants, clients).await
        });
    }
    let server = server::Server::start(&args.database_url, backend, args.pool_size)?;
    let system = match backend {
        Backend::Postgres => "economy-host",
        Backend::Sqlite => "economy-host (SQLite)",
    };
    let client_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("load").enable_all().build()?;
    client_runtime.block_on(async {
        let shop = server.set_up(args.users).await?;
        let mut rows: Vec<Measurement> = Vec::new();
        let mut ledger = audit::Expected::default();
        println!("{}", Measurement::header());
        if args.noisy {
            let clients = args.clients.first().copied().unwrap_or(32);
            noisy::run(&server, &shop, clients, args.rounds, duration, &mut rows, &mut ledger).await?;
            audit::check(&server.pool, &shop, &ledger).await?;
            return anyhow::Ok(());
        }
        if args.outage {
            let clients = args.clients.first().copied().unwrap_or(32);
            outage::run(&server, &shop, clients, duration, &mut rows, &mut ledger).await?;
            audit::check(&server.pool, &shop, &ledger).await?;
            return anyhow::Ok(());
        }
        for &clients in &args.clients {
            let wanted = |run: Run| args.only.is_empty() || args.only.contains(&run);
            for (run, shape, players) in
                [(Run::PurchaseSpread, "spread", &shop.spread[..]), (Run::PurchaseHot, "hot", &shop.hot[..])]
            {
                if !wanted(run) {
                    continue;
                }
                let run = load::run(&shop, players, Op::Purchase, clients, duration).await;
                ledger.add(&run);
                rows.push(run.measurement(system, shape));
                println!("{}", rows.last().expect("a row"));
                // pgbench's scripts run on a database of their own, not a Citus schema.
                if !args.skip_pgbench && backend == Backend::Postgres && !server.database.citus {
                    for script in [pgbench::Script::RoundTrips, pgbench::Script::OneStatement] {
                        let users = if shape == "hot" { 1 } else { args.users };
                        rows.push(pgbench::run(&server.database.url, script, users, clients, duration, shape)?);
                        println!("{}", rows.last().expect("a row"));
                    }
                }
            }
            for (run, op) in [
                (Run::SverseSpread, Op::SversePurchase),
                (Run::PlayfabSpread, Op::PlayFabPurchase),
                (Run::Consume, Op::Consume),
                (Run::Inventory, Op::Inventory),
                (Run::Wallet, Op::Wallet),
                (Run::StorePage, Op::StorePage),
                (Run::Mix, Op::Mix),
            ] {
                if !wanted(run) {
                    continue;
                }
                let (shape, players) = ("spread", &shop.spread[..]);
                let run = load::run(&shop, players, op, clients, duration).await;
                ledger.add(&run);
                rows.push(run.measurement(system, shape));
                println!("{}", rows.last().expect("a row"));
            }
        }
        audit::check(&server.pool, &shop, &ledger).await?;
        println!("\n{}", Measurement::ratios(&rows));
        if let Some(path) = &args.chart {
            std::fs::write(path, chart::svg(&rows))?;
            println!("chart written to {}", path.display());
        }
        anyhow::Ok(())
    })?;
    server.stop();
    Ok(())
}
