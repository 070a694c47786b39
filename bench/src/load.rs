//! The load: N clients, each sending one request after another for T
//! seconds, measuring every request.

use crate::cpu::Cpu;
use crate::server::{Player, Shop};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Buy one sword (1 gem) with a fresh idempotency key.
    Purchase,
    /// The same through Sverse's route, as a game server calls it: the
    /// shop's sword listing, with the server key.
    SversePurchase,
    /// The same through PlayFab's Economy v2 route, as a game client on
    /// PlayFab's SDK calls it: the player's entity token, the sword at its
    /// agreed price of one gem.
    PlayFabPurchase,
    /// Consume one potion.
    Consume,
    /// Read the inventory.
    Inventory,
    /// Read the wallet.
    Wallet,
    /// Load the shop's store page (each listing quoted by the rules).
    StorePage,
    /// A game's mix, each client in turn: four purchases, two wallet
    /// reads, two consumes, an inventory read and a store page in ten.
    Mix,
}

const MIX: [Op; 10] = [
    Op::Purchase,
    Op::Wallet,
    Op::Purchase,
    Op::Inventory,
    Op::Consume,
    Op::Purchase,
    Op::StorePage,
    Op::Purchase,
    Op::Wallet,
    Op::Consume,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::SversePurchase => "purchase (Sverse)",
            Self::PlayFabPurchase => "purchase (PlayFab)",
            Self::Consume => "consume",
            Self::Inventory => "inventory",
            Self::Wallet => "wallet",
            Self::StorePage => "store page",
            Self::Mix => "mix",
        }
    }

    /// What a client sends as its `i`th request.
    fn at(self, i: usize) -> Self {
        match self {
            Self::Mix => MIX[i % MIX.len()],
            op => op,
        }
    }

    fn is_purchase(self) -> bool {
        matches!(self, Self::Purchase | Self::SversePurchase | Self::PlayFabPurchase)
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
    /// Acknowledged requests that were purchases.
    pub purchases: u64,
    pub cpu: Cpu,
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
    /// CPU per acknowledged request, in µs: server, load generator, PostgreSQL.
    pub cpu_us: Option<(f64, f64, f64)>,
}

pub async fn run(shop: &Shop, players: &[Player], op: Op, clients: usize, duration: Duration) -> Run {
    // Copied once, before the clock starts, and shared by every client.
    let shop = Arc::new(shop.clone());
    let players: Arc<[Player]> = players.into();
    let cpu = Cpu::now();
    let started = Instant::now();
    let deadline = started + duration;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let tasks = (0..clients).map(|client| {
        let run_id = run_id.clone();
        let shop = shop.clone();
        let players = players.clone();
        tokio::spawn(async move {
            let mut seen = Run::empty(op, clients);
            let mut connection = match Connection::open(&shop.address).await {
                Ok(connection) => connection,
                Err(error) => {
                    *seen.errors.entry(format!("connect: {error}")).or_default() += 1;
                    return seen;
                }
            };
            let mut i = 0usize;
            while Instant::now() < deadline {
                let player = &players[(client + i * clients) % players.len()];
                let op = op.at(i);
                let request = request(&shop, player, op, &format!("{run_id}-{client}-{i}"));
                let sent = Instant::now();
                let outcome = connection.exchange(request.as_bytes()).await;
                seen.latencies_us.push(sent.elapsed().as_micros() as u64);
                match outcome {
                    Ok((status, body)) if (200..300).contains(&status) => {
                        seen.acknowledged += 1;
                        seen.purchases += u64::from(op.is_purchase());
                        let charged = match op {
                            Op::Purchase => number_after(&body, "\"price\":"),
                            // The answer's first amount is its cost's.
                            Op::SversePurchase => number_after(&body, "\"amount\":"),
                            // A purchase goes through only at the price agreed.
                            Op::PlayFabPurchase => 1,
                            Op::Consume | Op::Inventory | Op::Wallet | Op::StorePage | Op::Mix => 0,
                        };
                        if charged != 0 {
                            *seen.charged.entry(player.identity.clone()).or_default() += charged;
                        }
                    }
                    Ok((_, body)) => *seen.errors.entry(error_code(&body)).or_default() += 1,
                    Err(error) => {
                        *seen.errors.entry(format!("transport: {error}")).or_default() += 1;
                        match Connection::open(&shop.address).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => break,
                        }
                    }
                }
                i += 1;
            }
            seen
        })
    });
    let mut total = Run::empty(op, clients);
    for seen in futures::future::join_all(tasks).await {
        let seen = seen.expect("a load task does not panic");
        total.latencies_us.extend(seen.latencies_us);
        total.acknowledged += seen.acknowledged;
        total.purchases += seen.purchases;
        for (code, count) in seen.errors {
            *total.errors.entry(code).or_default() += count;
        }
        for (identity, charged) in seen.charged {
            *total.charged.entry(identity).or_default() += charged;
        }
    }
    total.elapsed = started.elapsed();
    total.cpu = Cpu::now().since(cpu);
    total
}

