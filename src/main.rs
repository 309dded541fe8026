//! The `critic` binary: command line, logging, and the server's start and stop.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "critic",
    version,
    about = "A self-hosted GitHub App that reviews pull requests with an LLM"
)]
struct Cli {
    /// TOML settings file; `CRITIC_*` environment variables override it.
    #[arg(long, global = true, env = "CRITIC_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the webhook server and the workers.
    Serve,
    /// Check the settings and exit.
    CheckConfig,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CRITIC_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match critic::config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("critic: {e}");
            std::process::exit(2);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            println!("settings are valid");
            Ok(())
        }
        Command::Migrate => {
            critic::store::Store::connect(&config.settings.store.url)
                .await
                .context("migrating the store")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let model = config.llm.default_endpoint();
            if config.llm.is_default {
                tracing::warn!(
                    base_url = %model.base_url,
                    model = %model.model,
                    "no LLM configured: using a local Ollama; set llm.provider, llm.base_url and llm.model to change"
                );
            } else {
                tracing::info!(provider = model.provider.label(), base_url = %model.base_url, model = %model.model, "model endpoint");
            }
            let addr = config.settings.server.listen;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            tracing::info!(%addr, path = %config.settings.server.webhook_path, "critic listening");
            critic::serve(config, listener, shutdown_signal())
                .await
                .context("critic stopped")?;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
