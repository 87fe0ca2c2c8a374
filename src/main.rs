//! Entry point of terraform-provider-azurecmk: builds the runtime, sends logs to stderr, and hands
//! the provider's gRPC routes to the go-plugin transport.
//!
//! Start-up only: nothing here knows about resources or Azure, and nothing here writes to stdout
//! (the transport's handshake line is the only stdout output the host may see).

use std::process::ExitCode;

use azurecmk::plugin::{self, PluginError};
use azurecmk::provider::AzureCmkProvider;
use tonic::service::Routes;

/// Worker threads for the runtime: Terraform sends at most ten calls at once, and they mostly
/// wait on the network.
const WORKER_THREADS: usize = 2;

fn main() -> ExitCode {
    azurecmk::framework::logging::init();

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

/// The tfplugin6 `Provider` service for the azurecmk provider.
fn provider_routes() -> Routes {
    azurecmk::server::routes(AzureCmkProvider::new())
}
