// The smallest complete embedding of the rules in Node.js: a catalog of one
// currency and one item, kept in memory, and one purchase.
// `node example.js` (after `npm test` or `npm run transpile`).

import { Rules } from "./src/rules.js";
import { Memory } from "./src/memory.js";

const rules = await Rules.load(new URL("generated", import.meta.url).pathname);
const potion = {
  id: "7b0c7d64-1d0b-4d9f-9d43-2f4f3f1a0c01", key: "potion", name: "Potion", itemType: "consumable",
  prices: [{ currencyCode: "gems", amount: 30n }], contents: [], displayProperties: "{}",
};
const memory = new Memory({
  items: [potion],
  stores: [],
  currencies: [{ code: "gems", name: "Gems", initialBalance: 100n }],
});
const nowMs = 1_767_225_600_000;
const answer = rules.purchase(memory, "player-1", { itemId: potion.id, currencyCode: "gems", quantity: 2n }, nowMs);
console.log(answer);
console.log(`gems left: ${memory.balance("player-1", "gems")}, potions held: ${memory.held("player-1", "potion", BigInt(nowMs))}`);
