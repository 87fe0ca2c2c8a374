//! Entry point of terraform-provider-azurecmk: builds the runtime, sends logs to stderr, and hands
//! the provider's gRPC routes to the go-plugin transport.
//!
//! Start-up only: nothing here knows about resources or Azure, and nothing here writes to stdout
//! (the transport's handshake line is the only stdout output the host may see).

use std::process::ExitCode;

use azurecmk::plugin::{self, PluginError};
use azurecmk::server::proto::provider_server::{Provider, ProviderServer};
use tonic::service::Routes;
use tracing_subscriber::EnvFilter;

/// Worker threads for the runtime: Terraform sends at most ten calls at once, and they mostly
/// wait on the network.
const WORKER_THREADS: usize = 2;

/// Log level used when neither `TF_LOG_PROVIDER` nor `TF_LOG` names one.
const DEFAULT_LOG_LEVEL: &str = "info";

fn main() -> ExitCode {
    init_logging();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("terraform-provider-azurecmk: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };

    let outcome = runtime.block_on(async { plugin::serve(provider_routes()).await });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(PluginError::NotLaunchedByHost) => {
            eprintln!(
                "This binary is a plugin. These are not meant to be executed directly. Please \
                 execute the program that consumes these plugins, which will load any plugins \
                 automatically\n\
                 This is terraform-provider-azurecmk, a Terraform provider: declare it in a \
                 required_providers block and run terraform."
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("terraform-provider-azurecmk: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The tfplugin6 `Provider` service handed to the transport, sized to the protocol's message
/// limit.
fn provider_routes() -> Routes {
    let service = ProviderServer::new(NotYetServing)
        .max_decoding_message_size(plugin::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(plugin::MAX_MESSAGE_BYTES);
    Routes::new(service)
}

/// A provider that answers every RPC with UNIMPLEMENTED (the generated default), standing in
/// until the real service is wired in.
struct NotYetServing;

impl Provider for NotYetServing {}

/// Sends plain-text logs to stderr, where the plugin host collects them. `TF_LOG_PROVIDER` (or
/// `TF_LOG`) sets the level of this crate's events; dependencies stay at `warn`, since their
/// TLS and HTTP/2 traces would flood Terraform's log.
fn init_logging() {
    let level = ["TF_LOG_PROVIDER", "TF_LOG"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|level| !level.is_empty()))
        .map(|level| level.to_ascii_lowercase())
        .filter(|level| {
            ["trace", "debug", "info", "warn", "error", "off"].contains(&level.as_str())
        })
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    let filter =
        EnvFilter::new(format!("warn,azurecmk={level},terraform_provider_azurecmk={level}"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
}
