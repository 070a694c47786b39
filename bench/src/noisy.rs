//! What a noisy tenant costs a quiet one. The bench tenant (B, the quiet
//! one) plays a game's mix alone, then again while tenant A, on the same
//! host and the same default database, attacks every resource they share,
//! all at once:
//!
//! - A's rules sleep to their deadline in every purchase, and 128 of its
//!   players buy at once, again and again;
//! - its players load a store of 1,000 listings (1,000 quotes a page), and
//!   a store whose one listing's quote sleeps to the deadline;
//! - its admin quotes in a loop (dry runs), uploads new modules in a loop,
//!   and uploads a component of 300 core instances in a loop;
//! - its clients log in and hang up mid-request;
//! - one of its players buys ten times faster than its rate limit.
//!
//! Then again beside only A's attacks on the host's cores: pages of 1,000
//! listings, dry runs, and 32 players buying an item whose price spins to
//! the fuel limit.
//!
//! B's purchase rate and p99 beside A, against alone, are the figures; B
//! must see no error and its newly activated module must not be blamed or
//! rolled back.

use crate::audit;
use crate::load::{self, Measurement, Op, Run};
use crate::server::{Api, Server, Shop};
use anyhow::{bail, ensure};
use economy_tests::components::{HOSTILE, SALE_PRICING};
use economy_tests::hostile::{many_instances, tagged};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::MissedTickBehavior;

/// Players of tenant A (its slow buyers, page loaders and the bot).
const NOISY_PLAYERS: usize = 160;
/// A's purchases in flight at once, each sleeping to its deadline.
const SLOW_PURCHASES: usize = 128;
/// Listings of A's big store.
const BIG_STORE_LISTINGS: usize = 1_000;
/// A's players loading the big store, one page after another.
const BIG_PAGE_LOADERS: usize = 4;
/// A's players buying an item whose price spins to the fuel limit, each
/// as fast as its rate limit lets it.
const SPINNERS: usize = 32;
/// A's players loading the store whose quote sleeps.
const SLEEPY_PAGE_LOADERS: usize = 8;
/// How long A attacks before B is measured beside it.
const WARM_UP: Duration = Duration::from_secs(2);

pub async fn run(
    server: &Server,
    quiet: &Shop,
    clients: usize,
    rounds: usize,
    duration: Duration,
    rows: &mut Vec<Measurement>,
    ledger: &mut audit::Expected,
) -> anyhow::Result<()> {
    let api = Api::new(&server.base)?;
    let noisy = server.set_up_tenant("noisy", None, NOISY_PLAYERS).await?;
    let attack = Arc::new(Attack::prepare(&api, noisy).await?);

    // Warmed up first: the first seconds after A's setup are slower.
    ledger.add(&load::run(quiet, &quiet.spread, Op::Mix, clients, WARM_UP).await);
    let mut summary = Vec::new();
    for phase in [Phase::Everything, Phase::CostlyCalls] {
        // Alone, then beside A, `rounds` times (this machine's speed drifts:
        // each run beside A has one alone right before it), totalled. B runs
        // an uploaded module, activated anew before each run so that it is
        // on probation while it runs.
        let (mut alone, mut beside_a) = (Totals::default(), Totals::default());
        for round in 0..rounds {
            for beside in [false, true] {
                let tag = format!("quiet-{phase:?}-{round}-{beside}");
                let module = api.activate(quiet, &tagged(SALE_PRICING, &tag)).await?;
                let stop = Arc::new(AtomicBool::new(false));
                let attacks = beside.then(|| tokio::spawn(attack.clone().run(phase, stop.clone())));
                if beside {
                    tokio::time::sleep(WARM_UP).await;
                }
                let run = load::run(quiet, &quiet.spread, Op::Mix, clients, duration).await;
                stop.store(true, Ordering::Relaxed);
                let tally = match attacks {
                    Some(attacks) => attacks.await?,
                    None => Tally::new(),
                };
                ledger.add(&run);
                let totals = if beside { &mut beside_a } else { &mut alone };
                totals.add(&run, tally, api.blamed(quiet, &module).await?);
                rows.push(run.measurement("economy-host", if beside { phase.shape() } else { "tenant B alone" }));
                println!("{}", rows.last().expect("a row"));
                totals.p99s.push(rows.last().and_then(|row| row.p99_ms).unwrap_or(f64::NAN));
            }
        }
        let mut lines =
            vec![format!("\n{}: tenant A's answers while B was measured, by status and code:", phase.shape())];
        for (attack, answers) in &beside_a.tally {
            let answers: Vec<String> = answers.iter().map(|(answer, count)| format!("{answer} ×{count}")).collect();
            lines.push(format!("- {attack}: {}", answers.join(", ")));
        }
        let (rate, rate_alone) = (beside_a.purchase_rate(), alone.purchase_rate());
        let (p99, p99_alone) = (beside_a.p99(), alone.p99());
        lines.push(format!(
            "tenant B kept {:.0} % of its purchase rate alone ({rate:.0}/s against {rate_alone:.0}/s), \
             p99 {:.2}× alone ({p99:.2} ms against {p99_alone:.2} ms, the mean of {rounds} runs each), \
             {} errors ({} alone); {}",
            100.0 * rate / rate_alone,
            p99 / p99_alone,
            beside_a.errors,
            alone.errors,
            beside_a
                .blamed
                .as_deref()
                .or(alone.blamed.as_deref())
                .unwrap_or("its module was neither blamed nor rolled back"),
        ));
        summary.push(lines.join("\n"));
        ensure!(beside_a.blamed.is_none() && alone.blamed.is_none(), "{}", summary.join("\n"));
    }
    println!("{}", summary.join("\n"));
    Ok(())
}

