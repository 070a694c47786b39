//! The in-memory embedder (`economy-runner`): the shared scenarios against
//! the built-in rules, the re-check and the limits against the hostile
//! module, and the command line a module author runs.

use economy_runner::scenario::{self, Scenario};
use economy_runner::{Failure, Limits, PurchaseRequest, Runner};
use economy_tests::components::{HOSTILE, LEGACY, VIP_PRICING};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn builtin() -> Runner {
    Runner::new(economy_host::runtime::ECONOMY_CORE_WASM).expect("the built-in rules compile")
}

/// The rules a scenario is written for.
fn rules_of(scenario: &Scenario) -> Runner {
    match scenario.rules.as_deref() {
        None => builtin(),
        Some("vip-pricing") => Runner::new(VIP_PRICING).expect("the VIP module compiles"),
        Some(other) => panic!("no example module {other}"),
    }
}

#[test]
fn every_shared_scenario_answers_in_memory_as_the_scenario_says() {
    let scenarios = Scenario::all_in(&scenarios_dir()).expect("the scenarios read");
    assert!(scenarios.len() >= 7, "the scenarios are found");
    for (name, scenario) in &scenarios {
        let outcome = scenario::run(&rules_of(scenario), scenario).expect("the scenario runs");
        for step in &outcome.steps {
            assert!(step.passed(), "{name}: {}: expected {}, answered {}", step.step, step.expected, step.answer);
            assert!(step.fuel_used > 0 && step.memory_bytes > 0, "{name}: every call reports its cost");
        }
        assert!(outcome.end_differences.is_empty(), "{name}: {:?}", outcome.end_differences);
    }
}

#[test]
fn the_vip_scenarios_need_the_vip_module_and_the_players_attributes() {
    let by_identity = Scenario::from_file(&scenarios_dir().join("vip-by-identity.json")).unwrap();
    let outcome = scenario::run(&builtin(), &by_identity).unwrap();
    assert_eq!(outcome.steps[1].answer["unit_price"], 10, "the built-in rules give no VIP price");
    let mut revoked = Scenario::from_file(&scenarios_dir().join("vip-by-attribute.json")).unwrap();
    revoked.player.attributes.insert("vip".into(), json!(false));
    revoked.player.identity = Some("vip-9".into());
    let outcome = scenario::run(&rules_of(&revoked), &revoked).unwrap();
    assert_eq!(outcome.steps[0].answer["unit_price"], 10, "vip: false outranks the vip- identity");
    revoked.player.attributes.clear();
    let outcome = scenario::run(&rules_of(&revoked), &revoked).unwrap();
    assert_eq!(outcome.steps[0].answer["unit_price"], 8, "without the attribute the identity decides");
}

#[test]
fn an_answer_other_than_the_scenarios_fails_it() {
    let runner = builtin();
    let mut scenario = Scenario::from_file(&scenarios_dir().join("catalog-prices.json")).unwrap();
    scenario.steps[1].expect = json!({"balance_after": 71});
    let outcome = scenario::run(&runner, &scenario).unwrap();
    assert!(!outcome.passed() && !outcome.steps[1].passed() && outcome.steps[0].passed());
    let mut scenario = Scenario::from_file(&scenarios_dir().join("catalog-prices.json")).unwrap();
    scenario.end.as_mut().unwrap().balances.insert("gems".into(), 11);
    let outcome = scenario::run(&runner, &scenario).unwrap();
    assert_eq!(outcome.end_differences, vec![("balance gems".to_owned(), 11, 10)]);
}

/// A tenant of the hostile module: one item per behaviour, 10 gems each,
/// and a player with 1,000 gems.
fn hostile_scenario(keys: &[&str], steps: serde_json::Value) -> Scenario {
    let items: Vec<_> = keys
        .iter()
        .map(|key| json!({"key": key, "name": key, "item_type": "consumable", "prices": [{"currency_code": "gems", "amount": 10}]}))
        .collect();
    serde_json::from_value(json!({
        "description": "the hostile module",
        "currencies": [{"code": "gems", "name": "Gems", "initial_balance": 1000}],
        "items": items,
        "steps": steps,
    }))
    .unwrap()
}

#[test]
fn what_the_rules_moved_is_rechecked_and_a_module_that_misbehaves_commits_nothing() {
    let runner = Runner::new(HOSTILE).unwrap().with_limits(Limits { fuel: 50_000_000, ..Limits::default() });
    let scenario = hostile_scenario(&["mint", "skim", "negative", "bad-ids", "honest"], json!([]));
    let mut memory = economy_runner::Memory::new(scenario.catalog().unwrap());
    let buy = |memory: &mut economy_runner::Memory, key: &str| {
        let item_id = memory.catalog.item_by_key(key).unwrap().id.clone();
        let request = PurchaseRequest { item_id, currency_code: "gems".into(), store_id: None, quantity: 1 };
        runner.purchase(memory, scenario::PLAYER, &request, scenario::DEFAULT_NOW_MS)
    };
    for key in ["mint", "skim", "negative"] {
        let report = buy(&mut memory, key);
        assert!(matches!(report.result, Err(Failure::Rejected(_))), "{key}: {:?}", report.result);
        assert_eq!(report.result.unwrap_err().code(), "MODULE_FAILED");
        assert_eq!(memory.balance(scenario::PLAYER, "gems"), Some(1000), "{key}: nothing was committed");
        assert_eq!(memory.held(scenario::PLAYER, key, scenario::DEFAULT_NOW_MS), 0);
    }
    // Ids naming nothing are answered as for nothing, never with a trap.
    let report = buy(&mut memory, "bad-ids");
    assert_eq!(report.result.map(|outcome| outcome.unit_price).ok(), Some(1), "every import answered as for nothing");
    let report = buy(&mut memory, "honest");
    assert_eq!(report.result.map(|outcome| outcome.balance_after).ok(), Some(989));
}

