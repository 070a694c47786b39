//! What many tenants cost one host. `--tenants N` sets up N tenants on a
//! server running in a process of its own, each with a rules module of its
//! own (the sale-pricing example, tagged with the tenant's name: no two are
//! the same module, so none shares another's compiled code). Every tenant's
//! player buys once; the server is killed and started again; then every
//! tenant's player buys again, `clients` tenants at a time, so that each
//! purchase is its tenant's first after the restart and loads its module.
//! It reports how long those first purchases took and the server's memory.

use crate::load;
use crate::server::{Api, Process, Shop};
use anyhow::ensure;
use economy_tests::components::SALE_PRICING;
use economy_tests::database::TestPool;
use economy_tests::hostile::tagged;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Tenants set up at once (their uploads compile one at a time anyway).
const SETUP_CONCURRENCY: usize = 4;
/// The targets: every first purchase after a restart within this, the
/// server's memory within the other.
const FIRST_PURCHASE_WITHIN: Duration = Duration::from_secs(3);
const MEMORY_WITHIN: u64 = 256 * 1024 * 1024;

pub async fn run(database_url: &str, tenants: usize, clients: usize) -> anyhow::Result<()> {
    let server = Process::start(database_url).await?;
    let (rss, _) = server.memory()?;
    println!("a fresh server: {} RSS", mib(rss));
    let api = Api::new(&server.base)?;
    let started = Instant::now();
    let shops: Vec<Shop> = futures::stream::iter(0..tenants)
        .map(|i| set_up(&api, i))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    println!("{tenants} tenants set up, each with a module of its own, in {:.0} s", started.elapsed().as_secs_f64());
    let before = purchases(&api, &shops, clients).await?;
    let (rss, peak) = server.memory()?;
    println!("every tenant's player bought once: {before}; server {} RSS, {} at its peak", mib(rss), mib(peak));

    let stopped = Instant::now();
    let server = server.restart().await?;
    println!("server killed and started again: ready in {:.2} s", stopped.elapsed().as_secs_f64());
    let api = Api::new(&server.base)?;
    let first = purchases(&api, &shops, clients).await?;
    let (rss, peak) = server.memory()?;
    println!(
        "every tenant's first purchase after the restart, {clients} tenants at a time: {first}; \
         server {} RSS, {} at its peak",
        mib(rss),
        mib(peak)
    );
    let pool = TestPool::connect(database_url).await;
    let modules: i64 = pool.scalar("SELECT count(DISTINCT module_sha256) FROM purchases").await;
    ensure!(modules == tenants as i64, "the purchases ran {modules} distinct modules, not {tenants}");
    ensure!(first.errors == 0 && before.errors == 0, "purchases failed");
    println!(
        "targets: every first purchase within {FIRST_PURCHASE_WITHIN:?}: {}; the server within {}: {}",
        met(first.slowest <= FIRST_PURCHASE_WITHIN),
        mib(MEMORY_WITHIN),
        met(peak <= MEMORY_WITHIN),
    );
    Ok(())
}

/// Tenant `i`, with a module of its own activated.
async fn set_up(api: &Api, i: usize) -> anyhow::Result<Shop> {
    let slug = format!("tenant-{i}");
    let shop = api.set_up_tenant(&slug, None, 1).await?;
    api.activate(&shop, &tagged(SALE_PRICING, &slug)).await?;
    Ok(shop)
}

/// How a round of purchases went.
struct Round {
    count: usize,
    errors: usize,
    median: Duration,
    p99: Duration,
    slowest: Duration,
    elapsed: Duration,
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
        write!(
            f,
            "{} purchases in {:.1} s, {} errors, median {:.1} ms, p99 {:.1} ms, slowest {:.1} ms",
            self.count,
            self.elapsed.as_secs_f64(),
            self.errors,
            ms(self.median),
            ms(self.p99),
            ms(self.slowest)
        )
    }
}

/// One purchase by each shop's player, `clients` at a time.
async fn purchases(api: &Api, shops: &[Shop], clients: usize) -> anyhow::Result<Round> {
    let started = Instant::now();
    let answers: Vec<(u16, Duration)> = futures::stream::iter(shops)
        .map(|shop| async move {
            let auth = format!("Bearer {}", shop.spread[0].token);
            let headers = [
                ("x-api-key", shop.client_key.as_str()),
                ("authorization", &auth),
                ("content-type", "application/json"),
            ];
            let body = json!({"catalog_item_id": shop.sword_id, "currency_code": "gems"});
            let sent = Instant::now();
            let (status, answer) =
                api.send(Method::POST, "/client/inventory/purchase", &headers, Some(body.to_string().into())).await?;
            if status != 200 {
                eprintln!("{}: {status} {answer}", shop.tenant_id);
            }
            anyhow::Ok((status, sent.elapsed()))
        })
        .buffer_unordered(clients)
        .try_collect()
        .await?;
    let mut latencies: Vec<Duration> = answers.iter().map(|(_, took)| *took).collect();
    latencies.sort();
    let at = |q: f64| load::percentile(&latencies, q).unwrap_or_default();
    Ok(Round {
        count: answers.len(),
        errors: answers.iter().filter(|(status, _)| *status != 200).count(),
        median: at(0.5),
        p99: at(0.99),
        slowest: at(1.0),
        elapsed: started.elapsed(),
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "NOT met" }
}