/// B's runs of one kind (alone, or beside A) in one phase, added up.
#[derive(Default)]
struct Totals {
    purchases: u64,
    seconds: f64,
    p99s: Vec<f64>,
    errors: u64,
    tally: Tally,
    blamed: Option<String>,
}

impl Totals {
    fn add(&mut self, run: &Run, tally: Tally, blamed: Option<String>) {
        self.purchases += run.purchases;
        self.seconds += run.elapsed.as_secs_f64();
        self.errors += run.errors.values().sum::<u64>();
        for (attack, answers) in tally {
            add_answers(&mut self.tally, attack, answers);
        }
        self.blamed = self.blamed.take().or(blamed);
    }

    /// Purchases acknowledged per second.
    fn purchase_rate(&self) -> f64 {
        self.purchases as f64 / self.seconds
    }

    fn p99(&self) -> f64 {
        self.p99s.iter().sum::<f64>() / self.p99s.len() as f64
    }
}

/// What tenant A runs beside B.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Every attack at once.
    Everything,
    /// Only the attacks that cost the host's cores: pages of 1,000
    /// listings, dry runs, and rules that spin to their fuel limit.
    CostlyCalls,
}

impl Phase {
    fn shape(self) -> &'static str {
        match self {
            Self::Everything => "tenant B beside tenant A's every attack",
            Self::CostlyCalls => "tenant B beside tenant A's costly calls",
        }
    }
}

/// What tenant A needs for its attacks, set up before B is measured.
struct Attack {
    api: Api,
    shop: Shop,
    sleep_id: String,
    spin_id: String,
    ware_id: String,
    module: String,
    title_id: String,
}

/// Each attack's answers, by status and error code.
type Tally = BTreeMap<&'static str, BTreeMap<String, u64>>;

fn add_answers(tally: &mut Tally, attack: &'static str, answers: BTreeMap<String, u64>) {
    let counts = tally.entry(attack).or_default();
    for (answer, count) in answers {
        *counts.entry(answer).or_default() += count;
    }
}

impl Attack {
    async fn prepare(api: &Api, shop: Shop) -> anyhow::Result<Self> {
        let admin = [("x-api-key", shop.admin_key.as_str())];
        // The rate limits a studio ships with (the setup turned them off).
        api.expect(Method::PUT, "/admin/settings", &admin, json!({})).await?;
        let item = |key: String| async move {
            let body = json!({"name": key, "item_type": "durable", "prices": [{"currency_code": "gems", "amount": 1}]});
            api.expect(Method::PUT, &format!("/admin/catalog/items/{key}"), &admin, body).await
        };
        let sleep_id = id(&item("sleep".into()).await?)?;
        let spin_id = id(&item("loop".into()).await?)?;
        let wares: Vec<Value> = futures::stream::iter((0..BIG_STORE_LISTINGS).map(|i| item(format!("ware-{i}"))))
            .buffered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let listings: Vec<Value> = (0..BIG_STORE_LISTINGS).map(|i| json!({"item_key": format!("ware-{i}")})).collect();
        let big = json!({"name": "Everything", "listings": listings});
        api.expect(Method::PUT, "/admin/stores/big", &admin, big).await?;
        let sleepy = json!({"name": "Sleepy", "listings": [{"item_key": "sleep"}]});
        api.expect(Method::PUT, "/admin/stores/sleepy", &admin, sleepy).await?;
        let module = api.activate(&shop, HOSTILE).await?;
        // Its probation passes on quotes that succeed: rolled back, A's rules
        // would no longer sleep.
        let player =
            [("x-api-key", shop.client_key.as_str()), ("authorization", &format!("Bearer {}", shop.spread[0].token))];
        api.send(Method::GET, "/client/stores/big", &player, None).await?;
        Ok(Self {
            api: api.clone(),
            sleep_id,
            spin_id,
            ware_id: id(&wares[0])?,
            module,
            title_id: shop.tenant_id.clone(),
            shop,
        })
    }

