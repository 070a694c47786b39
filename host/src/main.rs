//! `economy-host`: the server binary. Thin: parse, log, build, serve.

use anyhow::Context;
use clap::{Parser, Subcommand};
use economy_host::config::Settings;
use economy_host::demo::Demo;
use economy_host::startup::{Application, operator_key_in, shutdown_signal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Write and test rules modules.
    #[command(subcommand)]
    Module(ModuleCommand),
}

#[derive(Subcommand)]
enum ModuleCommand {
    /// Write a new module's crate into ./NAME: build it with `cargo build
    /// --release`, test it with `economy-host module test`.
    New {
        name: String,
        /// Take the SDK (economy-core) from this folder instead of
        /// crates.io: `dist/sdk/economy-core` of the release artifacts.
        #[arg(long, env = "ECONOMY_SDK")]
        sdk: Option<PathBuf>,
    },
    /// Run scenarios (JSON files, or folders of them) against a module, in
    /// memory with each scenario's clock, printing every call's answer,
    /// fuel and memory; exits with 1 when an answer differs.
    Test {
        component: PathBuf,
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Fuel per call (the server's default).
        #[arg(long, default_value_t = economy_runner::Limits::default().fuel)]
        fuel: u64,
    },
}

/// Request handling allocates and frees many small objects on both worker
/// threads: mimalloc keeps that off glibc's shared arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    economy_host::telemetry::init();
    let result = match Cli::parse().command {
        Command::Serve(settings) => serve(settings).await,
        Command::Module(command) => module(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // One line, for the person who started it.
        Err(error) => {
            eprintln!("economy-host: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn module(command: ModuleCommand) -> anyhow::Result<()> {
    match command {
        ModuleCommand::New { name, sdk } => {
            let dir = economy_host::scaffold::new_module(Path::new("."), &name, sdk.as_deref())?;
            println!("Wrote the module {name} in {}; build it with `cargo build --release` there.", dir.display());
            Ok(())
        }
        ModuleCommand::Test { component, scenarios, fuel } => {
            let limits = economy_runner::Limits { fuel, ..Default::default() };
            match economy_runner::report::run_files(&component, &scenarios, limits, &mut std::io::stdout().lock())? {
                true => Ok(()),
                false => anyhow::bail!("some answers differ from the scenarios"),
            }
        }
    }
}

async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    if settings.zero_setup() {
        let dir = &settings.data_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
        if settings.operator_key.is_none() {
            let (key, generated) = operator_key_in(dir)?;
            if generated {
                println!(
                    "Operator key (saved in {}): {key}",
                    dir.join(economy_host::config::OPERATOR_KEY_FILE).display()
                );
            }
            settings.operator_key = Some(key);
        }
    }
    let app = Application::build(&settings).await?;
    let address = app.local_addr();
    if settings.zero_setup()
        && let Some(demo) = app.create_demo_if_empty().await.context("creating the demo tenant")?
    {
        print_demo(&demo, address);
    }
    tracing::info!(%address, "economy-host listening");
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Tells the person who started a fresh embedded store how to try it.
fn print_demo(demo: &Demo, address: SocketAddr) {
    let keys = &demo.tenant;
    println!(
        "\
Created a demo tenant \"demo\" (its keys are shown only now):
  client key: {client}
  server key: {server}
  admin key:  {admin}
and a player \"demo-player\" with a 30-day session: {token}
Its id (a PlayFab SDK's title id): {id}

Buy a potion for 50 of the player's 1000 gold:

  curl -s -X POST http://{address}/client/inventory/purchase \\
    -H 'x-api-key: {client}' -H 'authorization: Bearer {token}' \\
    -H 'content-type: application/json' \\
    -d '{{\"catalog_item_id\": \"{potion}\", \"currency_code\": \"gold\"}}'
",
        id = keys.tenant.id,
        client = keys.client_key,
        server = keys.server_key,
        admin = keys.admin_key,
        token = demo.session.session_token,
        potion = demo.potion_id,
    );
}
