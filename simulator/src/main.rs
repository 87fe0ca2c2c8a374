//! `azure-sim`: runs the simulator as a process for the demo and manual testing.
//!
//! Writes the CA certificate and a ready file (atomically) once both listeners are up, then
//! serves until SIGTERM or SIGINT. Logs go to stderr through tracing (`RUST_LOG`, default
//! `info`) and never contain secrets or tokens.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(name = "azure-sim", about = "A local Azure behind an HTTPS proxy")]
struct Arguments {
    /// Seed JSON file.
    #[arg(long)]
    seed: PathBuf,
    /// Proxy port on 127.0.0.1 (0 lets the OS choose).
    #[arg(long, default_value_t = 0)]
    proxy_port: u16,
    /// Admin port on 127.0.0.1 (0 lets the OS choose).
    #[arg(long, default_value_t = 0)]
    admin_port: u16,
    /// Where to write the CA certificate (PEM).
    #[arg(long)]
    ca_out: PathBuf,
    /// Where to write `{"proxy","admin","ca"}` once serving.
    #[arg(long)]
    ready_file: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let arguments = Arguments::parse();

    let seed_text = std::fs::read_to_string(&arguments.seed)
        .with_context(|| format!("reading seed {}", arguments.seed.display()))?;
    let seed = azure_sim::Seed::from_json(&seed_text)
        .with_context(|| format!("parsing seed {}", arguments.seed.display()))?;
    let options = azure_sim::SimulatorOptions {
        seed,
        proxy_port: arguments.proxy_port,
        admin_port: arguments.admin_port,
    };
    let simulator = azure_sim::start(options).await?;

    write_atomically(&arguments.ca_out, simulator.ca_pem())?;
    let ca_path = std::path::absolute(&arguments.ca_out).unwrap_or(arguments.ca_out.clone());
    let ready = serde_json::json!({
        "proxy": simulator.proxy_url(),
        "admin": simulator.admin_url(),
        "ca": ca_path.display().to_string(),
    });
    write_atomically(&arguments.ready_file, &ready.to_string())?;
    tracing::info!(ready = %arguments.ready_file.display(), "simulator ready");

    wait_for_signal().await?;
    tracing::info!("shutting down");
    simulator.shutdown().await;
    Ok(())
}

/// Writes a sibling temporary file, then renames it over `path`, so readers never see half.
fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, contents)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
