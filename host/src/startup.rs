//! Builds the application: storage (migrated), the wasm runtime, the router,
//! and a bound listener (port 0 picks a free port, for tests).

use crate::config::Settings;
use crate::economy::Economy;
use crate::http::serve::ReadTimeouts;
use crate::http::{self, AppState};
use crate::rules::Rules;
use crate::runtime::Runtime;
use crate::storage::{PgStores, TenantStores};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    stores: Arc<PgStores>,
    read_timeouts: ReadTimeouts,
}

impl Application {
    /// Connects, migrates, compiles the built-in rules, and binds.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let runtime = Runtime::new(settings.runtime_limits())
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .context("starting the wasm runtime")?;
        Self::build_with_runtime(settings, runtime).await
    }

    /// As [`Application::build`], sharing an existing runtime (tests start
    /// many applications in one process).
    pub async fn build_with_runtime(settings: &Settings, runtime: Runtime) -> anyhow::Result<Self> {
        let stores = Arc::new(PgStores::connect(&settings.postgres()).await.context("connecting to the database")?);
        let control = stores.control();
        let tenant_stores: Arc<dyn TenantStores> = stores.clone();
        let rules = Rules::new(runtime, control.clone(), tenant_stores.clone());
        let session_ttl = Duration::from_secs(settings.session_ttl_seconds);
        let economy = Arc::new(Economy::new(control, tenant_stores, rules, session_ttl));
        let state = AppState::new(economy, settings.operator_key.as_deref());
        let listener =
            TcpListener::bind(&settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
        Ok(Self { listener, router: http::router(state), stores, read_timeouts: settings.read_timeouts() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The default database's pool (the tests and the benchmark audit it).
    pub fn pool(&self) -> &sqlx::PgPool {
        self.stores.pool()
    }

    /// Every store: closing them commits what is queued.
    pub fn stores(&self) -> &Arc<PgStores> {
        &self.stores
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        http::serve::serve(self.listener, self.router, self.read_timeouts, shutdown).await
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; finishing in-flight requests");
}
