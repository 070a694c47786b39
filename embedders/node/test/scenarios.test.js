// The shared scenarios against the rules component transpiled by jco, with
// the storage imports in JavaScript: the same answers as from the server
// and from the Rust runner.

import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { Rules } from "../src/rules.js";
import { allScenarios, matches, run } from "../src/scenario.js";

const here = dirname(fileURLToPath(import.meta.url));
const scenariosDir = join(here, "../../../scenarios");
const rules = await Rules.load(join(here, "../generated"));
// The example modules scenarios are written for (`"rules"`), transpiled by `npm run transpile-examples`.
const examples = { "vip-pricing": await Rules.load(join(here, "../generated/vip-pricing")) };
const rulesOf = (scenario) => (scenario.rules === undefined ? rules : examples[scenario.rules]);
const scenarios = allScenarios(scenariosDir);

test("the scenarios are found", () => {
  assert.ok(scenarios.length >= 7, `${scenarios.length} scenarios in ${scenariosDir}`);
});

for (const [name, scenario] of scenarios) {
  test(`${name}: ${scenario.description}`, () => {
    assert.ok(rulesOf(scenario), `the rules ${scenario.rules} are loaded`);
    const outcome = run(rulesOf(scenario), scenario);
    for (const step of outcome.steps) {
      assert.ok(
        matches(step.expected, step.answer),
        `${step.step}: expected ${JSON.stringify(step.expected)}, answered ${JSON.stringify(step.answer)}`,
      );
    }
    assert.deepEqual(outcome.differences, []);
  });
}

test("the VIP module reads the player's attributes over its identity", () => {
  const [, scenario] = scenarios.find(([name]) => name === "vip-by-attribute");
  const revoked = structuredClone(scenario);
  revoked.player = { identity: "vip-9", attributes: { vip: false } };
  assert.equal(run(examples["vip-pricing"], revoked).steps[0].answer.unit_price, 10);
  revoked.player.attributes = {};
  assert.equal(run(examples["vip-pricing"], revoked).steps[0].answer.unit_price, 8);
});

test("an answer other than the scenario's fails it", () => {
  const [, scenario] = scenarios.find(([name]) => name === "catalog-prices");
  const wrong = structuredClone(scenario);
  wrong.steps[1].expect = { balance_after: 71 };
  wrong.end.balances.gems = 11;
  const outcome = run(rules, wrong);
  assert.equal(matches(outcome.steps[1].expected, outcome.steps[1].answer), false);
  assert.deepEqual(outcome.differences, ["balance gems: expected 11, found 10"]);
});

test("the re-check refuses a purchase that moved other than the catalog says", async () => {
  const { checkPurchase } = await import("../src/rules.js");
  const { Memory } = await import("../src/memory.js");
  const { catalog } = await import("../src/scenario.js");
  const [, bundles] = scenarios.find(([name]) => name === "bundles");
  const memory = new Memory(catalog(bundles));
  const big = memory.itemByKey("big");
  const [potion, shield] = [memory.itemByKey("potion").id, memory.itemByKey("shield").id];
  const request = { itemId: big.id, currencyCode: "gems", quantity: 2n };
  const outcome = { unitPrice: 100n, total: 200n, balanceAfter: 840n };
  const honest = {
    debits: [["gems", 200n]],
    credits: [["gems", 40n], ["coins", 100n]],
    grants: [[potion, 12n], [shield, 2n]],
  };
  assert.equal(checkPurchase(memory, request, outcome, honest), undefined);
  const wrongs = {
    skim: { ...honest, debits: [["gems", 201n]] },
    mint: { ...honest, credits: [...honest.credits, ["gems", 1n]] },
    extra: { ...honest, grants: [[potion, 13n], [shield, 2n]] },
  };
  for (const [what, moved] of Object.entries(wrongs)) {
    assert.ok(checkPurchase(memory, request, outcome, moved), `${what} is refused`);
  }
  assert.ok(checkPurchase(memory, request, { ...outcome, total: 199n }, honest), "a total other than price × quantity");
});
