// Times purchases of a one-gem potion by a rich player, each a new instance
// of the component and one `purchase` call with its re-check:
// `npm run bench [-- CALLS]` (after `npm test` or `npm run transpile`).

import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { Rules } from "./src/rules.js";
import { Memory } from "./src/memory.js";
import { PLAYER, DEFAULT_NOW_MS, catalog } from "./src/scenario.js";

const calls = Number(process.argv[2] ?? 2000);
const rules = await Rules.load(join(dirname(fileURLToPath(import.meta.url)), "generated"));
const memory = new Memory(catalog({
  currencies: [{ code: "gems", name: "Gems", initial_balance: 1_000_000_000_000 }],
  items: [{ key: "potion", name: "Potion", item_type: "consumable", prices: [{ currency_code: "gems", amount: 1 }] }],
}));
const request = { itemId: memory.itemByKey("potion").id, currencyCode: "gems", quantity: 1n };
const micros = [];
for (let n = 0; n < calls; n++) {
  const started = process.hrtime.bigint();
  const answer = rules.purchase(memory, PLAYER, request, DEFAULT_NOW_MS);
  micros.push(Number(process.hrtime.bigint() - started) / 1000);
  if (answer.error) throw new Error(`the purchase failed: ${JSON.stringify(answer)}`);
}
micros.sort((a, b) => a - b);
const at = (q) => micros[Math.round((micros.length - 1) * q)];
console.log(`${calls} purchases (new instance + purchase): p50 ${at(0.5).toFixed(0)} µs, p99 ${at(0.99).toFixed(0)} µs`);
