//! The `economy-host` binary as an engineer runs it: started with nothing
//! configured, it makes an embedded store and prints a `curl` that buys;
//! killed with SIGKILL mid-load, it loses no acknowledged purchase; and a
//! store it cannot use is one clear line, not a panic.

use economy_tests::database::{Backend, TestDatabase};
use futures::future::join_all;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free port on loopback.
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").to_string()
}

/// A running `economy-host`, killed if the test ends before it does.
struct Served(Option<Child>);

impl Served {
    fn wait_with_output(mut self) -> std::io::Result<Output> {
        self.0.take().expect("the server runs").wait_with_output()
    }
}

impl Deref for Served {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("the server runs")
    }
}

impl DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("the server runs")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `economy-host serve` in `dir` on `address`, with only `env` set.
fn serve(dir: &Path, address: &str, env: &[(&str, &str)]) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_economy-host"));
    command.arg("serve").current_dir(dir).env_clear().env("ECONOMY_LISTEN", address).env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    Served(Some(command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts")))
}

/// Waits until the server at `address` answers.
async fn ready(address: &str, child: &mut Child) {
    let started = Instant::now();
    loop {
        if let Ok(reply) = reqwest::get(format!("http://{address}/healthz")).await
            && reply.status().is_success()
        {
            return;
        }
        if let Some(status) = child.try_wait().expect("the child's status") {
            panic!("the server exited with {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("economy-binary-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[tokio::test]
async fn started_with_nothing_configured_it_makes_a_store_and_prints_a_curl_that_buys() {
    let dir = scratch_dir();
    let address = free_address();
    let mut server = serve(&dir, &address, &[]);
    // Everything up to the end of the printed curl.
    let mut printed = String::new();
    let mut out = BufReader::new(server.stdout.take().expect("stdout"));
    while !printed.contains("\"currency_code\": \"gold\"}'") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("stdout reads") > 0, "the output ended early: {printed}");
        printed.push_str(&line);
    }
    ready(&address, &mut server).await;
    let curl = &printed[printed.find("curl ").expect("a curl is printed")..];
    let bought = Command::new("sh").arg("-c").arg(curl).output().expect("curl runs");
    let bought: Value = serde_json::from_slice(&bought.stdout).expect("curl prints JSON");
    assert_eq!(bought["data"]["purchased"], true, "{bought}");
    assert_eq!(bought["data"]["balance_after"], 950);
    let key = std::fs::read_to_string(dir.join("operator.key")).expect("the operator key is saved");
    assert!(printed.contains(key.trim()), "the saved operator key is the one printed");
    demo_sells_the_starter_pack_once_through_its_shop(&address, curl).await;
    server.kill().expect("the server stops");
    server.wait().expect("the server is reaped");

    // A second start keeps the store, the key and the player's purchases.
    let first = address;
    let address = free_address();
    let mut again = serve(&dir, &address, &[]);
    ready(&address, &mut again).await;
    let tenants = reqwest::Client::new()
        .post(format!("http://{address}/operator/tenants"))
        .bearer_auth(key.trim())
        .json(&json!({"slug": "second", "name": "Second"}))
        .send()
        .await
        .expect("the operator route answers");
    assert_eq!(tenants.status(), 201, "the saved operator key still works");
    // The printed curl's keys, against the wallet of the restarted server.
    let wallet = curl
        .split(" -d ")
        .next()
        .expect("the curl's headers")
        .replace("-X POST ", "")
        .replace(&format!("{first}/client/inventory/purchase"), &format!("{address}/client/wallet"));
    let wallet = Command::new("sh").arg("-c").arg(wallet).output().expect("curl runs");
    let wallet: Value = serde_json::from_slice(&wallet.stdout).expect("curl prints JSON");
    // 1,000 less the potion (50) and the starter pack (400).
    assert!(wallet["data"].as_array().unwrap().iter().any(|c| c["currency_code"] == "gold" && c["balance"] == 550));
    again.kill().expect("the server stops");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut again.stdout.take().expect("stdout"), &mut rest).expect("stdout reads");
    assert!(!rest.contains("demo"), "the demo is made once: {rest}");
    std::fs::remove_dir_all(&dir).expect("the scratch directory is removed");
}

/// Purchases keep coming until the host is killed with SIGKILL; started
/// The demo's starter pack, as the README says: sold through the shop,
/// once per player, and not without it. With the printed curl's keys.
async fn demo_sells_the_starter_pack_once_through_its_shop(address: &str, curl: &str) {
    let header = |name: &str| {
        let start = curl.find(name).expect("the curl has the header") + name.len();
        curl[start..].split('\'').next().expect("a quoted header").trim().to_owned()
    };
    let (client_key, session) = (header("x-api-key:"), header("Bearer"));
    let http = reqwest::Client::new();
    let shop: Value = http
        .get(format!("http://{address}/client/stores/shop"))
        .header("x-api-key", &client_key)
        .bearer_auth(&session)
        .send()
        .await
        .expect("the store answers")
        .json()
        .await
        .expect("a JSON store");
    let listings = shop["data"]["listings"].as_array().expect("listings");
    let pack = listings.iter().find(|listing| listing["item_key"] == "starter-pack").expect("the pack is listed");
    let buy = |store: Option<&Value>| {
        let mut body = json!({"catalog_item_id": pack["item_id"], "currency_code": "gold"});
        if let Some(store) = store {
            body["store_id"] = store.clone();
        }
        let request = http.post(format!("http://{address}/client/inventory/purchase")).json(&body);
        let request = request.header("x-api-key", &client_key).bearer_auth(&session);
        async move {
            let reply = request.send().await.unwrap();
            (reply.status().as_u16(), reply.json::<Value>().await.unwrap()["error"]["code"].clone())
        }
    };
    assert_eq!(buy(None).await, (400, json!("NOT_PURCHASABLE")), "not without the shop");
    assert_eq!(buy(Some(&shop["data"]["id"])).await.0, 200);
    assert_eq!(buy(Some(&shop["data"]["id"])).await, (400, json!("MAX_PURCHASES_REACHED")), "once per player");
}

/// again, every purchase it acknowledged is there (its key replays the same
/// purchase) and the balance is the initial one less each recorded charge.
async fn acknowledged_purchases_survive_a_kill(backend: Backend) {
    let database = TestDatabase::of(backend, "economy_kill").await;
    let dir = scratch_dir();
    let env = [("DATABASE_URL", database.url.as_str()), ("ECONOMY_OPERATOR_KEY", "operator")];
    let address = free_address();
    let mut server = serve(&dir, &address, &env);
    ready(&address, &mut server).await;
    let http = reqwest::Client::new();
    let base = format!("http://{address}");
    let call = |method: reqwest::Method, path: &str, headers: &[(&str, &str)], body: Value| {
        let mut request = http.request(method, format!("{base}{path}")).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let reply = request.send().await?;
            let status = reply.status().as_u16();
            reqwest::Result::Ok((status, reply.json::<Value>().await?))
        }
    };
    let (_, tenant) = call(
        reqwest::Method::POST,
        "/operator/tenants",
        &[("authorization", "Bearer operator")],
        json!({"slug": "game", "name": "Game"}),
    )
    .await
    .unwrap();
    let key = |name: &str| tenant["data"][name].as_str().unwrap().to_owned();
    let (admin, client) = (key("admin_key"), key("client_key"));
    // One player buying as fast as it can: a load test, without rate limits.
    call(reqwest::Method::PUT, "/admin/settings", &[("x-api-key", &admin)], json!({"rate_limits": null}))
        .await
        .unwrap();
    call(
        reqwest::Method::PUT,
        "/admin/currencies/gems",
        &[("x-api-key", &admin)],
        json!({"name": "Gems", "initial_balance": 100_000}),
    )
    .await
    .unwrap();
    let (_, sword) = call(
        reqwest::Method::PUT,
        "/admin/catalog/items/sword",
        &[("x-api-key", &admin)],
        json!({"name": "Sword", "item_type": "durable", "prices": [{"currency_code": "gems", "amount": 10}]}),
    )
    .await
    .unwrap();
    let sword = sword["data"]["id"].as_str().unwrap().to_owned();
    let (_, login) = call(
        reqwest::Method::POST,
        "/client/auth/custom",
        &[("x-api-key", &client)],
        json!({"custom_id": "device-secret-0001"}),
    )
    .await
    .unwrap();
    let bearer = format!("Bearer {}", login["data"]["session_token"].as_str().unwrap());
    let buy = |n: usize| {
        let body = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": format!("order-{n}")});
        call(
            reqwest::Method::POST,
            "/client/inventory/purchase",
            &[("x-api-key", &client), ("authorization", &bearer)],
            body,
        )
    };

    // Eight clients buy without pause; the host is killed while they do.
    let started = Instant::now();
    let clients = (0..8).map(|client| {
        let buy = &buy;
        async move {
            let mut acknowledged = Vec::new();
            for n in (client..).step_by(8) {
                match buy(n).await {
                    Ok((200, reply)) => acknowledged.push((n, reply["data"]["purchase_id"].clone())),
                    _ => break,
                }
            }
            acknowledged
        }
    });
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        server.kill().expect("SIGKILL is sent");
        server.wait().expect("the server is reaped");
    };
    let (acknowledged, ()) = tokio::join!(join_all(clients), killer);
    let acknowledged: Vec<(usize, Value)> = acknowledged.into_iter().flatten().collect();
    assert!(acknowledged.len() > 20, "too few purchases before the kill ({:?})", started.elapsed());

    let address = free_address();
    let mut again = serve(&dir, &address, &env);
    ready(&address, &mut again).await;
    let base = format!("http://{address}");
    let call = |path: &str, body: Option<Value>| {
        let request = match &body {
            Some(body) => http.post(format!("{base}{path}")).json(body),
            None => http.get(format!("{base}{path}")),
        };
        request.header("x-api-key", &client).header("authorization", &bearer).send()
    };
    for (n, purchase_id) in &acknowledged {
        let body = json!({"catalog_item_id": sword, "currency_code": "gems", "idempotency_key": format!("order-{n}")});
        let replay = call("/client/inventory/purchase", Some(body)).await.unwrap();
        assert_eq!(replay.headers()["idempotent-replayed"], "true", "acknowledged purchase {n} was lost");
        let replay: Value = replay.json().await.unwrap();
        assert_eq!(&replay["data"]["purchase_id"], purchase_id);
    }
    let inventory: Value = call("/client/inventory", None).await.unwrap().json().await.unwrap();
    let swords = inventory["data"][0]["quantity"].as_i64().unwrap();
    assert!(swords >= acknowledged.len() as i64, "{swords} swords for {} acknowledged purchases", acknowledged.len());
    let wallet: Value = call("/client/wallet", None).await.unwrap().json().await.unwrap();
    assert_eq!(
        wallet["data"][0]["balance"],
        100_000 - 10 * swords,
        "every recorded purchase charged once, none partial"
    );
    again.kill().expect("the server stops");
    let _ = again.wait();
    std::fs::remove_dir_all(&dir).expect("the scratch directory is removed");
}

