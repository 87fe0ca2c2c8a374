//! Test helpers: a scripted local HTTP server, a fake credential, a TLS server behind a
//! CONNECT proxy. Compiled only for tests.
//!
//! This module owns nothing the provider runs; it must never be used outside `#[cfg(test)]`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::azure::client::AzureClient;
use crate::azure::cloud::CloudEnvironment;
use crate::azure::credentials::AuthMethod;
use crate::azure::retry::{PollingPolicy, RetryPolicy};

/// What the scripted server does with the next request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Answer with a status, headers and body.
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    /// Close the connection without answering.
    Drop,
    /// Never answer.
    Hang,
}

impl Reply {
    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self::Respond { status, headers: Vec::new(), body: body.to_owned() }
    }

    pub(crate) fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::Respond { status, mut headers, body } => {
                headers.push((name.to_owned(), value.to_owned()));
                Self::Respond { status, headers, body }
            }
            other => other,
        }
    }
}

/// A request as the scripted server saw it.
#[derive(Debug, Clone)]
pub(crate) struct RecordedRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl RecordedRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A plain-HTTP server answering from a script, one reply per request, in order.
pub(crate) struct ScriptedServer {
    pub(crate) base: Url,
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl ScriptedServer {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (task_script, task_requests) = (script.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, requests) = (task_script.clone(), task_requests.clone());
                tokio::spawn(serve_one(stream, script, requests));
            }
        });
        let base = Url::parse(&format!("http://{address}/")).unwrap();
        Self { base, script, requests }
    }

    pub(crate) fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.base.join(path).unwrap().to_string()
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve_one(
    mut stream: TcpStream,
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
) {
    let Some(request) = read_request(&mut stream).await else { return };
    requests.lock().unwrap().push(request);
    let reply = script.lock().unwrap().pop_front();
    match reply {
        None => {
            write_response(&mut stream, 500, &[], "{\"error\":{\"code\":\"ScriptExhausted\"}}")
                .await
        }
        Some(Reply::Respond { status, headers, body }) => {
            write_response(&mut stream, status, &headers, &body).await
        }
        Some(Reply::Drop) => drop(stream),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(position) = find(&buffer, b"\r\n\r\n") {
            break position;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(RecordedRequest { method, target, headers, body: String::from_utf8_lossy(&body).into() })
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) {
    let mut head = format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// A credential handing out `fake-token-{n}`, counting how often it is asked.
#[derive(Debug, Default)]
pub(crate) struct FakeCredential {
    pub(crate) calls: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Long enough for concurrent callers to pile up behind the first request.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let expires_on = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        Ok(AccessToken::new(format!("fake-token-{call}"), expires_on))
    }
}

/// Fast policies so tests do not wait seconds.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

pub(crate) fn fast_polling() -> PollingPolicy {
    PollingPolicy {
        default_interval: Duration::from_millis(20),
        min_interval: Duration::from_millis(1),
        max_interval: Duration::from_millis(50),
    }
}

/// A client whose ARM and Graph endpoints are the scripted server.
pub(crate) fn client_for(server: &ScriptedServer, credential: Arc<FakeCredential>) -> AzureClient {
    let mut endpoints = CloudEnvironment::Public.endpoints();
    endpoints.resource_manager = server.base.clone();
    endpoints.graph = server.base.clone();
    AzureClient::builder(reqwest::Client::new(), credential, AuthMethod::ClientSecret, "tenant-a")
        .endpoints(endpoints)
        .retry_policy(fast_retry())
        .polling_policy(fast_polling())
        .build()
}

/// A CA, and a server certificate for `host` it signed, both PEM.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) server_cert_der: Vec<u8>,
    pub(crate) server_key_der: Vec<u8>,
}

pub(crate) fn test_pki(host: &str) -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "azurecmk test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server_cert_der: server_cert.der().to_vec(),
        server_key_der: server_key.serialize_der(),
    }
}

/// A TLS server answering every request with 200 and `body`.
pub(crate) async fn start_tls_server(pki: &TestPki, body: &'static str) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certificate = rustls::pki_types::CertificateDer::from(pki.server_cert_der.clone());
    let key = rustls::pki_types::PrivateKeyDer::try_from(pki.server_key_der.clone()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                if read_request(&mut tls).await.is_some() {
                    write_response(&mut tls, 200, &[], body).await;
                }
            });
        }
    });
    address
}

/// An HTTP CONNECT proxy that sends every tunnel to `upstream`, recording the targets asked for.
pub(crate) async fn start_connect_proxy(
    upstream: SocketAddr,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let recorded = targets.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut client).await else { return };
                recorded.lock().unwrap().push(format!("{} {}", request.method, request.target));
                let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                let established = b"HTTP/1.1 200 Connection Established\r\n\r\n";
                if client.write_all(established).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (address, targets)
}
