//! A database of a test's own, dropped when the test ends: a fresh
//! database on the PostgreSQL server named by `ECONOMY_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), or, when that
//! server is a Citus coordinator, a fresh schema in its database (Citus
//! keeps its workers per database, so the suite shares the one that has
//! them, each test in a schema of its own).

use sqlx::{Connection, Executor, PgConnection};

/// The server every test database is made on.
pub fn server_url() -> String {
    std::env::var("ECONOMY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A test's own database (or schema), with the URL that reaches it.
pub struct TestDatabase {
    pub url: String,
    /// Whether it is a schema on a Citus coordinator.
    pub citus: bool,
    /// The server it was made on, and the statement that removes it.
    server: String,
    drop: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database (or schema) named after `prefix` on
    /// the tests' server.
    pub async fn create(prefix: &str) -> Self {
        Self::create_on(&server_url(), prefix).await
    }

    /// As [`TestDatabase::create`], on the server `server` reaches.
    pub async fn create_on(server: &str, prefix: &str) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let server = server.to_owned();
        let mut admin = PgConnection::connect(&server).await.expect("PostgreSQL is reachable");
        let citus: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(&mut admin)
            .await
            .expect("the server answers");
        if citus {
            admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE SCHEMA "{name}""#))).await.expect("a schema");
            let separator = if server.contains('?') { '&' } else { '?' };
            let url = format!("{server}{separator}options[search_path]={name}");
            let drop = format!(r#"DROP SCHEMA IF EXISTS "{name}" CASCADE"#);
            return Self { url, citus, server, drop };
        }
        admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#))).await.expect("a database");
        let base = server.split('?').next().unwrap_or(&server);
        let host = base.rsplit_once('/').map_or(base, |(host, _)| host);
        let url = format!("{host}/{name}");
        Self { url, citus, server, drop: format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#) }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = std::mem::take(&mut self.drop);
        let server = std::mem::take(&mut self.server);
        // Drop runs outside any runtime we may block on: use a thread of its own.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let _ = admin.execute(sqlx::AssertSqlSafe(statement)).await;
                }
            });
        })
        .join()
        .expect("the test database is dropped");
    }
}
