//! `economy-host`: the server binary. Thin: parse, log, build, serve.

use clap::{Parser, Subcommand};
use economy_host::config::Settings;
use economy_host::startup::{Application, shutdown_signal};

#[derive(Parser)]
#[command(
    name = "economy-host",
    version,
    about = "A virtual-economy server whose rules run as a WebAssembly component"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (configuration from the environment).
    Serve(Settings),
}

/// Request handling allocates and frees many small objects on both worker
/// threads: mimalloc keeps that off glibc's shared arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    economy_host::telemetry::init();
    let Command::Serve(settings) = Cli::parse().command;
    let app = Application::build(&settings).await?;
    tracing::info!(address = %app.local_addr(), "economy-host listening");
    app.run_until(shutdown_signal()).await?;
    Ok(())
}
