//! A local Azure for the provider's tests and demo: Entra token endpoint, Microsoft Graph, ARM
//! (Microsoft.Sql, Microsoft.ManagedIdentity, Microsoft.KeyVault, Microsoft.Authorization) and
//! the Key Vault data plane, for several tenants, reached through an HTTPS forward proxy.
//!
//! Clients use it exactly as they would use Azure behind a TLS-inspecting corporate proxy:
//! `HTTPS_PROXY` names [`RunningSimulator::proxy_url`] and `SSL_CERT_FILE` holds
//! [`RunningSimulator::ca_pem`]. A plain-HTTP admin API ([`RunningSimulator::admin_url`]) shows
//! state and injects faults. The simulator enforces what Azure enforces, above all the
//! cross-tenant chain behind a SQL server's customer-managed key. It is never linked into the
//! provider and never logs a secret or a token.

mod admin;
mod arm;
mod entra;
mod faults;
mod graph;
mod http;
mod jwt;
mod proxy;
pub mod seed;
mod state;
mod tls;
mod vault;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use seed::Seed;

/// How to start the simulator.
#[derive(Debug, Default)]
pub struct SimulatorOptions {
    /// Objects present from the start.
    pub seed: Seed,
    /// Proxy port on 127.0.0.1; 0 lets the OS choose.
    pub proxy_port: u16,
    /// Admin port on 127.0.0.1; 0 lets the OS choose.
    pub admin_port: u16,
}

/// State shared by the proxy, the APIs and the admin endpoints.
pub(crate) struct Shared {
    world: Mutex<state::World>,
    access_tokens: jwt::Signer,
    oidc_tokens: jwt::Signer,
    faults: Mutex<faults::FaultSet>,
    requests: Mutex<Vec<admin::RequestRecord>>,
    authority: tls::CertificateAuthority,
}

impl Shared {
    /// Locks the world; a panic in another handler must not wedge the simulator.
    pub(crate) fn world(&self) -> MutexGuard<'_, state::World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A simulator serving on two loopback ports until [`RunningSimulator::shutdown`].
pub struct RunningSimulator {
    proxy_address: SocketAddr,
    admin_address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSimulator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunningSimulator")
            .field("proxy", &self.proxy_address)
            .field("admin", &self.admin_address)
            .finish_non_exhaustive()
    }
}

/// Starts the proxy and admin listeners with the seeded world.
pub async fn start(options: SimulatorOptions) -> anyhow::Result<RunningSimulator> {
    let mut world = state::World::default();
    options.seed.apply(&mut world)?;
    let shared = Arc::new(Shared {
        world: Mutex::new(world),
        access_tokens: jwt::Signer::random(),
        oidc_tokens: jwt::Signer::random(),
        faults: Mutex::new(faults::FaultSet::default()),
        requests: Mutex::new(Vec::new()),
        authority: tls::CertificateAuthority::generate()?,
    });

    let proxy_listener = TcpListener::bind(("127.0.0.1", options.proxy_port)).await?;
    let admin_listener = TcpListener::bind(("127.0.0.1", options.admin_port)).await?;
    let proxy_address = proxy_listener.local_addr()?;
    let admin_address = admin_listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);

    let proxy_task = tokio::spawn(proxy::serve(proxy_listener, shared.clone(), stopped.clone()));
    let admin_router = admin::router(shared.clone());
    let mut admin_stopped = stopped;
    let admin_task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = admin_stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) =
            axum::serve(admin_listener, admin_router).with_graceful_shutdown(shutdown).await
        {
            tracing::warn!(%error, "admin listener stopped");
        }
    });
    tracing::info!(proxy = %proxy_address, admin = %admin_address, "simulator listening");
    Ok(RunningSimulator {
        proxy_address,
        admin_address,
        shared,
        stop,
        tasks: vec![proxy_task, admin_task],
    })
}

impl RunningSimulator {
    /// The proxy URL for `HTTPS_PROXY`, `http://127.0.0.1:PORT`.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_address)
    }

    /// The admin API base URL, `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_address)
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        self.shared.authority.ca_pem()
    }

    /// The same snapshot as `GET /admin/state`.
    pub fn state(&self) -> serde_json::Value {
        admin::snapshot(&self.shared.world())
    }

    /// Stops both listeners and every open connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
