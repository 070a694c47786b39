//! The server under test, on a fresh database, and the tenant, catalog and
//! players the load runs against (set up over HTTP like a studio would).

use anyhow::{bail, ensure};
use economy_host::config::Settings;
use economy_host::startup::Application;
use economy_host::storage::{Stores, TenantStores};
use economy_tests::database::{Backend, TestDatabase, TestPool};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

/// The balance every player starts with: no purchase run can exhaust it.
pub const INITIAL_GEMS: i64 = 1_000_000_000_000;
/// Potions granted to every player for the consume runs.
pub const INITIAL_POTIONS: i64 = 1_000_000;

pub struct Server {
    pub base: String,
    pub pool: TestPool,
    stores: Arc<Stores>,
    /// The bench database (a schema of its own on a Citus coordinator).
    pub database: TestDatabase,
    runtime: tokio::runtime::Runtime,
}

/// A logged-in player.
#[derive(Clone)]
pub struct Player {
    pub identity: String,
    pub token: String,
}

/// What the load needs: the server, keys, item ids and players.
#[derive(Clone)]
pub struct Shop {
    /// `host:port` of the server.
    pub address: String,
    pub tenant_id: String,
    pub admin_key: String,
    pub client_key: String,
    pub server_key: String,
    pub sword_id: String,
    /// The shop's sword listing, as Sverse's routes name it.
    pub shop_item_id: String,
    pub potion_id: String,
    pub spread: Vec<Player>,
    pub hot: Vec<Player>,
}

/// A fresh bench database: on the PostgreSQL server of `admin_url`, or an
/// embedded SQLite file. Dropped, it is removed.
pub async fn bench_database(admin_url: &str, backend: Backend) -> TestDatabase {
    match backend {
        Backend::Postgres => TestDatabase::create_on(admin_url, "economy_bench").await,
        Backend::Sqlite => TestDatabase::sqlite("economy_bench"),
    }
}

impl Server {
    /// Creates the bench database and starts the server on its own runtime
    /// (two worker threads, as the server would have on this machine).
    pub fn start(admin_url: &str, backend: Backend, pool_size: u32) -> anyhow::Result<Self> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("server").enable_all().build()?;
        let (base, stores, database, pool) = runtime.block_on(async {
            let database = bench_database(admin_url, backend).await;
            let mut settings = Settings::for_database(&database.url);
            settings.listen = "127.0.0.1:0".into();
            settings.operator_key = Some("bench-operator".into());
            settings.db_pool_size = pool_size;
            let app = Application::build(&settings).await?;
            let base = format!("http://{}", app.local_addr());
            let stores = app.stores().clone();
            tokio::spawn(app.run_until(std::future::pending()));
            let pool = TestPool::connect(&database.url).await;
            anyhow::Ok((base, stores, database, pool))
        })?;
        Ok(Self { base, pool, stores, database, runtime })
    }

    /// Creates the tenant, a currency, two items, `users` spread players and
    /// one hot player, each holding potions to consume.
    pub async fn set_up(&self, users: usize) -> anyhow::Result<Shop> {
        self.set_up_tenant("bench", None, users).await
    }

    /// As [`Server::set_up`], for a tenant `slug` whose data lives in
    /// `database_url` (`None`: the server's default database).
    pub async fn set_up_tenant(&self, slug: &str, database_url: Option<&str>, users: usize) -> anyhow::Result<Shop> {
        Api::new(&self.base)?.set_up_tenant(slug, database_url, users).await
    }

    /// Stops the server and drops the bench database.
    pub fn stop(self) {
        let Self { runtime, stores, database, .. } = self;
        runtime.block_on(async move { stores.close().await });
        runtime.shutdown_background();
        drop(database);
    }
}

