//! A database of a test's own, dropped when the test ends: a fresh
//! database on the PostgreSQL server named by `ECONOMY_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), or, when that
//! server is a Citus coordinator, a fresh schema in its database (Citus
//! keeps its workers per database, so the suite shares the one that has
//! them, each test in a schema of its own); or a fresh SQLite file in the
//! system's temporary directory.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Decode, Executor, FromRow, PgConnection, PgPool, Postgres, Sqlite, SqlitePool, Type};
use std::path::PathBuf;

/// Which backend a test's database is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The server every test database is made on.
pub fn server_url() -> String {
    std::env::var("ECONOMY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A test's own database (or schema, or file), with the URL that reaches it.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    /// Whether it is a schema on a Citus coordinator.
    pub citus: bool,
    /// The server it was made on, and the statement that removes it.
    server: String,
    drop: String,
    /// A SQLite file, removed with its journal files.
    file: Option<PathBuf>,
}

impl TestDatabase {
    /// A fresh database of `backend`, named after `prefix`.
    pub async fn of(backend: Backend, prefix: &str) -> Self {
        match backend {
            Backend::Postgres => Self::create(prefix).await,
            Backend::Sqlite => Self::sqlite(prefix),
        }
    }

    /// A fresh SQLite file (made when the host first opens it).
    pub fn sqlite(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join("economy-tests");
        std::fs::create_dir_all(&dir).expect("a directory for test stores");
        let file = dir.join(format!("{prefix}_{}.db", uuid::Uuid::new_v4().simple()));
        Self {
            url: format!("sqlite://{}", file.display()),
            backend: Backend::Sqlite,
            citus: false,
            server: String::new(),
            drop: String::new(),
            file: Some(file),
        }
    }

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
            return Self { url, backend: Backend::Postgres, citus, server, drop, file: None };
        }
        admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#))).await.expect("a database");
        let base = server.split('?').next().unwrap_or(&server);
        let host = base.rsplit_once('/').map_or(base, |(host, _)| host);
        let url = format!("{host}/{name}");
        let drop = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
        Self { url, backend: Backend::Postgres, citus, server, drop, file: None }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            return;
        }
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

/// A connection pool to a test's database, of either backend, for the
/// checks a test makes directly (portable SQL only).
#[derive(Clone)]
pub enum TestPool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl TestPool {
    pub async fn connect(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(SqlitePool::connect(url).await.expect("the test store opens"))
        } else {
            Self::Postgres(PgPool::connect(url).await.expect("the test database is reachable"))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The one value `sql` selects.
    pub async fn scalar<T>(&self, sql: &'static str) -> T
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite> + Send + Unpin,
    {
        match self {
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Every row `sql` selects.
    pub async fn rows<T>(&self, sql: &'static str) -> Vec<T>
    where
        T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        match self {
            Self::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Self::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Runs `sql` with one integer argument `$1`.
    pub async fn execute(&self, sql: &'static str, argument: i64) {
        match self {
            Self::Postgres(pool) => sqlx::query(sql).bind(argument).execute(pool).await.map(|_| ()),
            Self::Sqlite(pool) => sqlx::query(sql).bind(argument).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }
}