    /// The attacks of `phase`, until `stop`; what each was answered.
    async fn run(self: Arc<Self>, phase: Phase, stop: Arc<AtomicBool>) -> Tally {
        let players = &self.shop.spread;
        let client = |player: usize| {
            vec![
                ("x-api-key".to_owned(), self.shop.client_key.clone()),
                ("authorization".to_owned(), format!("Bearer {}", players[player].token)),
            ]
        };
        let admin = vec![("x-api-key".to_owned(), self.shop.admin_key.clone())];
        let mut attacks: Vec<tokio::task::JoinHandle<(&'static str, BTreeMap<String, u64>)>> = Vec::new();
        let mut spawn = |name: &'static str, pace: Option<Duration>, request: Request| {
            let (api, stop) = (self.api.clone(), stop.clone());
            attacks.push(tokio::spawn(async move { (name, api.repeat(request, pace, &stop).await) }));
        };
        let purchase = |player: usize, item: &str| {
            let body = json!({"catalog_item_id": item, "currency_code": "gems"});
            Request::json(Method::POST, "/client/inventory/purchase", client(player), body)
        };
        let page = |player: usize, store: &str| {
            Request::json(Method::GET, &format!("/client/stores/{store}"), client(player), Value::Null)
        };
        let dry_run = || {
            let body = json!({"catalog_item_id": self.ware_id, "currency_code": "gems"});
            Request::json(Method::POST, &format!("/admin/modules/{}/quote", self.module), admin.clone(), body)
        };
        let pages = SLOW_PURCHASES..SLOW_PURCHASES + BIG_PAGE_LOADERS;
        match phase {
            Phase::Everything => {
                for player in 0..SLOW_PURCHASES {
                    spawn("purchases that sleep to the deadline", None, purchase(player, &self.sleep_id));
                }
                for player in pages.clone() {
                    spawn("pages of 1,000 listings", None, page(player, "big"));
                }
                for player in pages.end..pages.end + SLEEPY_PAGE_LOADERS {
                    spawn("pages whose quote sleeps", None, page(player, "sleepy"));
                }
                spawn("dry runs", None, dry_run());
                let every_100_ms = Some(Duration::from_millis(100));
                spawn("uploads of new modules", every_100_ms, Request::Upload(admin.clone(), None));
                let instances = many_instances(300);
                spawn("uploads of 300 core instances", every_100_ms, Request::Upload(admin.clone(), Some(instances)));
                // Twenty writes a second, ten times its limit.
                let bot = purchase(NOISY_PLAYERS - 1, &self.ware_id);
                spawn("a bot player over its rate limit", Some(Duration::from_millis(50)), bot);
                let login = json!({"TitleId": self.title_id, "CustomId": "hangs-up", "CreateAccount": true});
                spawn(
                    "logins hung up mid-request",
                    Some(Duration::from_millis(10)),
                    Request::HangUp(login.to_string()),
                );
            }
            Phase::CostlyCalls => {
                // Each player at its rate limit (two writes a second): faster,
                // it is refused before its rules run.
                for player in 0..SPINNERS {
                    let spin = purchase(player, &self.spin_id);
                    spawn("purchases that spin to the fuel limit", Some(Duration::from_millis(500)), spin);
                }
                for player in pages {
                    spawn("pages of 1,000 listings", None, page(player, "big"));
                }
                spawn("dry runs", None, dry_run());
            }
        }

        let mut tally = Tally::new();
        for attack in futures::future::join_all(attacks).await {
            let (name, answers) = attack.expect("an attack does not panic");
            add_answers(&mut tally, name, answers);
        }
        tally
    }
}

