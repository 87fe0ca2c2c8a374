//! The HTTPS forward proxy: accepts `CONNECT host:443`, terminates TLS with a leaf certificate
//! for that host, and serves HTTP/1.1 or HTTP/2 inside the tunnel by routing on host, then path.
//!
//! Every tunnelled request passes the fault plan and lands in the request log. Hosts that are
//! not Azure endpoints the simulator serves are refused with 403, so a misconfigured client
//! never leaks to the real internet. Nothing here logs headers, bodies or query values.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::Shared;
use crate::admin::{RequestRecord, TokenRecord};
use crate::entra::TokenRequestMark;
use crate::http::{ConnectHost, json_response, now_rfc3339};

/// Which API a tunnelled host belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServedHost {
    /// Entra ID sign-in.
    Login,
    /// Azure Resource Manager.
    ResourceManager,
    /// Microsoft Graph.
    Graph,
    /// A Key Vault's data plane, by vault name.
    Vault(String),
}

/// Classifies a CONNECT host (lower case, no port).
pub fn classify(host: &str) -> Option<ServedHost> {
    match host {
        "login.microsoftonline.com" | "login.microsoftonline.us" | "login.chinacloudapi.cn" => {
            return Some(ServedHost::Login);
        }
        "management.azure.com" | "management.usgovcloudapi.net" | "management.chinacloudapi.cn" => {
            return Some(ServedHost::ResourceManager);
        }
        "graph.microsoft.com" | "graph.microsoft.us" | "microsoftgraph.chinacloudapi.cn" => {
            return Some(ServedHost::Graph);
        }
        _ => {}
    }
    [".vault.azure.net", ".vault.usgovcloudapi.net", ".vault.azure.cn"]
        .iter()
        .find_map(|suffix| host.strip_suffix(suffix))
        .filter(|name| !name.is_empty() && !name.contains('.'))
        .map(|name| ServedHost::Vault(name.to_string()))
}

/// One router per served API.
#[derive(Clone)]
struct Routes {
    login: Router,
    resource_manager: Router,
    graph: Router,
    vault: Router,
}

impl Routes {
    fn new(shared: &Arc<Shared>) -> Self {
        Self {
            login: Router::new()
                .route("/{tenant}/oauth2/v2.0/token", post(crate::entra::token))
                .with_state(shared.clone()),
            resource_manager: Router::new().fallback(crate::arm::handle).with_state(shared.clone()),
            graph: Router::new().fallback(crate::graph::handle).with_state(shared.clone()),
            vault: Router::new().fallback(crate::vault::handle).with_state(shared.clone()),
        }
    }

    fn for_host(&self, host: &ServedHost) -> Router {
        match host {
            ServedHost::Login => self.login.clone(),
            ServedHost::ResourceManager => self.resource_manager.clone(),
            ServedHost::Graph => self.graph.clone(),
            ServedHost::Vault(_) => self.vault.clone(),
        }
    }
}

/// A dropped connection, injected by a `drop` fault.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct Dropped;

/// Accepts proxy connections until `stopped` turns true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let routes = Routes::new(&shared);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting proxy connection");
                continue;
            }
        };
        let shared = shared.clone();
        let routes = routes.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                connect(request, shared.clone(), routes.clone(), stopped.clone())
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "proxy connection ended");
            }
        });
    }
}

fn proxy_answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Handles one request on the proxy port: only CONNECT to a served host is allowed.
async fn connect(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    routes: Routes,
    stopped: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::CONNECT {
        return Ok(proxy_answer(StatusCode::METHOD_NOT_ALLOWED));
    }
    let Some(host) = request.uri().authority().map(|a| a.host().to_ascii_lowercase()) else {
        return Ok(proxy_answer(StatusCode::BAD_REQUEST));
    };
    let Some(served) = classify(&host) else {
        tracing::info!(%host, "refusing CONNECT to a host the simulator does not serve");
        return Ok(proxy_answer(StatusCode::FORBIDDEN));
    };
    // An unknown vault name would not resolve in DNS; a real proxy answers 502 then.
    if let ServedHost::Vault(name) = &served
        && shared.world().vault(name).is_none()
    {
        return Ok(proxy_answer(StatusCode::BAD_GATEWAY));
    }
    let config = match shared.authority.server_config(&host) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, %host, "issuing leaf certificate");
            return Ok(proxy_answer(StatusCode::INTERNAL_SERVER_ERROR));
        }
    };

    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "CONNECT upgrade failed");
                return;
            }
        };
        let tls = match TlsAcceptor::from(config).accept(TokioIo::new(upgraded)).await {
            Ok(tls) => tls,
            Err(error) => {
                tracing::debug!(%error, %host, "tls handshake failed");
                return;
            }
        };
        serve_tunnel(tls, host, served, shared, routes, stopped).await;
    });
    Ok(proxy_answer(StatusCode::OK))
}

