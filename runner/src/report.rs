//! What the command lines print (`economy-runner`, and `economy-host module
//! test`): each scenario step's answer with the fuel and memory it used,
//! and the per-call cost of a purchase.

use crate::scenario::{self, Scenario};
use crate::{Limits, Memory, PurchaseRequest, Runner};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the scenarios at `paths` (files, or folders of `*.json`) against
/// the component at `component`, writing each step to `out`; true when
/// every answer is the scenario's.
pub fn run_files(component: &Path, paths: &[PathBuf], limits: Limits, out: &mut impl Write) -> anyhow::Result<bool> {
    let runner = Runner::from_file(component)?.with_limits(limits);
    writeln!(out, "{} (sha256 {})", component.display(), runner.sha256())?;
    let mut scenarios = Vec::new();
    for path in paths {
        match path.is_dir() {
            true => scenarios.extend(Scenario::all_in(path)?),
            false => scenarios.push((path.display().to_string(), Scenario::from_file(path)?)),
        }
    }
    if scenarios.is_empty() {
        anyhow::bail!("no scenario found in {paths:?}");
    }
    let mut passed = true;
    for (name, scenario) in &scenarios {
        let outcome = scenario::run(&runner, scenario)?;
        writeln!(out, "\n{name}: {}", scenario.description)?;
        for step in &outcome.steps {
            let mark = if step.passed() { "ok  " } else { "FAIL" };
            writeln!(
                out,
                "  {mark} {:<40} {:<60} fuel {:>9}  memory {:>5} KiB",
                step.step,
                scenario::fields(&step.answer),
                step.fuel_used,
                step.memory_bytes / 1024
            )?;
            if !step.passed() {
                writeln!(out, "       expected {}", scenario::fields(&step.expected))?;
            }
        }
        for (what, expected, found) in &outcome.end_differences {
            writeln!(out, "  FAIL at the end, {what}: expected {expected}, found {found}")?;
        }
        passed &= outcome.passed();
    }
    Ok(passed)
}

/// Times `calls` purchases of a one-gem potion by a rich player, each a new
/// instance of the component and one `purchase` call with its re-check,
/// and writes the median and the 99th percentile.
pub fn bench(component: &Path, calls: usize, limits: Limits, out: &mut impl Write) -> anyhow::Result<()> {
    let runner = Runner::from_file(component)?.with_limits(limits);
    let scenario: Scenario = serde_json::from_value(serde_json::json!({
        "description": "per-call cost",
        "currencies": [{"code": "gems", "name": "Gems", "initial_balance": 1_000_000_000_000_i64}],
        "items": [{"key": "potion", "name": "Potion", "item_type": "consumable", "prices": [{"currency_code": "gems", "amount": 1}]}],
        "steps": [],
    }))?;
    let mut memory = Memory::new(scenario.catalog()?);
    let item_id = memory.catalog.item_by_key("potion").map(|item| item.id.clone()).unwrap_or_default();
    let request = PurchaseRequest { item_id, currency_code: "gems".into(), store_id: None, quantity: 1 };
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
    writeln!(
        out,
        "{} purchases (new instance + purchase): p50 {:.0} µs, p99 {:.0} µs",
        micros.len(),
        at(0.5),
        at(0.99)
    )?;
    Ok(())
}
