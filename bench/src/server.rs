//! The server under test, on a fresh database, and the tenant, catalog and
//! players the load runs against (set up over HTTP like a studio would).

use anyhow::bail;
use economy_host::config::Settings;
use economy_host::startup::Application;
use economy_host::storage::{Stores, TenantStores};
use economy_tests::database::{Backend, TestDatabase, TestPool};
use futures::StreamExt;
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
    pub client_key: String,
    pub server_key: String,
    pub sword_id: String,
    /// The shop's sword listing, as Sverse's routes name it.
    pub shop_item_id: String,
    pub potion_id: String,
    pub spread: Vec<Player>,
    pub hot: Vec<Player>,
}

impl Server {
    /// Creates the bench database and starts the server on its own runtime
    /// (two worker threads, as the server would have on this machine).
    pub fn start(admin_url: &str, backend: Backend, pool_size: u32) -> anyhow::Result<Self> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("server").enable_all().build()?;
        let (base, stores, database, pool) = runtime.block_on(async {
            let database = match backend {
                Backend::Postgres => TestDatabase::create_on(admin_url, "economy_bench").await,
                Backend::Sqlite => TestDatabase::sqlite("economy_bench"),
            };
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
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        let call = |method: reqwest::Method, path: String, auth: Option<(&'static str, String)>, body: Value| {
            call(&http, &self.base, method, path, auth, body)
        };
        let post = reqwest::Method::POST;
        let put = reqwest::Method::PUT;
        let operator = Some(("authorization", "Bearer bench-operator".to_owned()));
        let mut new_tenant = json!({"slug": slug, "name": slug});
        if let Some(url) = database_url {
            new_tenant["database_url"] = json!(url);
        }
        let tenant = call(post.clone(), "/operator/tenants".into(), operator, new_tenant).await?;
        let key = |name: &str| tenant[name].as_str().expect("a key").to_owned();
        let (admin, server, client_key) = (key("admin_key"), key("server_key"), key("client_key"));
        let tenant_id = key("id");
        let admin_header = || Some(("x-api-key", admin.clone()));
        // A load test: the tenant's rate limits are off.
        call(put.clone(), "/admin/settings".into(), admin_header(), json!({"rate_limits": null})).await?;
        call(
            put.clone(),
            "/admin/currencies/gems".into(),
            admin_header(),
            json!({"name": "Gems", "initial_balance": INITIAL_GEMS}),
        )
        .await?;
        let item = |key: &'static str, item_type: &'static str| {
            let body = json!({"name": key, "item_type": item_type, "prices": [{"currency_code": "gems", "amount": 1}]});
            call(put.clone(), format!("/admin/catalog/items/{key}"), admin_header(), body)
        };
        let sword_id = item("sword", "durable").await?["id"].as_str().expect("an id").to_owned();
        let potion_id = item("potion", "consumable").await?["id"].as_str().expect("an id").to_owned();
        let shop = json!({"name": "Shop", "listings": [{"item_key": "sword"}]});
        call(put.clone(), "/admin/stores/shop".into(), admin_header(), shop).await?;
        let listed = call(
            reqwest::Method::GET,
            "/api/private/shop-items".into(),
            Some(("x-api-key", server.clone())),
            json!({}),
        )
        .await?;
        let shop_item_id = listed["items"][0]["id"].as_str().expect("the sword's shop item").to_owned();

        let identities: Vec<String> =
            (0..users).map(|i| format!("player-{i}")).chain(["hot-player".to_owned()]).collect();
        let players: Vec<Player> = futures::stream::iter(identities)
            .map(|identity| {
                let server = server.clone();
                let call = &call;
                async move {
                    let path = format!("/server/users/{identity}/sessions");
                    let session =
                        call(reqwest::Method::POST, path, Some(("x-api-key", server.clone())), json!({})).await?;
                    let grant = json!({"item_key": "potion", "quantity": INITIAL_POTIONS});
                    let path = format!("/server/users/{identity}/grants");
                    call(reqwest::Method::POST, path, Some(("x-api-key", server)), grant).await?;
                    let token = session["session_token"].as_str().expect("a token").to_owned();
                    anyhow::Ok(Player { identity, token })
                }
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
            client_key,
            server_key: server,
            sword_id,
            shop_item_id,
            potion_id,
            spread: spread.to_vec(),
            hot: hot.to_vec(),
        })
    }

    /// Stops the server and drops the bench database.
    pub fn stop(self) {
        let Self { runtime, stores, database, .. } = self;
        runtime.block_on(async move { stores.close().await });
        runtime.shutdown_background();
        drop(database);
    }
}

/// One API call; the `data` of a success, or an error naming the route.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: String,
    auth: Option<(&'static str, String)>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, format!("{base}{path}")).json(&body);
    if let Some((header, value)) = auth {
        request = request.header(header, value);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("{path}: {status} {body}");
    }
    Ok(body["data"].clone())
}