async fn serve_tunnel<S>(
    tls: S,
    host: String,
    served: ServedHost,
    shared: Arc<Shared>,
    routes: Routes,
    mut stopped: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let router = routes.for_host(&served);
    let service =
        service_fn(move |request| dispatch(request, host.clone(), router.clone(), shared.clone()));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "tunnel connection ended");
            }
        }
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

/// Serves one tunnelled request: faults first, then the API, then the log.
async fn dispatch(
    mut request: Request<Incoming>,
    host: String,
    router: Router,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Dropped> {
    let started = Instant::now();
    let arrived = now_rfc3339();
    let method = request.method().to_string();
    let logged_path = redacted_path(request.uri());
    let span = tracing::debug_span!("request", %host, %method, path = %request.uri().path());
    let _entered = span.enter();

    let plan = {
        let mut faults = shared.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        faults.plan(&host, &method, request.uri().path())
    };
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let record =
        |status: u16, request_id: Option<String>, token: Option<TokenRecord>| RequestRecord {
            time: arrived.clone(),
            host: host.clone(),
            method: method.clone(),
            path: logged_path.clone(),
            status,
            request_id,
            duration_ms: started.elapsed().as_millis() as u64,
            token,
        };
    if plan.drop {
        push_record(&shared, record(0, None, None));
        return Err(Dropped);
    }

    let response = match plan.status {
        Some((status, retry_after)) => fault_response(status, retry_after),
        None => {
            request.extensions_mut().insert(ConnectHost(host.clone()));
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    let request_id = ["x-ms-request-id", "request-id", "x-ms-keyvault-request-id"]
        .iter()
        .find_map(|name| response.headers().get(*name))
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let token = response
        .extensions()
        .get::<TokenRequestMark>()
        .map(|mark| TokenRecord { tenant: mark.tenant.clone(), scope: mark.scope.clone() });
    tracing::debug!(status = response.status().as_u16(), "served");
    push_record(&shared, record(response.status().as_u16(), request_id, token));
    Ok(response)
}

fn push_record(shared: &Shared, record: RequestRecord) {
    shared.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(record);
}

/// An injected error status, with Azure's usual error envelope.
fn fault_response(status: u16, retry_after: Option<u64>) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code = match status.as_u16() {
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "InjectedFault",
    };
    let body = json!({"error": {"code": code, "message": format!("Injected fault: {code}.")}});
    let request_id = crate::http::request_id();
    let mut headers = vec![("x-ms-request-id", request_id)];
    if let Some(seconds) = retry_after {
        headers.push(("retry-after", seconds.to_string()));
    }
    json_response(status, &body, &headers)
}

/// The path plus query, with values of secret-looking parameters replaced.
fn redacted_path(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else { return uri.path().to_string() };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let lowered = name.to_ascii_lowercase();
            let secret = ["secret", "token", "assertion", "sig", "password", "code"]
                .iter()
                .any(|word| lowered.contains(word));
            if secret { format!("{name}=<redacted>") } else { pair.to_string() }
        })
        .collect();
    format!("{}?{}", uri.path(), redacted.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_cases() {
        let cases = [
            ("login", "login.microsoftonline.com", Some(ServedHost::Login)),
            ("login gov", "login.microsoftonline.us", Some(ServedHost::Login)),
            ("arm china", "management.chinacloudapi.cn", Some(ServedHost::ResourceManager)),
            ("graph", "graph.microsoft.com", Some(ServedHost::Graph)),
            ("vault", "contoso-kv.vault.azure.net", Some(ServedHost::Vault("contoso-kv".into()))),
            ("vault gov", "kv.vault.usgovcloudapi.net", Some(ServedHost::Vault("kv".into()))),
            ("nested vault", "a.b.vault.azure.net", None),
            ("bare vault suffix", "vault.azure.net", None),
            ("other", "example.com", None),
        ];
        for (name, host, expected) in cases {
            assert_eq!(classify(host), expected, "{name}");
        }
    }

    #[test]
    fn redacted_path_cases() {
        let cases = [
            ("no query", "/a/b", "/a/b"),
            ("api version kept", "/a?api-version=2025-01-01", "/a?api-version=2025-01-01"),
            ("sig redacted", "/a?sig=abc&x=1", "/a?sig=<redacted>&x=1"),
        ];
        for (name, uri, expected) in cases {
            let uri: axum::http::Uri = uri.parse().expect("uri");
            assert_eq!(redacted_path(&uri), expected, "{name}");
        }
    }
}
