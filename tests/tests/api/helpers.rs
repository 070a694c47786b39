//! One helper layer: a server on a free port with its own fresh database,
//! and a client that speaks the API.

use economy_host::config::Settings;
use economy_host::runtime::{Runtime, RuntimeLimits};
use economy_host::startup::Application;
pub use economy_tests::database::TestPool;
use economy_tests::database::{Backend, TestDatabase};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// One engine for the whole test binary: compiling the rules and reserving
/// the instance pool once keeps each test cheap.
fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeLimits::default()).expect("the runtime starts")).clone()
}

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub operator_key: String,
    /// The database, for checks made directly (portable SQL).
    pub pool: TestPool,
    /// The database's URL; the app that created the database drops it.
    database_url: String,
    _database: Option<Arc<TestDatabase>>,
}

/// A tenant with its keys.
#[derive(Clone)]
pub struct Tenant {
    pub id: String,
    pub client_key: String,
    pub server_key: String,
    pub admin_key: String,
}

/// A logged-in player.
#[derive(Clone)]
pub struct Player {
    pub token: String,
    pub user_id: String,
    pub identity: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The `data` of a success.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn assert_ok(&self) -> &Value {
        assert!((200..300).contains(&self.status), "expected success, got {} {}", self.status, self.body);
        self.data()
    }

    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.body["error"]["code"].as_str()), (status, Some(code)), "body: {}", self.body);
    }
}

/// Ends a test that does not apply to this binary's backend, saying why in
/// the test's output (never silently).
pub fn not_applicable(why: &str) {
    println!("not applicable to {:?}: {why}", backend());
}

/// The backend this test binary runs against: the suite is built twice,
/// as `api` (PostgreSQL) and `api_sqlite` (the embedded SQLite store).
pub fn backend() -> Backend {
    match env!("CARGO_CRATE_NAME") {
        "api_sqlite" => Backend::Sqlite,
        _ => Backend::Postgres,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An app whose settings `configure` changes from the tests' own.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::of(backend(), "economy_test").await;
    let operator_key = format!("operator-{}", Uuid::new_v4());
    start(database.url.clone(), operator_key, Some(Arc::new(database)), configure, |_| runtime()).await
}

/// As [`spawn_app_with`], for settings of the wasm runtime: the app starts a
/// runtime of its own from them.
pub async fn spawn_app_with_runtime(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::of(backend(), "economy_test").await;
    let operator_key = format!("operator-{}", Uuid::new_v4());
    let own = |settings: &Settings| Runtime::new(settings.runtime_limits()).expect("the runtime starts");
    start(database.url.clone(), operator_key, Some(Arc::new(database)), configure, own).await
}

async fn start(
    database_url: String,
    operator_key: String,
    database: Option<Arc<TestDatabase>>,
    configure: impl FnOnce(&mut Settings),
    runtime: impl FnOnce(&Settings) -> Runtime,
) -> TestApp {
    let mut settings = Settings::for_database(&database_url);
    settings.listen = "127.0.0.1:0".into();
    settings.operator_key = Some(operator_key.clone());
    // Short enough for the slow-client tests to wait out.
    settings.header_read_timeout_ms = 1_000;
    settings.body_read_timeout_ms = 1_000;
    configure(&mut settings);
    let app = Application::build_with_runtime(&settings, runtime(&settings)).await.expect("the application starts");
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let pool = TestPool::connect(&database_url).await;
    // The server closes a kept-alive connection idle for its header timeout;
    // the client lets go of idle ones before that, so a request never races
    // the close on a connection the server is dropping.
    let http = reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_millis(500))
        .build()
        .expect("an HTTP client");
    TestApp { address, http, operator_key, pool, database_url, _database: database }
}

impl TestApp {
    /// A second host process on the same database, as behind a load balancer.
    pub async fn sibling(&self) -> TestApp {
        start(self.database_url.clone(), self.operator_key.clone(), None, |_| {}, |_| runtime()).await
    }
}