/// The server's HTTP API, as the setup and the attacks call it.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        Ok(Self { http, base: base.to_owned() })
    }

    /// Sends a request: its status and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<reqwest::Body>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Sends a JSON request that must succeed: the answer's `data`.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut headers = headers.to_vec();
        headers.push(("content-type", "application/json"));
        let (status, answer) = self.send(method, path, &headers, Some(body.to_string().into())).await?;
        if !(200..300).contains(&status) {
            bail!("{path}: {status} {answer}");
        }
        Ok(answer["data"].clone())
    }

    /// Uploads and activates a module for `shop`'s tenant: its SHA-256.
    pub async fn activate(&self, shop: &Shop, module: &[u8]) -> anyhow::Result<String> {
        let admin = [("x-api-key", shop.admin_key.as_str()), ("content-type", "application/wasm")];
        let (status, uploaded) =
            self.send(Method::POST, "/admin/modules", &admin, Some(module.to_vec().into())).await?;
        ensure!(status == 201, "upload: {status} {uploaded}");
        let sha256 = uploaded["data"]["sha256"].as_str().unwrap_or_default().to_owned();
        self.expect(Method::PUT, "/admin/modules/active", &admin[..1], json!({"sha256": sha256})).await?;
        Ok(sha256)
    }

    /// Creates the tenant `slug` (its data in `database_url`, or the
    /// server's default database), a currency, two items, a store, `users`
    /// spread players and one hot player, each holding potions to consume.
    pub async fn set_up_tenant(&self, slug: &str, database_url: Option<&str>, users: usize) -> anyhow::Result<Shop> {
        let operator = [("authorization", "Bearer bench-operator")];
        let mut new_tenant = json!({"slug": slug, "name": slug});
        if let Some(url) = database_url {
            new_tenant["database_url"] = json!(url);
        }
        let tenant = self.expect(Method::POST, "/operator/tenants", &operator, new_tenant).await?;
        let key = |name: &str| tenant[name].as_str().expect("a key").to_owned();
        let (admin_key, server_key, client_key, tenant_id) =
            (key("admin_key"), key("server_key"), key("client_key"), key("id"));
        let admin = [("x-api-key", admin_key.as_str())];
        // A load test: the tenant's rate limits are off.
        self.expect(Method::PUT, "/admin/settings", &admin, json!({"rate_limits": null})).await?;
        let gems = json!({"name": "Gems", "initial_balance": INITIAL_GEMS});
        self.expect(Method::PUT, "/admin/currencies/gems", &admin, gems).await?;
        let item = |key: &'static str, item_type: &'static str| async move {
            let body = json!({"name": key, "item_type": item_type, "prices": [{"currency_code": "gems", "amount": 1}]});
            let item = self.expect(Method::PUT, &format!("/admin/catalog/items/{key}"), &admin, body).await?;
            anyhow::Ok(item["id"].as_str().expect("an id").to_owned())
        };
        let sword_id = item("sword", "durable").await?;
        let potion_id = item("potion", "consumable").await?;
        let shop = json!({"name": "Shop", "listings": [{"item_key": "sword"}]});
        self.expect(Method::PUT, "/admin/stores/shop", &admin, shop).await?;
        let server = [("x-api-key", server_key.as_str())];
        let (_, listed) = self.send(Method::GET, "/api/private/shop-items", &server, None).await?;
        let shop_item_id = listed["data"]["items"][0]["id"].as_str().expect("the sword's shop item").to_owned();

        let identities: Vec<String> =
            (0..users).map(|i| format!("player-{i}")).chain(["hot-player".to_owned()]).collect();
        let players: Vec<Player> = futures::stream::iter(identities)
            .map(|identity| async move {
                let path = format!("/server/users/{identity}/sessions");
                let session = self.expect(Method::POST, &path, &server, json!({})).await?;
                let grant = json!({"item_key": "potion", "quantity": INITIAL_POTIONS});
                self.expect(Method::POST, &format!("/server/users/{identity}/grants"), &server, grant).await?;
                let token = session["session_token"].as_str().expect("a token").to_owned();
                anyhow::Ok(Player { identity, token })
            })
            .buffered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let (spread, hot) = players.split_at(users);
        Ok(Shop {
            address: self.base.trim_start_matches("http://").to_owned(),
            tenant_id,
            admin_key,
            client_key,
            server_key,
            sword_id,
            shop_item_id,
            potion_id,
            spread: spread.to_vec(),
            hot: hot.to_vec(),
        })
    }
}

/// A server in a process of its own (this program, run with `--serve`), so
/// that its memory is its own and it can be restarted.
pub struct Process {
    child: std::process::Child,
    database_url: String,
    pub base: String,
}

impl Process {
    /// Starts the server on `database_url` and waits until it is ready.
    pub async fn start(database_url: &str) -> anyhow::Result<Self> {
        // A free port: the child binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["--serve", database_url, "--listen", &listen])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let mut process = Self { child, database_url: database_url.to_owned(), base: format!("http://{listen}") };
        let http = reqwest::Client::new();
        let ready = format!("{}/readyz", process.base);
        for _ in 0..600 {
            if let Some(status) = process.child.try_wait()? {
                bail!("the server exited: {status}");
            }
            if http.get(&ready).send().await.is_ok_and(|response| response.status().is_success()) {
                return Ok(process);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        process.kill();
        bail!("the server was not ready within 30 s")
    }

    /// Kills the server (as a crash or a deploy would) and starts it again
    /// on the same database.
    pub async fn restart(mut self) -> anyhow::Result<Self> {
        self.kill();
        Self::start(&self.database_url).await
    }

    /// The server's resident memory now, and its peak, in bytes.
    pub fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| {
            let line = status.lines().find(|line| line.starts_with(name));
            let kib = line.and_then(|line| line.split_whitespace().nth(1)).and_then(|kib| kib.parse::<u64>().ok());
            kib.map(|kib| kib * 1024).ok_or_else(|| anyhow::anyhow!("no {name} in /proc/…/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `--serve` side of [`Process`]: serves `database_url` on `listen`
/// until killed, with the host's default settings otherwise.
pub fn serve(database_url: &str, listen: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut settings = Settings::for_database(database_url);
        settings.listen = listen.to_owned();
        settings.operator_key = Some("bench-operator".into());
        Application::build(&settings).await?.run_until(std::future::pending()).await?;
        anyhow::Ok(())
    })
}
