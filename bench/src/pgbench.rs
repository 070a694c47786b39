//! The baseline: the same purchase done directly against PostgreSQL by
//! pgbench, in the same run and database. `RoundTrips` is the
//! straightforward way (read the item, read the price, lock the balance,
//! debit, ledger, grant, record: one statement per round trip, 9 with
//! BEGIN and COMMIT); `OneStatement` does it all in one CTE, the floor on
//! round trips.

use crate::cpu::Cpu;
use crate::load::Measurement;
use anyhow::{Context, bail};
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Script {
    RoundTrips,
    OneStatement,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pgb_items (id int PRIMARY KEY, item_type text NOT NULL);
CREATE TABLE IF NOT EXISTS pgb_prices (item_id int, currency text, amount bigint NOT NULL, PRIMARY KEY (item_id, currency));
CREATE TABLE IF NOT EXISTS pgb_balances (user_id int, currency text, balance bigint NOT NULL CHECK (balance >= 0), PRIMARY KEY (user_id, currency));
CREATE TABLE IF NOT EXISTS pgb_ledger (user_id int, id uuid, currency text, delta bigint, balance_after bigint, reason text, PRIMARY KEY (user_id, id));
CREATE TABLE IF NOT EXISTS pgb_inventory (user_id int, item_id int, quantity bigint NOT NULL, PRIMARY KEY (user_id, item_id));
CREATE TABLE IF NOT EXISTS pgb_purchases (user_id int, id uuid, item_id int, quantity int, total bigint, PRIMARY KEY (user_id, id));
INSERT INTO pgb_items VALUES (1, 'durable') ON CONFLICT DO NOTHING;
INSERT INTO pgb_prices VALUES (1, 'gems', 1) ON CONFLICT DO NOTHING;
";

const ROUND_TRIPS: &str = r"
\set uid random(1, :users)
BEGIN;
SELECT id, item_type FROM pgb_items WHERE id = 1;
SELECT amount FROM pgb_prices WHERE item_id = 1 AND currency = 'gems';
SELECT balance FROM pgb_balances WHERE user_id = :uid AND currency = 'gems' FOR UPDATE;
UPDATE pgb_balances SET balance = balance - 1 WHERE user_id = :uid AND currency = 'gems' AND balance >= 1;
INSERT INTO pgb_ledger VALUES (:uid, gen_random_uuid(), 'gems', -1, 0, 'purchase');
INSERT INTO pgb_inventory VALUES (:uid, 1, 1) ON CONFLICT (user_id, item_id) DO UPDATE SET quantity = pgb_inventory.quantity + 1;
INSERT INTO pgb_purchases VALUES (:uid, gen_random_uuid(), 1, 1, 1);
COMMIT;
";

const ONE_STATEMENT: &str = r"
\set uid random(1, :users)
WITH price AS (
  SELECT p.amount FROM pgb_items i JOIN pgb_prices p ON p.item_id = i.id AND p.currency = 'gems' WHERE i.id = 1
), debit AS (
  UPDATE pgb_balances b SET balance = b.balance - price.amount FROM price
  WHERE b.user_id = :uid AND b.currency = 'gems' AND b.balance >= price.amount RETURNING b.balance, price.amount
), entry AS (
  INSERT INTO pgb_ledger SELECT :uid, gen_random_uuid(), 'gems', -amount, balance, 'purchase' FROM debit
), grant_item AS (
  INSERT INTO pgb_inventory SELECT :uid, 1, 1 FROM debit
  ON CONFLICT (user_id, item_id) DO UPDATE SET quantity = pgb_inventory.quantity + 1
)
INSERT INTO pgb_purchases SELECT :uid, gen_random_uuid(), 1, 1, amount FROM debit;
";

/// Runs one pgbench measurement of `script` with `clients` for `duration`.
pub fn run(
    database_url: &str,
    script: Script,
    users: usize,
    clients: usize,
    duration: Duration,
    shape: &str,
) -> anyhow::Result<Measurement> {
    prepare(database_url, users)?;
    let (name, text) = match script {
        Script::RoundTrips => ("pgbench round trips", ROUND_TRIPS),
        Script::OneStatement => ("pgbench one statement", ONE_STATEMENT),
    };
    let file = std::env::temp_dir().join(format!("economy-bench-{}-{:?}.sql", std::process::id(), script));
    std::fs::write(&file, text)?;
    let cpu = Cpu::now();
    let output = Command::new("pgbench")
        .args(["--no-vacuum", "--protocol=prepared"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={}", duration.as_secs().max(1)))
        .arg(format!("--define=users={users}"))
        .arg(format!("--file={}", file.display()))
        .arg(database_url)
        .output()
        .context("running pgbench (install PostgreSQL's client tools)")?;
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    }
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    let postgres_seconds = Cpu::now().since(cpu).postgres;
    let failed = field("number of failed transactions: ").unwrap_or(0.0);
    let transactions = field("number of transactions actually processed: ").unwrap_or(0.0);
    let average = field("latency average = ").map_or("-".into(), |ms| format!("{ms:.2}"));
    Ok(Measurement {
        system: name.into(),
        op: "purchase".into(),
        shape: shape.into(),
        clients,
        throughput: field("tps = ").context("pgbench printed no tps")?,
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
        // pgbench's own CPU is not counted: it is not this process.
        cpu_us: (transactions > 0.0).then(|| (0.0, 0.0, postgres_seconds * 1e6 / transactions)),
        errors: format!("failed: {failed}; average latency {average} ms"),
    })
}

/// Creates the baseline tables and `users` balances, once.
fn prepare(database_url: &str, users: usize) -> anyhow::Result<()> {
    let seed = format!(
        "SET client_min_messages = warning; {SCHEMA} INSERT INTO pgb_balances SELECT u, 'gems', 1000000000000 FROM generate_series(1, {users}) u ON CONFLICT DO NOTHING;"
    );
    let status = Command::new("psql")
        .args(["--quiet", "--no-psqlrc", "--set=ON_ERROR_STOP=1"])
        .arg(database_url)
        .arg("--command")
        .arg(seed)
        .status()?;
    if !status.success() {
        bail!("creating the pgbench tables failed");
    }
    Ok(())
}