#[tokio::test]
async fn acknowledged_purchases_survive_a_kill_on_sqlite() {
    acknowledged_purchases_survive_a_kill(Backend::Sqlite).await;
}

#[tokio::test]
async fn acknowledged_purchases_survive_a_kill_on_postgres() {
    acknowledged_purchases_survive_a_kill(Backend::Postgres).await;
}

/// Runs the binary to its exit and returns its stderr.
fn fails_with(dir: &Path, env: &[(&str, &str)]) -> String {
    let server = serve(dir, &free_address(), env);
    let output = server.wait_with_output().expect("the binary exits");
    assert!(!output.status.success(), "the binary should not start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_store_it_cannot_use_or_a_port_in_use_is_one_clear_line() {
    let dir = scratch_dir();
    let one_line = |stderr: &str, says: &str| {
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("economy-host: ") && stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    };
    let corrupt = dir.join("corrupt.db");
    std::fs::write(&corrupt, vec![7u8; 8192]).unwrap();
    let url = format!("sqlite://{}", corrupt.display());
    one_line(&fails_with(&dir, &[("DATABASE_URL", &url)]), "not an economy store");

    one_line(&fails_with(&dir, &[("DATABASE_URL", "sqlite::memory:")]), "in-memory SQLite database");

    let missing = format!("sqlite://{}", dir.join("no/such/dir/x.db").display());
    one_line(&fails_with(&dir, &[("DATABASE_URL", &missing)]), "cannot be opened");

    // A store written by a newer version has a migration this one lacks.
    let newer = dir.join("newer.db");
    let url = format!("sqlite://{}", newer.display());
    let address = free_address();
    let mut server = serve(&dir, &address, &[("DATABASE_URL", &url)]);
    ready(&address, &mut server).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let mut store = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', true, x'00', 0)")
        .execute(&mut store)
        .await
        .unwrap();
    drop(store);
    one_line(&fails_with(&dir, &[("DATABASE_URL", &url)]), "newer version of economy-host");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let server = serve(&dir, &address, &[("DATABASE_URL", &format!("sqlite://{}", dir.join("ok.db").display()))]);
    let output = server.wait_with_output().unwrap();
    one_line(&String::from_utf8_lossy(&output.stderr), "listening on");
    std::fs::remove_dir_all(&dir).expect("the scratch directory is removed");
}

#[test]
fn module_new_writes_a_crate_and_refuses_a_bad_name_or_an_existing_folder() {
    let dir = scratch_dir();
    let module = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_economy-host"))
            .arg("module")
            .args(args)
            .current_dir(&dir)
            .env_remove("ECONOMY_SDK")
            .output()
            .expect("the binary runs")
    };
    let written = module(&["new", "half-price"]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let manifest = std::fs::read_to_string(dir.join("half-price/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"half-price\"") && manifest.contains("economy-core = { version = \"0.1\""));
    assert!(manifest.contains("opt-level = \"s\"") && !manifest.contains("[patch"), "{manifest}");
    for file in [".cargo/config.toml", "src/lib.rs", "scenarios/half-price.json", "README.md", ".gitignore"] {
        assert!(dir.join("half-price").join(file).is_file(), "{file}");
    }
    let again = module(&["new", "half-price"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = module(&["new", "Half Price"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("crate name"));
    let no_sdk = module(&["new", "other", "--sdk", "no-such-folder"]);
    assert!(!no_sdk.status.success() && String::from_utf8_lossy(&no_sdk.stderr).contains("no-such-folder"));
    assert!(!dir.join("other").exists(), "nothing is written for a refused module");
    let untested = module(&["test", "no-such.wasm", "half-price/scenarios"]);
    let stderr = String::from_utf8_lossy(&untested.stderr);
    assert!(!untested.status.success() && stderr.starts_with("economy-host: ") && stderr.contains("no-such.wasm"));
    std::fs::remove_dir_all(&dir).unwrap();
}