/// One request an attack repeats.
#[derive(Clone)]
enum Request {
    Json {
        method: Method,
        path: String,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// A module upload: a new tag on the hostile module each time, or these
    /// bytes.
    Upload(Vec<(String, String)>, Option<Vec<u8>>),
    /// A PlayFab login sent and hung up on before the answer.
    HangUp(String),
}

impl Request {
    fn json(method: Method, path: &str, headers: Vec<(String, String)>, body: Value) -> Self {
        Self::Json { method, path: path.to_owned(), headers, body }
    }
}

impl Api {
    /// What happened to `shop`'s module `sha256`, if anything: events
    /// logged against it, or another module put in its place.
    async fn blamed(&self, shop: &Shop, sha256: &str) -> anyhow::Result<Option<String>> {
        let admin = [("x-api-key", shop.admin_key.as_str())];
        let (_, events) = self.send(Method::GET, "/admin/modules/events", &admin, None).await?;
        let against: Vec<&Value> =
            events["data"].as_array().into_iter().flatten().filter(|event| event["module_sha256"] == sha256).collect();
        if !against.is_empty() {
            return Ok(Some(format!("events against its module: {against:?}")));
        }
        let (_, modules) = self.send(Method::GET, "/admin/modules", &admin, None).await?;
        let active =
            modules["data"].as_array().into_iter().flatten().any(|m| m["sha256"] == sha256 && m["active"] == true);
        Ok((!active).then(|| format!("its module is no longer active: {modules}")))
    }

    /// Sends `request` again and again (every `pace`, or as soon as the
    /// last is answered) until `stop`: how many of each answer came back.
    async fn repeat(&self, request: Request, pace: Option<Duration>, stop: &AtomicBool) -> BTreeMap<String, u64> {
        let mut answers = BTreeMap::new();
        let mut ticks = pace.map(|pace| {
            let mut ticks = tokio::time::interval(pace);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        });
        let address = self.base.trim_start_matches("http://").to_owned();
        for n in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(ticks) = &mut ticks {
                ticks.tick().await;
            }
            let answer = match &request {
                Request::Json { method, path, headers, body } => {
                    let mut headers: Vec<(&str, &str)> =
                        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    let body = (!body.is_null()).then(|| {
                        headers.push(("content-type", "application/json"));
                        body.to_string().into()
                    });
                    self.send(method.clone(), path, &headers, body).await
                }
                Request::Upload(headers, bytes) => {
                    let mut headers: Vec<(&str, &str)> =
                        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    headers.push(("content-type", "application/wasm"));
                    let module = bytes.clone().unwrap_or_else(|| tagged(HOSTILE, &format!("loop-{n}")));
                    self.send(Method::POST, "/admin/modules", &headers, Some(module.into())).await
                }
                Request::HangUp(body) => {
                    // On a thread of its own: its wait must not hold up the
                    // load's threads, which also drive tenant B.
                    let (address, body) = (address.clone(), body.clone());
                    let after = Duration::from_micros(n % 300);
                    let _ = tokio::task::spawn_blocking(move || hang_up(&address, &body, after)).await;
                    Ok((0, Value::Null))
                }
            };
            let answer = match answer {
                Ok((0, _)) => "hung up".to_owned(),
                Ok((status, body)) => match body["error"]["code"].as_str().or(body["errorCode"].as_str()) {
                    Some(code) => format!("{status} {code}"),
                    None => status.to_string(),
                },
                Err(error) => format!("transport: {error}"),
            };
            *answers.entry(answer).or_default() += 1;
        }
        answers
    }
}

/// Sends a PlayFab login and hangs up `after` later, without reading the
/// answer (a blocking wait of microseconds, so that the hang-up lands
/// mid-request).
fn hang_up(address: &str, body: &str, after: Duration) {
    let Ok(mut stream) = std::net::TcpStream::connect(address) else { return };
    let request = format!(
        "POST /Client/LoginWithCustomID HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = std::io::Write::write_all(&mut stream, request.as_bytes());
    std::thread::sleep(after);
}

fn id(data: &Value) -> anyhow::Result<String> {
    match data["id"].as_str() {
        Some(id) => Ok(id.to_owned()),
        None => bail!("no id in {data}"),
    }
}
