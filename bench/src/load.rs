//! The load: N clients, each sending one request after another for T
//! seconds, measuring every request.

use crate::server::{Player, Shop};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Buy one sword (1 gem) with a fresh idempotency key.
    Purchase,
    /// Consume one potion.
    Consume,
    /// Read the inventory.
    Inventory,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Consume => "consume",
            Self::Inventory => "inventory",
        }
    }
}

/// What one run saw.
pub struct Run {
    pub op: Op,
    pub clients: usize,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
    pub errors: BTreeMap<String, u64>,
    /// Gems charged per player (by identity) by acknowledged purchases.
    pub charged: BTreeMap<String, i64>,
    pub acknowledged: u64,
}

/// One row of the report.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub system: String,
    pub op: String,
    pub shape: String,
    pub clients: usize,
    pub throughput: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: String,
}

pub async fn run(shop: &Shop, players: &[Player], op: Op, clients: usize, duration: Duration) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let tasks = (0..clients).map(|client| {
        let run_id = run_id.clone();
        async move {
            let mut seen = Run::empty(op, clients);
            let mut i = 0usize;
            while Instant::now() < deadline {
                let player = &players[(client + i * clients) % players.len()];
                let key = format!("{run_id}-{client}-{i}");
                let sent = Instant::now();
                let outcome = request(shop, player, op, &key).await;
                seen.latencies_us.push(sent.elapsed().as_micros() as u64);
                match outcome {
                    Ok(charged) => {
                        seen.acknowledged += 1;
                        if charged > 0 {
                            *seen.charged.entry(player.identity.clone()).or_default() += charged;
                        }
                    }
                    Err(code) => *seen.errors.entry(code).or_default() += 1,
                }
                i += 1;
            }
            seen
        }
    });
    let mut total = Run::empty(op, clients);
    for seen in futures::future::join_all(tasks).await {
        total.latencies_us.extend(seen.latencies_us);
        total.acknowledged += seen.acknowledged;
        for (code, count) in seen.errors {
            *total.errors.entry(code).or_default() += count;
        }
        for (identity, charged) in seen.charged {
            *total.charged.entry(identity).or_default() += charged;
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Sends one request; `Ok(gems charged)` or `Err(error code)`.
async fn request(shop: &Shop, player: &Player, op: Op, idempotency_key: &str) -> Result<i64, String> {
    let request = match op {
        Op::Purchase => shop.http.post(format!("{}/client/inventory/purchase", shop.base)).json(
            &json!({"catalog_item_id": shop.sword_id, "currency_code": "gems", "idempotency_key": idempotency_key}),
        ),
        Op::Consume => shop
            .http
            .post(format!("{}/client/inventory/{}/consume", shop.base, shop.potion_id))
            .json(&json!({"quantity": 1})),
        Op::Inventory => shop.http.get(format!("{}/client/inventory", shop.base)),
    };
    let response = request
        .header("x-api-key", &shop.client_key)
        .bearer_auth(&player.token)
        .send()
        .await
        .map_err(|error| format!("transport: {error}"))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|error| format!("body: {error}"))?;
    if !status.is_success() {
        return Err(body["error"]["code"].as_str().unwrap_or("?").to_owned());
    }
    Ok(if op == Op::Purchase { body["data"]["price"].as_i64().unwrap_or(0) } else { 0 })
}

impl Run {
    fn empty(op: Op, clients: usize) -> Self {
        Self {
            op,
            clients,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            errors: BTreeMap::new(),
            charged: BTreeMap::new(),
            acknowledged: 0,
        }
    }

    pub fn measurement(mut self, system: &str, shape: &str) -> Measurement {
        self.latencies_us.sort_unstable();
        let percentile = |p: f64| {
            let index = ((self.latencies_us.len() as f64 * p).ceil() as usize).saturating_sub(1);
            self.latencies_us.get(index).map(|us| *us as f64 / 1000.0)
        };
        Measurement {
            system: system.to_owned(),
            op: self.op.name().to_owned(),
            shape: shape.to_owned(),
            clients: self.clients,
            throughput: self.acknowledged as f64 / self.elapsed.as_secs_f64(),
            p50_ms: percentile(0.50),
            p95_ms: percentile(0.95),
            p99_ms: percentile(0.99),
            errors: if self.errors.is_empty() {
                "none".into()
            } else {
                self.errors.iter().map(|(code, count)| format!("{code}: {count}")).collect::<Vec<_>>().join(", ")
            },
        }
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

impl Measurement {
    pub fn header() -> String {
        "| system | op | shape | clients | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|---|---|".into()
    }

    /// Our purchase throughput over each pgbench form, per shape and client count.
    pub fn ratios(rows: &[Self]) -> String {
        let mut lines = vec![
            "| shape | clients | economy-host / pgbench round trips | economy-host / pgbench one statement |"
                .to_owned(),
        ];
        lines.push("|---|---|---|---|".into());
        for ours in rows.iter().filter(|row| row.system == "economy-host" && row.op == "purchase") {
            let against = |system: &str| {
                rows.iter()
                    .find(|row| row.system == system && row.shape == ours.shape && row.clients == ours.clients)
                    .map_or("-".into(), |row| format!("{:.2}×", ours.throughput / row.throughput))
            };
            lines.push(format!(
                "| {} | {} | {} | {} |",
                ours.shape,
                ours.clients,
                against("pgbench round trips"),
                against("pgbench one statement")
            ));
        }
        lines.join("\n")
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
            self.system,
            self.op,
            self.shape,
            self.clients,
            self.throughput,
            ms(self.p50_ms),
            ms(self.p95_ms),
            ms(self.p99_ms),
            self.errors
        )
    }
}
