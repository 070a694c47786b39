//! `economy-runner`: runs scenarios against a rules component, locally, with
//! the fuel and memory of every call.

use clap::Parser;
use economy_runner::report;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs each scenario (a JSON file, or every `*.json` of a folder) against
/// the component, in memory, and prints each step's answer with the fuel
/// and memory it used. Exits with 1 when any answer differs from the
/// scenario's.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The rules component (`.wasm`).
    component: PathBuf,
    /// Scenario files or folders.
    #[arg(required_unless_present = "bench")]
    scenarios: Vec<PathBuf>,
    /// Fuel per call.
    #[arg(long, default_value_t = economy_runner::Limits::default().fuel)]
    fuel: u64,
    /// Instead of scenarios: time this many purchases, each in a new
    /// instance, and print the median and the 99th percentile.
    #[arg(long)]
    bench: Option<usize>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("economy-runner: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    let limits = economy_runner::Limits { fuel: args.fuel, ..Default::default() };
    let mut out = std::io::stdout().lock();
    match args.bench {
        Some(calls) => {
            report::bench(&args.component, calls, limits, &mut out)?;
            Ok(true)
        }
        None => report::run_files(&args.component, &args.scenarios, limits, &mut out),
    }
}
