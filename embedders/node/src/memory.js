// The in-memory store, and the imports of `economy:plugin` over it.
// A call works on a copy of its player (its transaction); the embedder puts
// the copy back only when the call is committed. Each import keeps the
// guarantees the WIT package documents.

/** The most of one item a stack may hold (10^15). */
export const MAX_STACK_QUANTITY = 1_000_000_000_000_000n;
/** The most distinct items one `grant-items` call may grant. */
export const MAX_DISTINCT_GRANTS = 256;

/** A tenant's catalog and its players, in memory. */
export class Memory {
  /**
   * @param {{items: object[], stores: {id: string, key: string, listings: object[]}[], currencies: object[]}} catalog
   *   items, listings and currencies in the shapes of `economy:plugin/types`
   */
  constructor(catalog) {
    this.catalog = catalog;
    /** @type {Map<string, Player>} players by user id */
    this.players = new Map();
    /** the tenant's module settings: name → JSON value */
    this.settings = {};
  }

  /** Sets who the player `userId` is to the game: its identity and attributes (name → JSON value). */
  setPlayer(userId, identity, attributes = {}) {
    const player = this.player(userId);
    player.identity = identity ?? userId;
    player.attributes = { ...attributes };
    this.players.set(userId, player);
  }

  itemById(id) {
    return this.catalog.items.find((item) => item.id === id);
  }

  itemByKey(key) {
    return this.catalog.items.find((item) => item.key === key);
  }

  storeByKey(key) {
    return this.catalog.stores.find((store) => store.key === key);
  }

  listing(storeId, itemId) {
    const store = this.catalog.stores.find((store) => store.id === storeId);
    return store?.listings.find((listing) => listing.itemId === itemId);
  }

  currency(code) {
    return this.catalog.currencies.find((currency) => currency.code === code);
  }

  /** A copy of the player `userId` (empty if it never did anything; its identity is its id unless set). */
  player(userId) {
    const player = (this.players.get(userId) ?? new Player()).copy();
    player.identity ??= userId;
    return player;
  }

  /** The player's balance (its initial balance if never held); undefined for an unknown currency. */
  balance(userId, currencyCode) {
    return balanceOf(this, this.player(userId), currencyCode);
  }

  /** How many of the item (by key) the player holds at `nowMs`. */
  held(userId, itemKey, nowMs) {
    const item = this.itemByKey(itemKey);
    const stack = item && this.player(userId).stacks.get(item.id);
    return stack ? heldAt(stack, nowMs) : 0n;
  }
}

/** What one player holds and has done, and what the game says of it. */
export class Player {
  constructor() {
    /** the identity the game names the player by */
    this.identity = undefined;
    /** the attributes the game server set: name → JSON value */
    this.attributes = {};
    this.balances = new Map();
    this.ledger = [];
    /** stacks by item id: {quantity, expiresAtMs} */
    this.stacks = new Map();
    this.itemPurchases = new Map();
    /** by `${storeId} ${itemId}` */
    this.listingPurchases = new Map();
  }

  copy() {
    const copy = new Player();
    copy.identity = this.identity;
    copy.attributes = { ...this.attributes };
    copy.balances = new Map(this.balances);
    copy.ledger = [...this.ledger];
    copy.stacks = new Map([...this.stacks].map(([id, stack]) => [id, { ...stack }]));
    copy.itemPurchases = new Map(this.itemPurchases);
    copy.listingPurchases = new Map(this.listingPurchases);
    return copy;
  }
}

function balanceOf(memory, player, currencyCode) {
  const currency = memory.currency(currencyCode);
  if (!currency) return undefined;
  return player.balances.get(currencyCode) ?? currency.initialBalance;
}

function heldAt(stack, nowMs) {
  return stack.expiresAtMs !== undefined && stack.expiresAtMs <= nowMs ? 0n : stack.quantity;
}

/**
 * The storage imports of one call: reads of `memory`, changes to `player`
 * (the call's copy), and a journal of what moved, for the re-check.
 * A `result` error is thrown as its case name, as jco expects; in a
 * `readOnly` call (a quote), an import that changes storage traps.
 */
