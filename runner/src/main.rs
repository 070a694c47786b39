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
    let runner = Runner::from_file(&args.component)?.with_limits(limits);
    println!("{} (sha256 {})", args.component.display(), runner.sha256());
    if let Some(calls) = args.bench {
        bench(&runner, calls)?;
        return Ok(true);
    }
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

/// Times `calls` purchases of a one-gem potion by a rich player, each a new
/// instance of the component and one `purchase` call with its re-check.
fn bench(runner: &Runner, calls: usize) -> anyhow::Result<()> {
    let scenario: Scenario = serde_json::from_value(serde_json::json!({
        "description": "per-call cost",
        "currencies": [{"code": "gems", "name": "Gems", "initial_balance": 1_000_000_000_000_i64}],
        "items": [{"key": "potion", "name": "Potion", "item_type": "consumable", "prices": [{"currency_code": "gems", "amount": 1}]}],
        "steps": [],
    }))?;
    let mut memory = economy_runner::Memory::new(scenario.catalog()?);
    let item_id = memory.catalog.item_by_key("potion").map(|item| item.id.clone()).unwrap_or_default();
    let request =
        economy_runner::PurchaseRequest { item_id, currency_code: "gems".into(), store_id: None, quantity: 1 };
    let mut micros = Vec::with_capacity(calls);
    for _ in 0..calls.max(1) {
        let started = std::time::Instant::now();
        let report = runner.purchase(&mut memory, scenario::PLAYER, &request, scenario.now_ms());
        micros.push(started.elapsed().as_secs_f64() * 1e6);
        if let Err(failure) = report.result {
            anyhow::bail!("the purchase failed: {failure:?}");
        }
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    println!("{} purchases (new instance + purchase): p50 {:.0} µs, p99 {:.0} µs", micros.len(), at(0.5), at(0.99));
    Ok(())
}