/// Who a request is from.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Nobody,
    Key(&'a str),
    Session(&'a str, &'a Player),
    Operator(&'a str),
}

impl TestApp {
    pub async fn call(&self, method: Method, path: &str, who: As<'_>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        request = match who {
            As::Nobody => request,
            As::Key(key) => request.header("X-Api-Key", key),
            As::Session(key, player) => request.header("X-Api-Key", key).bearer_auth(&player.token),
            As::Operator(key) => request.bearer_auth(key),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, body, headers }
    }

    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        let reply = self
            .call(
                Method::POST,
                "/operator/tenants",
                As::Operator(&self.operator_key),
                Some(json!({"slug": slug, "name": slug})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let data = reply.data();
        let text = |field: &str| data[field].as_str().expect("a string field").to_owned();
        Tenant {
            id: text("id"),
            client_key: text("client_key"),
            server_key: text("server_key"),
            admin_key: text("admin_key"),
        }
    }

    /// Sets the operator's limits of `tenant`'s module calls.
    pub async fn set_limits(&self, tenant: &Tenant, limits: Value) {
        let path = format!("/operator/tenants/{}/limits", tenant.id);
        self.call(Method::PUT, &path, As::Operator(&self.operator_key), Some(limits)).await.assert_ok();
    }

    /// Turns the tenant's rate limits off, as a load test does: for tests
    /// that race many writes on one player.
    pub async fn without_rate_limits(&self, tenant: &Tenant) {
        let body = json!({"rate_limits": null});
        self.call(Method::PUT, "/admin/settings", As::Key(&tenant.admin_key), Some(body)).await.assert_ok();
    }

    pub async fn put_currency(&self, tenant: &Tenant, code: &str, body: Value) {
        self.call(Method::PUT, &format!("/admin/currencies/{code}"), As::Key(&tenant.admin_key), Some(body))
            .await
            .assert_ok();
    }

    /// Creates or replaces an item; returns its id.
    pub async fn put_item(&self, tenant: &Tenant, key: &str, body: Value) -> String {
        let reply = self
            .call(Method::PUT, &format!("/admin/catalog/items/{key}"), As::Key(&tenant.admin_key), Some(body))
            .await;
        reply.assert_ok()["id"].as_str().expect("an id").to_owned()
    }

    /// Creates or replaces a store; returns its id.
    pub async fn put_store(&self, tenant: &Tenant, key: &str, body: Value) -> String {
        let reply =
            self.call(Method::PUT, &format!("/admin/stores/{key}"), As::Key(&tenant.admin_key), Some(body)).await;
        reply.assert_ok()["id"].as_str().expect("an id").to_owned()
    }

    pub async fn login(&self, tenant: &Tenant, custom_id: &str) -> Player {
        let reply = self
            .call(
                Method::POST,
                "/client/auth/custom",
                As::Key(&tenant.client_key),
                Some(json!({"custom_id": custom_id})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        Player {
            token: reply.data()["session_token"].as_str().expect("a token").to_owned(),
            user_id: reply.data()["app_user_id"].as_str().expect("a user id").to_owned(),
            // A custom-id login's player has an identity of its own, not the custom id.
            identity: reply.data()["identity"].as_str().expect("an identity").to_owned(),
        }
    }

    pub async fn purchase(&self, tenant: &Tenant, player: &Player, body: Value) -> Reply {
        self.call(Method::POST, "/client/inventory/purchase", As::Session(&tenant.client_key, player), Some(body)).await
    }

    pub async fn consume(&self, tenant: &Tenant, player: &Player, item_id: &str, quantity: i64) -> Reply {
        let path = format!("/client/inventory/{item_id}/consume");
        self.call(Method::POST, &path, As::Session(&tenant.client_key, player), Some(json!({"quantity": quantity})))
            .await
    }

    pub async fn grant(&self, tenant: &Tenant, player: &Player, body: Value) -> Reply {
        let path = format!("/server/users/{}/grants", player.identity);
        self.call(Method::POST, &path, As::Key(&tenant.server_key), Some(body)).await
    }

    /// The player's balance in `code`.
    pub async fn balance(&self, tenant: &Tenant, player: &Player, code: &str) -> i64 {
        let reply = self.call(Method::GET, "/client/wallet", As::Session(&tenant.client_key, player), None).await;
        let wallet = reply.assert_ok().as_array().expect("a list").clone();
        wallet.iter().find(|entry| entry["currency_code"] == code).expect("the currency is in the wallet")["balance"]
            .as_i64()
            .expect("an integer balance")
    }

    /// How many of the item the player holds (0 if not shown).
    pub async fn quantity(&self, tenant: &Tenant, player: &Player, item_id: &str) -> i64 {
        let reply = self.call(Method::GET, "/client/inventory", As::Session(&tenant.client_key, player), None).await;
        let stacks = reply.assert_ok().as_array().expect("a list").clone();
        stacks
            .iter()
            .filter(|stack| stack["catalog_item_id"] == item_id)
            .map(|stack| stack["quantity"].as_i64().unwrap())
            .sum()
    }

    /// Checks the stored invariants directly: every balance equals the sum
    /// of its ledger entries, and nothing is negative.
    pub async fn audit(&self) {
        let mismatched: i64 = self
            .pool
            .scalar(
                "SELECT count(*) FROM balances b
                 WHERE b.balance <> (SELECT COALESCE(sum(l.delta), 0) FROM ledger l
                                     WHERE l.user_id = b.user_id AND l.currency_code = b.currency_code)",
            )
            .await;
        assert_eq!(mismatched, 0, "balances that differ from their ledger");
        let negative: i64 = self
            .pool
            .scalar(
                "SELECT (SELECT count(*) FROM balances WHERE balance < 0) + (SELECT count(*) FROM inventory WHERE quantity < 0)",
            )
            .await;
        assert_eq!(negative, 0, "negative balances or stacks");
    }

    /// All ledger entries of the player, newest first.
    pub async fn ledger(&self, tenant: &Tenant, player: &Player, query: &str) -> Reply {
        let path = format!("/server/users/{}/ledger{query}", player.identity);
        self.call(Method::GET, &path, As::Key(&tenant.server_key), None).await
    }
}

/// A tenant with a `gems` currency (initial balance `gems`), and a player.
pub async fn shop(app: &TestApp, gems: i64) -> (Tenant, Player) {
    let tenant = app.create_tenant("game").await;
    app.put_currency(&tenant, "gems", json!({"name": "Gems", "initial_balance": gems})).await;
    let player = app.login(&tenant, "player-1").await;
    (tenant, player)
}

/// A plain item priced in gems; returns its id.
pub async fn priced_item(app: &TestApp, tenant: &Tenant, key: &str, item_type: &str, gems: i64) -> String {
    app.put_item(
        tenant,
        key,
        json!({"name": key, "item_type": item_type, "prices": [{"currency_code": "gems", "amount": gems}]}),
    )
    .await
}
