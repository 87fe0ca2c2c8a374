//! The go-plugin side of the process: proves Terraform launched us, agrees on protocol 6,
//! listens on a private socket with mutual TLS, prints the handshake line, and serves the
//! provider's gRPC routes next to go-plugin's own side services until the host says goodbye.
//!
//! This layer is transport only: it never looks inside provider requests, and stdout carries
//! nothing but the single handshake line.

mod handshake;
mod listener;
pub mod proto;
mod services;
mod tls;

use std::future::Future;
use std::io::{self, Write as _};
use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;

pub use handshake::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, PROTOCOL_VERSION};
pub use tls::TlsError;

use handshake::{Address, HostSettings};
use proto::grpc_broker_server::GrpcBrokerServer;
use proto::grpc_controller_server::GrpcControllerServer;
use proto::grpc_stdio_server::GrpcStdioServer;
use services::SideServices;

/// The largest gRPC message accepted or sent, matching Terraform's Go SDKs; tonic's 4 MiB default
/// is too small for large schemas or states. Apply it to the provider service as well.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How long in-flight calls may run on after the host asked for shutdown. Terraform kills the
/// process two seconds after asking, so waiting longer gains nothing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why the plugin could not start or stopped abnormally.
#[derive(Debug, Error)]
pub enum PluginError {
    /// The magic cookie is missing or wrong: a person (not Terraform) started the binary.
    #[error("not launched by a plugin host: {MAGIC_COOKIE_KEY} is missing or wrong")]
    NotLaunchedByHost,
    /// The host does not offer protocol 6.
    #[error(
        "plugin protocol 6 is required, but the plugin host offers only version(s) {offered}; \
         this provider needs Terraform 1.0 or later"
    )]
    UnsupportedProtocol {
        /// The host's `PLUGIN_PROTOCOL_VERSIONS`, verbatim.
        offered: String,
    },
    /// `PLUGIN_MIN_PORT` or `PLUGIN_MAX_PORT` is not a port number.
    #[error("{name} is not a port number: {value:?}")]
    InvalidPort {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `PLUGIN_MIN_PORT` is above `PLUGIN_MAX_PORT`.
    #[error("PLUGIN_MIN_PORT and PLUGIN_MAX_PORT leave no port: {min}..={max}")]
    EmptyPortRange {
        /// The lower bound.
        min: u16,
        /// The upper bound.
        max: u16,
    },
    /// Mutual TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// SIGINT or SIGTERM could not be intercepted.
    #[error("cannot intercept signals: {0}")]
    Signal(#[source] io::Error),
    /// No socket could be bound.
    #[error("cannot listen for the plugin host: {0}")]
    Listen(#[source] io::Error),
    /// The handshake line could not be written.
    #[error("cannot write the handshake line to stdout: {0}")]
    Announce(#[source] io::Error),
    /// The gRPC server failed.
    #[error("grpc server stopped: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves `provider` (the tfplugin6 `Provider` service, already sized with
/// [`MAX_MESSAGE_BYTES`]) to the plugin host that launched this process, and returns once the
/// host has called `GRPCController.Shutdown` (or sent SIGTERM) and in-flight calls have finished
/// or outlived their grace period. SIGINT is ignored throughout.
pub async fn serve(provider: Routes) -> Result<(), PluginError> {
    let settings = HostSettings::from_lookup(|key| std::env::var(key).ok())?;
    let shutdown = CancellationToken::new();
    watch_signals(&shutdown)?;

    let tls = settings.client_cert_pem.as_deref().map(tls::MutualTls::new).transpose()?;
    let (listener, address, _socket_file) = bind(&settings).await?;
    tracing::debug!(?address, tls = tls.is_some(), "plugin address");

    let routes = with_side_services(provider, &shutdown);
    let acceptor = tls.as_ref().map(|tls| tokio_rustls::TlsAcceptor::from(tls.config.clone()));
    let incoming = listener::incoming(listener, acceptor);

    // The socket is already listening, so the host may dial the moment it reads this line.
    let cert_der = tls.as_ref().map_or(&[][..], |tls| tls.server_cert_der.as_ref());
    announce(&handshake::handshake_line(settings.protocol_version, &address, cert_der))?;

    let server = Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    run_until_grace_expires(server, &shutdown).await
}

/// Binds the listening socket: a unix socket where the platform has them, loopback TCP where it
/// does not or where the socket cannot be created (a socket path over the OS limit, for example).
/// The returned guard removes the socket file when dropped.
async fn bind(
    settings: &HostSettings,
) -> Result<(listener::Listener, Address, Option<listener::SocketFile>), PluginError> {
    #[cfg(unix)]
    {
        // FIXME(socket-group): PLUGIN_UNIX_SOCKET_GROUP (a group allowed to dial the socket) is
        // not applied; Terraform never sets it, and changing group needs a group-name lookup.
        let dir = settings.unix_socket_dir.as_deref().map(std::path::Path::new);
        match listener::bind_unix(dir) {
            Ok((listener, address, file)) => return Ok((listener, address, Some(file))),
            Err(err) => tracing::warn!(error = %err, "no unix socket; falling back to TCP"),
        }
    }
    let ports = settings.tcp_ports.clone();
    let (listener, address) = listener::bind_tcp(ports).await.map_err(PluginError::Listen)?;
    Ok((listener, address, None))
}

/// Adds go-plugin's controller, stdio and broker services next to the provider.
fn with_side_services(provider: Routes, shutdown: &CancellationToken) -> Routes {
    let side = SideServices::new(shutdown.clone());
    provider
        .add_service(
            GrpcControllerServer::new(side.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            GrpcStdioServer::new(side.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            GrpcBrokerServer::new(side)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
}

/// Swallows SIGINT for the life of the process, and turns SIGTERM into a graceful shutdown.
///
/// A terminal's Ctrl-C reaches the whole process group, provider included; Terraform then asks
/// the provider to stop and waits for in-flight calls, which could not finish if the signal had
/// killed us first (leaving created objects out of state).
fn watch_signals(shutdown: &CancellationToken) -> Result<(), PluginError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered here, not inside the tasks, so the handlers are in place before the
        // handshake line goes out.
        let mut interrupts = signal(SignalKind::interrupt()).map_err(PluginError::Signal)?;
        let mut terminations = signal(SignalKind::terminate()).map_err(PluginError::Signal)?;
        tokio::spawn(async move {
            while interrupts.recv().await.is_some() {
                tracing::debug!("ignoring an interrupt; Terraform stops the provider itself");
            }
        });
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if terminations.recv().await.is_some() {
                tracing::debug!("terminated; shutting down");
                shutdown.cancel();
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = shutdown;
        tokio::spawn(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                tracing::debug!("ignoring an interrupt; Terraform stops the provider itself");
            }
        });
    }
    Ok(())
}

/// Writes the handshake line, the only thing this process ever writes to stdout, and flushes it
/// so the host does not wait on a buffer.
fn announce(line: &str) -> Result<(), PluginError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}").and_then(|()| stdout.flush()).map_err(PluginError::Announce)
}

/// Runs the server; once shutdown starts, in-flight calls get [`SHUTDOWN_GRACE`] to finish
/// before we return anyway.
async fn run_until_grace_expires(
    server: impl Future<Output = Result<(), tonic::transport::Error>>,
    shutdown: &CancellationToken,
) -> Result<(), PluginError> {
    let grace_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => Ok(result?),
        () = grace_expired => {
            tracing::warn!("calls still running after shutdown was requested; exiting anyway");
            Ok(())
        }
    }
}