#[test]
fn the_limits_stop_a_module_and_say_which() {
    let runner = Runner::new(HOSTILE).unwrap();
    let scenario = hostile_scenario(
        &["loop", "alloc", "flood", "trap"],
        json!([
            {"purchase": {"item": "loop", "currency_code": "gems"}, "expect": {"error": "MODULE_FAILED"}},
            {"purchase": {"item": "alloc", "currency_code": "gems"}, "expect": {"error": "MODULE_FAILED"}},
            {"purchase": {"item": "flood", "currency_code": "gems"}, "expect": {"error": "MODULE_FAILED"}},
            {"quote": {"item": "trap", "currency_code": "gems"}, "expect": {"error": "MODULE_FAILED"}},
        ]),
    );
    let outcome = scenario::run(&runner, &scenario).unwrap();
    assert!(outcome.passed(), "{:?}", outcome.steps);
    assert_eq!(outcome.steps[0].fuel_used, Limits::default().fuel, "the loop burned all its fuel");
    let mut memory = economy_runner::Memory::new(scenario.catalog().unwrap());
    let request = |key: &str| PurchaseRequest {
        item_id: memory.catalog.item_by_key(key).unwrap().id.clone(),
        currency_code: "gems".into(),
        store_id: None,
        quantity: 1,
    };
    let (alloc, flood, trap) = (request("alloc"), request("flood"), request("trap"));
    let reasons: Vec<String> = [alloc, flood, trap]
        .iter()
        .map(|request| match runner.purchase(&mut memory, scenario::PLAYER, request, 0).result {
            Err(Failure::Trapped(reason)) => reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(reasons[0].contains("memory"), "{}", reasons[0]);
    assert!(reasons[1].contains("more than 1000 storage calls"), "{}", reasons[1]);
    assert!(reasons[2].contains("panics on purpose"), "{}", reasons[2]);
}

#[test]
fn a_quote_that_would_change_storage_traps() {
    let runner = Runner::new(HOSTILE).unwrap();
    let scenario = hostile_scenario(&["mint"], json!([]));
    let memory = economy_runner::Memory::new(scenario.catalog().unwrap());
    let item_id = memory.catalog.item_by_key("mint").unwrap().id.clone();
    let request = PurchaseRequest { item_id, currency_code: "gems".into(), store_id: None, quantity: 1 };
    match runner.quote(&memory, scenario::PLAYER, &request, 0).result {
        Err(Failure::Trapped(reason)) => {
            assert!(reason.contains("a quote changes nothing, but the module called wallet.credit"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// `economy-runner`, next to this test's binary.
fn runner_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("economy-runner")
}

#[test]
fn the_command_line_runs_scenarios_and_reports_each_calls_cost() {
    let dir = std::env::temp_dir().join(format!("economy-runner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let component = dir.join("rules.wasm");
    std::fs::write(&component, economy_host::runtime::ECONOMY_CORE_WASM).unwrap();
    let run = |args: &[&Path]| Command::new(runner_binary()).args(args).output().expect("economy-runner runs");

    let builtin_scenarios: Vec<PathBuf> = Scenario::all_in(&scenarios_dir())
        .unwrap()
        .into_iter()
        .filter(|(_, scenario)| scenario.rules.is_none())
        .map(|(name, _)| scenarios_dir().join(format!("{name}.json")))
        .collect();
    let args: Vec<&Path> =
        std::iter::once(component.as_path()).chain(builtin_scenarios.iter().map(PathBuf::as_path)).collect();
    let passed = run(&args);
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{stdout}{}", String::from_utf8_lossy(&passed.stderr));
    assert!(stdout.contains("store-overrides-and-caps") && stdout.contains("fuel") && stdout.contains("KiB"));
    assert!(!stdout.contains("FAIL"), "{stdout}");

    let mut wrong: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scenarios_dir().join("consume.json")).unwrap()).unwrap();
    wrong["steps"][3]["expect"] = json!({"remaining": 2});
    let wrong_file = dir.join("wrong.json");
    std::fs::write(&wrong_file, wrong.to_string()).unwrap();
    let failed = run(&[&component, &wrong_file]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL consume 2 × potion") && stdout.contains("expected remaining: 2"), "{stdout}");

    let not_a_component = run(&[&wrong_file, &wrong_file]);
    assert_eq!(not_a_component.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_a_component.stderr).starts_with("economy-runner: "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_component_of_the_first_version_of_the_contract_runs_in_memory() {
    let runner = Runner::new(LEGACY).expect("a 0.1.0 component links against the 0.1.1 imports");
    let scenario: Scenario = serde_json::from_value(json!({
        "description": "everything is free",
        "currencies": [{"code": "gems", "name": "Gems", "initial_balance": 50}],
        "items": [{"key": "sword", "name": "Sword", "item_type": "durable", "prices": [{"currency_code": "gems", "amount": 100}]}],
        "steps": [{"purchase": {"item": "sword", "currency_code": "gems"}, "expect": {"unit_price": 0, "total": 0, "balance_after": 50}}],
        "end": {"balances": {"gems": 50}, "holdings": {"sword": 1}},
    }))
    .unwrap();
    assert!(scenario::run(&runner, &scenario).unwrap().passed());
}
