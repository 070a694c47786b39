//! Builds the application: storage (migrated), the wasm runtime, the router,
//! and a bound listener (port 0 picks a free port, for tests).

use crate::config::{OPERATOR_KEY_FILE, Settings};
use crate::demo::{self, Demo};
use crate::economy::Economy;
use crate::http::serve::ReadTimeouts;
use crate::http::{self, AppState};
use crate::rules::Rules;
use crate::runtime::Runtime;
use crate::secrets;
use crate::storage::{Stores, TenantStores};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    stores: Arc<Stores>,
    economy: Arc<Economy>,
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
        let stores = Stores::open(&settings.stores()).await.map_err(|error| anyhow::anyhow!("{error}"));
        let stores = Arc::new(stores.context("opening the store")?);
        let control = stores.control();
        let tenant_stores: Arc<dyn TenantStores> = stores.clone();
        let rules = Rules::new(runtime, control.clone(), tenant_stores.clone());
        let economy = Arc::new(Economy::new(control, tenant_stores, rules, settings.economy()));
        let state = AppState::new(economy.clone(), settings.operator_key.as_deref());
        let listener =
            TcpListener::bind(&settings.listen).await.with_context(|| format!("listening on {}", settings.listen))?;
        Ok(Self { listener, router: http::router(state), stores, economy, read_timeouts: settings.read_timeouts() })
    }

    /// Creates the demo tenant if the store has no tenant yet.
    pub async fn create_demo_if_empty(&self) -> anyhow::Result<Option<Demo>> {
        if self.economy.has_tenants().await? {
            return Ok(None);
        }
        Ok(Some(demo::create(&self.economy).await?))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Every store: closing them commits what is queued.
    pub fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        http::serve::serve(self.listener, self.router, self.read_timeouts, shutdown).await
    }
}

/// The operator key kept in `dir` (the embedded store's directory),
/// generated and saved (readable by its owner only) if there is none yet;
/// true if it was generated now.
pub fn operator_key_in(dir: &Path) -> anyhow::Result<(String, bool)> {
    let path = dir.join(OPERATOR_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok((key.trim().to_owned(), false)),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    }
    let key = secrets::generate("eo_");
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    let mut file = file.open(&path).with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{key}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((key, true))
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
