//! `economy-runner`: runs scenarios against a rules component, locally, with
//! the fuel and memory of every call.

use clap::Parser;
use economy_runner::Runner;
use economy_runner::scenario::{self, Scenario};
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
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Fuel per call.
    #[arg(long, default_value_t = economy_runner::Limits::default().fuel)]
    fuel: u64,
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
    let runner = Runner::from_file(&args.component)?.with_limits(limits);
    println!("{} (sha256 {})", args.component.display(), runner.sha256());
    let mut scenarios = Vec::new();
    for path in &args.scenarios {
        match path.is_dir() {
            true => scenarios.extend(Scenario::all_in(path)?),
            false => scenarios.push((path.display().to_string(), Scenario::from_file(path)?)),
        }
    }
    let mut passed = true;
    for (name, scenario) in &scenarios {
        let outcome = scenario::run(&runner, scenario)?;
        println!("\n{name}: {}", scenario.description);
        for step in &outcome.steps {
            let mark = if step.passed() { "ok  " } else { "FAIL" };
            println!(
                "  {mark} {:<40} {:<60} fuel {:>9}  memory {:>5} KiB",
                step.step,
                scenario::fields(&step.answer),
                step.fuel_used,
                step.memory_bytes / 1024
            );
            if !step.passed() {
                println!("       expected {}", scenario::fields(&step.expected));
            }
        }
        for (what, expected, found) in &outcome.end_differences {
            println!("  FAIL at the end, {what}: expected {expected}, found {found}");
        }
        passed &= outcome.passed();
    }
    Ok(passed)
}
