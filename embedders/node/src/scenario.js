// The shared scenarios (`scenarios/*.json` at the repository's root): the
// catalog in the admin API's shapes, a player's steps, the answers expected.
// Ids are given as the Rust runner gives them, so every embedder describes
// a scenario the same way.

import { readFileSync, readdirSync } from "node:fs";
import { join, basename } from "node:path";
import { Memory } from "./memory.js";

export const PLAYER = "00000000-0000-4000-8000-00000000000a";
export const UNKNOWN_ID = "00000000-0000-4000-8000-0000000000ff";
export const DEFAULT_NOW_MS = 1_767_225_600_000;

const id = (kind, n) => `00000000-0000-4000-8${kind.toString(16).padStart(3, "0")}-${n.toString(16).padStart(12, "0")}`;

/** Every scenario of `dir`, by file name. */
export function allScenarios(dir) {
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => [basename(file, ".json"), JSON.parse(readFileSync(join(dir, file), "utf8"))]);
}

const big = (value, otherwise) => (value === undefined || value === null ? otherwise : BigInt(value));
const prices = (list) => (list ?? []).map((p) => ({ currencyCode: p.currency_code, amount: BigInt(p.amount) }));

/** The scenario's catalog, in the shapes of `economy:plugin/types`. */
export function catalog(scenario) {
  const currencies = scenario.currencies.map((c) => ({
    code: c.code,
    name: c.name,
    initialBalance: big(c.initial_balance, 0n),
    maxBalance: big(c.max_balance, undefined),
  }));
  const items = scenario.items.map((item, n) => ({
    id: id(1, n),
    key: item.key,
    name: item.name,
    itemType: item.item_type,
    category: item.category ?? undefined,
    prices: prices(item.prices),
    contents: (item.contents ?? []).map((content) =>
      content.item_key !== undefined
        ? { tag: "item", val: { itemKey: content.item_key, quantity: big(content.quantity, 1n) } }
        : { tag: "currency", val: { currencyCode: content.currency_code, amount: BigInt(content.amount) } },
    ),
    durationSeconds: big(item.duration_seconds, undefined),
    displayProperties: JSON.stringify(item.display_properties ?? {}),
  }));
  const stores = (scenario.stores ?? []).map((store, n) => ({
    id: id(2, n),
    key: store.key,
    listings: (store.listings ?? []).flatMap((listing) => {
      const item = items.find((item) => item.key === listing.item_key);
      if (!item) return [];
      return [{
        storeId: id(2, n),
        storeKey: store.key,
        itemId: item.id,
        overridePrices: prices(listing.override_prices),
        maxPurchasesPerUser: big(listing.max_purchases_per_user, undefined),
        purchasable: listing.purchasable ?? true,
      }];
    }),
  }));
  return { items, stores, currencies };
}

/** The step in words, as every embedder writes it. */
export function describe(step) {
  const verb = Object.keys(step).find((key) => key !== "expect");
  const action = step[verb];
  const quantity = action.quantity ?? 1;
  if (verb === "consume") return `consume ${quantity} × ${action.item}`;
  const store = action.store ? ` in ${action.store}` : "";
  return `${verb} ${quantity} × ${action.item} in ${action.currency_code}${store}`;
}

/** Whether `answer` has every field `expected` names, equal. */
export function matches(expected, answer) {
  return Object.entries(expected).every(([field, value]) => JSON.stringify(answer[field]) === JSON.stringify(value));
}

const numbers = (fields) =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v]));

/** Runs `scenario` with `rules` in a fresh memory; each step's answer and time. */
export function run(rules, scenario) {
  const memory = new Memory(catalog(scenario));
  memory.settings = { ...(scenario.settings ?? {}) };
  memory.setPlayer(PLAYER, scenario.player?.identity, scenario.player?.attributes);
  const nowMs = scenario.now_ms ?? DEFAULT_NOW_MS;
  const itemId = (key) => memory.itemByKey(key)?.id ?? UNKNOWN_ID;
  const steps = scenario.steps.map((step) => {
    const started = process.hrtime.bigint();
    let answer;
    if (step.consume) {
      const { item, quantity } = step.consume;
      answer = rules.consume(memory, PLAYER, itemId(item), BigInt(quantity ?? 1), nowMs);
      answer = answer.error ? { error: answer.error } : { remaining: Number(answer.ok) };
    } else {
      const action = step.purchase ?? step.quote;
      const request = {
        itemId: itemId(action.item),
        currencyCode: action.currency_code,
        storeId: action.store === undefined ? undefined : (memory.storeByKey(action.store)?.id ?? UNKNOWN_ID),
        quantity: BigInt(action.quantity ?? 1),
      };
      answer = step.purchase
        ? rules.purchase(memory, PLAYER, request, nowMs)
        : rules.quote(memory, PLAYER, request, nowMs);
      answer = answer.error ? { error: answer.error } : numbers(answer.ok);
      // The WIT names are camel-cased by jco; the scenarios use the API's.
      answer = Object.fromEntries(
        Object.entries(answer).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
      );
    }
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    return { step: describe(step), expected: step.expect, answer, micros };
  });
  const end = scenario.end ?? {};
  const differences = [];
  for (const [code, expected] of Object.entries(end.balances ?? {})) {
    const found = Number(memory.balance(PLAYER, code) ?? 0n);
    if (found !== expected) differences.push(`balance ${code}: expected ${expected}, found ${found}`);
  }
  for (const [key, expected] of Object.entries(end.holdings ?? {})) {
    const found = Number(memory.held(PLAYER, key, BigInt(nowMs)));
    if (found !== expected) differences.push(`holding ${key}: expected ${expected}, found ${found}`);
  }
  return { steps, differences };
}