/// The raw HTTP/1.1 request for one operation.
fn request(shop: &Shop, player: &Player, op: Op, idempotency_key: &str) -> String {
    let client = format!("x-api-key: {}\r\nauthorization: Bearer {}", shop.client_key, player.token);
    let (method, path, credentials, body) = match op {
        Op::Purchase => (
            "POST",
            "/client/inventory/purchase".to_owned(),
            client,
            json!({"catalog_item_id": shop.sword_id, "currency_code": "gems", "idempotency_key": idempotency_key})
                .to_string(),
        ),
        Op::SversePurchase => (
            "POST",
            format!("/api/private/users/{}/purchases", player.identity),
            format!("x-api-key: {}", shop.server_key),
            json!({"shopItemId": shop.shop_item_id, "quantity": 1, "idempotencyKey": idempotency_key}).to_string(),
        ),
        Op::PlayFabPurchase => (
            "POST",
            "/Inventory/PurchaseInventoryItems".to_owned(),
            format!("x-entitytoken: {}.{}", shop.tenant_id, player.token),
            json!({"Item": {"Id": shop.sword_id}, "Amount": 1, "PriceAmounts": [{"ItemId": "gems", "Amount": 1}],
                "IdempotencyId": idempotency_key})
            .to_string(),
        ),
        Op::Consume => {
            ("POST", format!("/client/inventory/{}/consume", shop.potion_id), client, r#"{"quantity":1}"#.to_owned())
        }
        Op::Inventory => ("GET", "/client/inventory".to_owned(), client, String::new()),
        Op::Wallet => ("GET", "/client/wallet".to_owned(), client, String::new()),
        Op::StorePage => ("GET", "/client/stores/shop".to_owned(), client, String::new()),
        Op::Mix => unreachable!("a mix sends the operations it is made of"),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nhost: bench\r\n{credentials}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A kept-alive HTTP/1.1 connection with just enough of a client to read
/// one response at a time: the load generator must cost little CPU, since
/// it shares the machine with the server and the database.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(address: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buffer: Vec::with_capacity(4096) })
    }

    /// Sends a request and reads the response: `(status, body)`.
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let header_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..header_end]).map_err(std::io::Error::other)?;
        let status =
            head.get(9..12).and_then(|code| code.parse().ok()).ok_or_else(|| std::io::Error::other("no status"))?;
        let length: usize = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse()))
            .transpose()
            .map_err(std::io::Error::other)?
            .unwrap_or(0);
        while self.buffer.len() < header_end + length {
            self.read_more().await?;
        }
        Ok((status, self.buffer[header_end..header_end + length].to_vec()))
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The integer after `key` in a JSON body (0 if absent).
fn number_after(body: &[u8], key: &str) -> i64 {
    let Some(start) = find(body, key.as_bytes()).map(|at| at + key.len()) else { return 0 };
    let digits: String =
        body[start..].iter().map(|b| *b as char).take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    digits.parse().unwrap_or(0)
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|body| {
            let code = body["error"]["code"].as_str().or(body["message"].as_str()).or(body["error"].as_str());
            code.map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
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
            purchases: 0,
            cpu: Cpu::default(),
        }
    }

    pub fn measurement(mut self, system: &str, shape: &str) -> Measurement {
        self.latencies_us.sort_unstable();
        let percentile = |p: f64| percentile(&self.latencies_us, p).map(|us| us as f64 / 1000.0);
        Measurement {
            system: system.to_owned(),
            op: self.op.name().to_owned(),
            shape: shape.to_owned(),
            clients: self.clients,
            throughput: self.acknowledged as f64 / self.elapsed.as_secs_f64(),
            cpu_us: (self.acknowledged > 0).then(|| {
                let per = |seconds: f64| seconds * 1e6 / self.acknowledged as f64;
                (per(self.cpu.server), per(self.cpu.load), per(self.cpu.postgres))
            }),
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
        "| system | op | shape | clients | req/s | p50 ms | p95 ms | p99 ms | CPU µs/req server · load · postgres | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|"
            .into()
    }

    /// Per round of the sweep (one client count), our purchase throughput
    /// over each pgbench form and each compatibility route's over ours;
    /// then, over all rounds, each route's total over ours.
    pub fn ratios(rows: &[Self]) -> String {
        // Ours: the server's rows, on whichever store it ran.
        let series = |system: &str, op: &str, shape: &str| -> Vec<&Self> {
            rows.iter().filter(|row| row.system.starts_with(system) && row.op == op && row.shape == shape).collect()
        };
        let over = |a: Option<&&Self>, b: Option<&&Self>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}×", a.throughput / b.throughput),
            _ => "-".into(),
        };
        let mut lines = vec![
            "| shape | clients | economy-host / pgbench round trips | economy-host / pgbench one statement \
             | Sverse / economy-host | PlayFab / economy-host |"
                .to_owned(),
            "|---|---|---|---|---|---|".to_owned(),
        ];
        let native = series("economy-host", "purchase", "spread");
        let routes = [
            ("Sverse", series("economy-host", Op::SversePurchase.name(), "spread")),
            ("PlayFab", series("economy-host", Op::PlayFabPurchase.name(), "spread")),
        ];
        for shape in ["spread", "hot"] {
            let round_trips = series("pgbench round trips", "purchase", shape);
            let one_statement = series("pgbench one statement", "purchase", shape);
            for (round, ours) in series("economy-host", "purchase", shape).iter().enumerate() {
                let route = |i: usize| match shape {
                    "spread" => over(routes[i].1.get(round), Some(ours)),
                    _ => "-".into(),
                };
                lines.push(format!(
                    "| {shape} | {} | {} | {} | {} | {} |",
                    ours.clients,
                    over(Some(ours), round_trips.get(round)),
                    over(Some(ours), one_statement.get(round)),
                    route(0),
                    route(1),
                ));
            }
        }
        let total = |rows: &[&Self]| rows.iter().map(|row| row.throughput).sum::<f64>();
        for (name, route) in &routes {
            if !route.is_empty() && route.len() == native.len() {
                let percent = 100.0 * total(route) / total(&native);
                lines.push(format!("\n{name} / economy-host, all {} rounds together: {percent:.0} %", route.len()));
            }
        }
        lines.join("\n")
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            self.system,
            self.op,
            self.shape,
            self.clients,
            self.throughput,
            ms(self.p50_ms),
            ms(self.p95_ms),
            ms(self.p99_ms),
            self.cpu_us
                .map_or("-".into(), |(server, load, postgres)| format!("{server:.0} · {load:.0} · {postgres:.0}")),
            self.errors
        )
    }
}

/// The value at quantile `p` (0 to 1) of `sorted`, if it has any.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let index = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted.get(index).copied()
}
