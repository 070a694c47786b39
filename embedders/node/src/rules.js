// The economy rules component, embedded: each call gets a fresh instance
// whose storage imports work on a copy of the player; the copy is kept only
// when the rules succeed and what they moved passes the re-check (the rules
// every embedder applies, as `economy_core::check` states them).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";
import { storageImports } from "./memory.js";

/** How deep bundles may nest. */
const MAX_BUNDLE_DEPTH = 8;

/** The API error code of each `rule-error` case. */
export const RULE_ERROR_CODES = {
  "not-found": "NOT_FOUND",
  "no-price": "NO_PRICE",
  "not-purchasable": "NOT_PURCHASABLE",
  "max-purchases-reached": "MAX_PURCHASES_REACHED",
  "insufficient-balance": "INSUFFICIENT_BALANCE",
  "max-balance-exceeded": "MAX_BALANCE_EXCEEDED",
  "not-consumable": "NOT_CONSUMABLE",
  "insufficient-quantity": "INSUFFICIENT_QUANTITY",
  invalid: "VALIDATION_FAILED",
};

/** How a call ended: `{ok: value}`, or `{error: CODE, reason}`. */
function refused(ruleError) {
  return { error: RULE_ERROR_CODES[ruleError.tag] ?? "MODULE_FAILED", reason: ruleError.val };
}

function failed(reason) {
  return { error: "MODULE_FAILED", reason };
}

export class Rules {
  /**
   * @param {string} generated the folder `jco transpile --instantiation sync` wrote
   * @param {string} name the `--name` it was given
   */
  static async load(generated, name = "economy") {
    const { instantiate } = await import(join(generated, `${name}.js`));
    const modules = new Map();
    const getCoreModule = (path) => {
      if (!modules.has(path)) modules.set(path, new WebAssembly.Module(readFileSync(join(generated, path))));
      return modules.get(path);
    };
    return new Rules(instantiate, getCoreModule);
  }

  constructor(instantiate, getCoreModule) {
    this.instantiate = instantiate;
    this.getCoreModule = getCoreModule;
    this.wasi = new WASIShim().getImportObject();
    this.calls = 0;
  }

  /** Runs `exportCall` on a fresh instance over a copy of the player. */
  call(memory, userId, nowMs, exportCall, readOnly = false) {
    const player = memory.player(userId);
    const moved = { debits: [], credits: [], grants: [] };
    const imports = { ...this.wasi, ...storageImports(memory, player, BigInt(nowMs), moved, readOnly) };
    const ctx = {
      tenantId: "00000000-0000-4000-8000-000000000001",
      userId,
      requestId: `00000000-0000-7000-8000-${(this.calls++).toString(16).padStart(12, "0")}`,
      nowMs: BigInt(nowMs),
    };
    try {
      const { rules } = this.instantiate(this.getCoreModule, imports);
      return { ok: exportCall(rules, ctx), player, moved };
    } catch (error) {
      if (error && Object.hasOwn(error, "payload")) return refused(error.payload);
      return failed(String(error?.message ?? error));
    }
  }

  /** Buys as `userId` at `nowMs`; committed to `memory` only if it passes the re-check. */
  purchase(memory, userId, request, nowMs) {
    const answer = this.call(memory, userId, nowMs, (rules, ctx) => rules.purchase(ctx, request));
    if (answer.error) return answer;
    const outcome = answer.ok;
    const problem = checkPurchase(memory, request, outcome, answer.moved);
    if (problem) return failed(`the rules moved what the catalog does not: ${problem}`);
    const bought = answer.player.itemPurchases.get(request.itemId) ?? 0n;
    answer.player.itemPurchases.set(request.itemId, bought + request.quantity);
    memory.players.set(userId, answer.player);
    return { ok: outcome };
  }

  /** Quotes as `userId` at `nowMs`; nothing is committed, and an import that changes storage traps. */
  quote(memory, userId, request, nowMs) {
    const answer = this.call(memory, userId, nowMs, (rules, ctx) => rules.quote(ctx, request), true);
    return answer.error ? answer : { ok: answer.ok };
  }

  /** Consumes as `userId` at `nowMs`; committed only if no money moved. */
  consume(memory, userId, itemId, quantity, nowMs) {
    const answer = this.call(memory, userId, nowMs, (rules, ctx) => rules.consume(ctx, itemId, quantity));
    if (answer.error) return answer;
    const { debits, credits, grants } = answer.moved;
    if (debits.length || credits.length || grants.length) return failed("a consume moved money or granted items");
    memory.players.set(userId, answer.player);
    return { ok: answer.ok };
  }
}

/**
 * The re-check of a purchase: a unit price and balance of at least zero, a
 * total of exactly unit price × quantity, exactly one debit of the total in
 * the purchase's currency (none when free), and grants and credits summing
 * to exactly the item's expansion. Returns what is wrong, or nothing.
 */
export function checkPurchase(memory, request, outcome, moved) {
  const { unitPrice, total, balanceAfter } = outcome;
  if (unitPrice < 0n || balanceAfter < 0n) return `negative unit price ${unitPrice} or balance ${balanceAfter}`;
  if (unitPrice * request.quantity !== total) return `total ${total} is not ${unitPrice} × ${request.quantity}`;
  const debits = JSON.stringify(moved.debits.map(([code, amount]) => [code, String(amount)]));
  const expectedDebits = JSON.stringify(total > 0n ? [[request.currencyCode, String(total)]] : []);
  if (debits !== expectedDebits) return `debited ${debits}, expected ${expectedDebits}`;
  const item = memory.itemById(request.itemId);
  if (!item) return "the rules bought an item the catalog does not have";
  const expansion = { items: new Map(), currencies: new Map() };
  const problem = expand(memory, item, request.quantity, expansion, 0);
  if (problem) return problem;
  const sums = (entries) => {
    const sums = new Map();
    for (const [key, amount] of entries) sums.set(key, (sums.get(key) ?? 0n) + amount);
    return sums;
  };
  if (!sameSums(sums(moved.grants), expansion.items)) return "granted other items than the catalog grants";
  if (!sameSums(sums(moved.credits), expansion.currencies)) return "credited other amounts than the catalog credits";
  return undefined;
}

function sameSums(a, b) {
  return a.size === b.size && [...a].every(([key, amount]) => b.get(key) === amount);
}

/** Adds what `quantity` of `item` grants: itself, or a bundle's contents. */
function expand(memory, item, quantity, expansion, depth) {
  if (item.itemType !== "bundle") {
    expansion.items.set(item.id, (expansion.items.get(item.id) ?? 0n) + quantity);
    return undefined;
  }
  if (depth >= MAX_BUNDLE_DEPTH) return `bundles nest deeper than ${MAX_BUNDLE_DEPTH}`;
  for (const content of item.contents) {
    if (content.tag === "item") {
      const inner = memory.itemByKey(content.val.itemKey);
      if (!inner) return `the bundle holds an unknown item ${content.val.itemKey}`;
      const problem = expand(memory, inner, content.val.quantity * quantity, expansion, depth + 1);
      if (problem) return problem;
    } else {
      const { currencyCode, amount } = content.val;
      expansion.currencies.set(currencyCode, (expansion.currencies.get(currencyCode) ?? 0n) + amount * quantity);
    }
  }
  return undefined;
}