export function storageImports(memory, player, nowMs, moved, readOnly = false) {
  const changing = (name) => {
    if (readOnly) throw new Error(`a quote changes nothing, but the module called ${name}`);
  };
  const changeBalance = (currencyCode, amount, debit, reason, reference) => {
    changing(debit ? "wallet.debit" : "wallet.credit");
    const currency = memory.currency(currencyCode);
    if (!currency) throw "unknown-currency";
    if (amount <= 0n) throw "invalid-amount";
    const before = balanceOf(memory, player, currencyCode);
    if (debit && amount > before) throw "insufficient-balance";
    const after = debit ? before - amount : before + amount;
    if (!debit && currency.maxBalance !== undefined && after > currency.maxBalance) throw "max-balance-exceeded";
    player.balances.set(currencyCode, after);
    player.ledger.push({ currencyCode, delta: debit ? -amount : amount, balanceAfter: after, reason, reference });
    (debit ? moved.debits : moved.credits).push([currencyCode, amount]);
    return after;
  };
  return {
    "economy:plugin/types": {},
    "economy:plugin/catalog": {
      itemById: (id) => memory.itemById(id),
      itemByKey: (key) => memory.itemByKey(key),
      storeListing: (storeId, itemId) => memory.listing(storeId, itemId),
      currencyByCode: (code) => memory.currency(code),
    },
    "economy:plugin/wallet": {
      balance: (currencyCode) => balanceOf(memory, player, currencyCode),
      debit: (currencyCode, amount, reason, reference) => changeBalance(currencyCode, amount, true, reason, reference),
      credit: (currencyCode, amount, reason, reference) => changeBalance(currencyCode, amount, false, reason, reference),
    },
    "economy:plugin/inventory": {
      quantity: (itemId) => {
        const stack = player.stacks.get(itemId);
        return stack ? heldAt(stack, nowMs) : 0n;
      },
      grantItems: (grants) => {
        changing("inventory.grant-items");
        if (new Set(grants.map((grant) => grant.itemId)).size > MAX_DISTINCT_GRANTS) throw "invalid-quantity";
        // All or nothing: every grant is applied to a copy first.
        const stacks = new Map([...player.stacks].map(([id, stack]) => [id, { ...stack }]));
        for (const grant of grants) {
          if (!memory.itemById(grant.itemId)) throw "unknown-item";
          if (grant.quantity === 0n || grant.quantity > MAX_STACK_QUANTITY) throw "invalid-quantity";
          const expiresAtMs =
            grant.durationSeconds === undefined ? undefined : nowMs + grant.durationSeconds * 1000n;
          const stack = stacks.get(grant.itemId) ?? { quantity: 0n, expiresAtMs };
          const held = heldAt(stack, nowMs);
          const quantity = held + grant.quantity;
          if (quantity > MAX_STACK_QUANTITY) throw "invalid-quantity";
          // An expired stack starts afresh; an unexpired one lasts until the later expiry.
          let expires = expiresAtMs;
          if (held > 0n) {
            expires =
              stack.expiresAtMs !== undefined && expiresAtMs !== undefined
                ? (stack.expiresAtMs > expiresAtMs ? stack.expiresAtMs : expiresAtMs)
                : undefined;
          }
          stacks.set(grant.itemId, { quantity, expiresAtMs: expires });
        }
        player.stacks = stacks;
        for (const grant of grants) moved.grants.push([grant.itemId, grant.quantity]);
      },
      consume: (itemId, quantity) => {
        changing("inventory.consume");
        if (!memory.itemById(itemId)) throw "unknown-item";
        if (quantity === 0n || quantity > MAX_STACK_QUANTITY) throw "invalid-quantity";
        const stack = player.stacks.get(itemId);
        if (!stack || heldAt(stack, nowMs) < quantity) throw "insufficient-quantity";
        stack.quantity -= quantity;
        return stack.quantity;
      },
    },
    "economy:plugin/history": {
      itemPurchases: (itemId) => player.itemPurchases.get(itemId) ?? 0n,
      listingPurchases: (storeId, itemId) => player.listingPurchases.get(`${storeId} ${itemId}`) ?? 0n,
      claimListing: (storeId, itemId, quantity, cap) => {
        changing("history.claim-listing");
        if (quantity === 0n || !memory.listing(storeId, itemId)) return undefined;
        const key = `${storeId} ${itemId}`;
        const total = (player.listingPurchases.get(key) ?? 0n) + quantity;
        if (total > cap) return undefined;
        player.listingPurchases.set(key, total);
        return total;
      },
    },
    "economy:plugin/player": {
      identity: () => player.identity,
      attribute: (name) => jsonText(player.attributes, name),
    },
    "economy:plugin/settings": {
      setting: (name) => jsonText(memory.settings, name),
    },
  };
}

/** The named value as JSON text, or undefined (`none`). */
function jsonText(values, name) {
  return Object.hasOwn(values, name) ? JSON.stringify(values[name]) : undefined;
}
