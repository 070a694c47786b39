// PlayFab's official Node.js SDK (`playfab-sdk`, unmodified) against
// economy-host: a game client signs in with a custom id, buys through
// Economy v2, reads its collection and its legacy inventory.
//
// The SDK speaks only HTTPS, as a deployment behind a TLS terminator does:
// the test puts a TLS proxy (a throwaway self-signed certificate) in front
// of the host. It starts the host binary (ECONOMY_HOST_BIN, default the
// workspace's debug build) on a SQLite file of its own.

"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const crypto = require("node:crypto");
const { PlayFab, PlayFabClient, PlayFabEconomy } = require("playfab-sdk");

const BINARY = process.env.ECONOMY_HOST_BIN || path.join(__dirname, "..", "..", "..", "target", "debug", "economy-host");
const OPERATOR_KEY = crypto.randomBytes(32).toString("hex");

let dir;
let host;
let proxy;
let base;
let tenant;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function call(method, route, headers, body) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${route}: ${JSON.stringify(json)}`);
  return json;
}

async function waitForHost() {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const response = await fetch(`${base}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("economy-host did not start");
}

// The SDK's callbacks as promises: its error, or the result's `data`.
function sdk(method, request) {
  return new Promise((resolve, reject) => {
    method(request, (error, result) => (error ? reject(error) : resolve(result.data)));
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "economy-playfab-sdk-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  host = spawn(BINARY, ["serve"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      ECONOMY_LISTEN: `127.0.0.1:${port}`,
      DATABASE_URL: `sqlite:${path.join(dir, "economy.db")}`,
      ECONOMY_OPERATOR_KEY: OPERATOR_KEY,
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitForHost();

  // The TLS terminator in front of the host, with a certificate of its own.
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1",
    "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  proxy = https.createServer(
    { key: fs.readFileSync(path.join(dir, "key.pem")), cert: fs.readFileSync(path.join(dir, "cert.pem")) },
    (request, response) => {
      const upstream = http.request(
        { host: "127.0.0.1", port, method: request.method, path: request.url, headers: request.headers },
        (answer) => {
          response.writeHead(answer.statusCode, answer.headers);
          answer.pipe(response);
        },
      );
      upstream.on("error", () => response.destroy());
      request.pipe(upstream);
    },
  );
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  // The SDK sends through Node's default agent: trust this certificate
  // there (and nothing else besides the usual CAs).
  https.globalAgent.options.ca = [fs.readFileSync(path.join(dir, "cert.pem"))];

  // A tenant with gems, a potion and a sword, as its admin would set it up.
  const created = await call("POST", "/operator/tenants", { authorization: `Bearer ${OPERATOR_KEY}` }, {
    slug: "sdk-game",
    name: "SDK game",
  });
  tenant = created.data;
  const admin = { "x-api-key": tenant.admin_key };
  await call("PUT", "/admin/currencies/gems", admin, { name: "Gems", initial_balance: 500 });
  const price = (amount) => [{ currency_code: "gems", amount }];
  await call("PUT", "/admin/catalog/items/potion", admin, {
    name: "Potion", item_type: "consumable", category: "potions", prices: price(10),
  });
  await call("PUT", "/admin/catalog/items/sword", admin, { name: "Sword", item_type: "durable", prices: price(100) });

  PlayFab.settings.titleId = tenant.id;
  PlayFab.settings.productionUrl = `https://127.0.0.1:${proxy.address().port}`;
});

after(() => {
  proxy?.close();
  host?.kill("SIGTERM");
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("a game client on PlayFab's SDK signs in, buys and reads its inventory", async () => {
  const deviceId = crypto.randomBytes(16).toString("hex");
  const login = await sdk(PlayFabClient.LoginWithCustomID, { CustomId: deviceId, CreateAccount: true });
  assert.equal(login.NewlyCreated, true);
  assert.ok(login.SessionTicket.startsWith(`${tenant.id}.`));
  assert.equal(login.EntityToken.Entity.Id, login.PlayFabId);

  const before = await sdk(PlayFabEconomy.GetInventoryItems, {});
  const gems = before.Items.find((item) => item.Id === "gems");
  assert.deepEqual([gems.Type, gems.Amount], ["currency", 500]);

  const purchase = {
    Item: { AlternateId: { Type: "FriendlyId", Value: "potion" } },
    Amount: 3,
    PriceAmounts: [{ ItemId: "gems", Amount: 10 }],
    ETag: before.ETag,
    IdempotencyId: "sdk-buy-1",
  };
  const bought = await sdk(PlayFabEconomy.PurchaseInventoryItems, purchase);
  assert.equal(bought.TransactionIds.length, 1);
  assert.equal(bought.IdempotencyId, "sdk-buy-1");
  // A retry is the same purchase.
  const retried = await sdk(PlayFabEconomy.PurchaseInventoryItems, purchase);
  assert.deepEqual(retried.TransactionIds, bought.TransactionIds);

  // A stale ETag reaches the SDK as PlayFab's error.
  const stale = await sdk(PlayFabEconomy.PurchaseInventoryItems, { ...purchase, IdempotencyId: "sdk-buy-2" }).then(
    () => assert.fail("a stale ETag is refused"),
    (error) => error,
  );
  assert.deepEqual([stale.code, stale.error, stale.errorCode], [412, "PreconditionFailed", 1610]);
  const broke = await sdk(PlayFabEconomy.PurchaseInventoryItems, {
    Item: { AlternateId: { Type: "FriendlyId", Value: "sword" } },
    Amount: 5,
    PriceAmounts: [{ ItemId: "gems", Amount: 100 }],
  }).then(
    () => assert.fail("500 gems do not buy five swords after three potions"),
    (error) => error,
  );
  assert.deepEqual([broke.code, broke.error, broke.errorCode], [400, "InsufficientFunds", 1059]);

  const after = await sdk(PlayFabEconomy.GetInventoryItems, { Count: 50 });
  assert.equal(after.ETag, bought.ETag);
  assert.equal(after.Items.find((item) => item.Id === "gems").Amount, 470);
  const potions = after.Items.filter((item) => item.Type === "catalogItem");
  assert.deepEqual(potions.map((item) => [item.StackId, item.Amount]), [["default", 3]]);

  const legacy = await sdk(PlayFabClient.GetUserInventory, {});
  assert.deepEqual(legacy.VirtualCurrency, { gems: 470 });
  const potion = legacy.Inventory.find((instance) => instance.ItemId === "potion");
  assert.deepEqual([potion.RemainingUses, potion.UnitPrice, potion.UnitCurrency], [3, 10, "gems"]);
  assert.equal(potion.ItemClass, "potions");
});
