//! Launches the provider binary exactly as Terraform does (environment, handshake line, AutoMTLS
//! over the announced unix socket) and hands back a connected gRPC channel.
//!
//! Shared by several integration-test crates, each of which uses only part of it. It never talks
//! to Azure and never writes outside the temp dirs it creates.

// Each test crate compiles its own copy of this module and uses a different subset of it.
#![allow(dead_code)]

pub mod azure;
pub mod terraform;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P521_SHA512};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tonic::transport::{Channel, Endpoint, Uri};

/// Path of the provider binary cargo built for these tests.
pub const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-azurecmk");

/// The magic cookie Terraform sets for its providers.
pub const MAGIC_COOKIE: (&str, &str) =
    ("TF_PLUGIN_MAGIC_COOKIE", "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2");

/// How long the provider may take to print its handshake line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client identity Terraform generates per provider: a self-signed ECDSA P-521/SHA-512 CA
/// certificate for localhost, as go-plugin makes it.
pub struct HostIdentity {
    /// PEM passed to the provider in `PLUGIN_CLIENT_CERT`.
    pub cert_pem: String,
    /// DER of the same certificate, presented during the TLS handshake.
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl HostIdentity {
    /// Generates a fresh identity.
    pub fn generate() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512).expect("P-521 key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.distinguished_name.push(DnType::OrganizationName, "HashiCorp");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        Self { cert_pem: cert.pem(), cert_der: cert.der().clone(), key_der: key.serialize_der() }
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// The fields of the handshake line.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The whole line, without its newline.
    pub line: String,
    /// Field 2: the negotiated plugin protocol version.
    pub protocol_version: String,
    /// Field 3: `unix` or `tcp`.
    pub network: String,
    /// Field 4: the socket path or `host:port`.
    pub address: String,
    /// Field 6 decoded: the server certificate's DER (empty for plaintext).
    pub server_cert_der: Vec<u8>,
}

impl Handshake {
    /// Parses a handshake line, panicking with the line when it is malformed.
    pub fn parse(line: &str) -> Self {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 6, "six fields expected in {line:?}");
        assert_eq!(fields[0], "1", "core protocol version in {line:?}");
        assert_eq!(fields[4], "grpc", "protocol name in {line:?}");
        let server_cert_der = STANDARD_NO_PAD.decode(fields[5]).expect("unpadded base64 cert");
        Self {
            line: line.to_owned(),
            protocol_version: fields[1].to_owned(),
            network: fields[2].to_owned(),
            address: fields[3].to_owned(),
            server_cert_der,
        }
    }
}

/// A running provider and a channel to it.
pub struct LaunchedProvider {
    /// A gRPC channel over the announced socket (mutual TLS unless launched in plaintext).
    pub channel: Channel,
    /// The provider process; it is killed if dropped while still running.
    pub child: Child,
    /// What the provider announced.
    pub handshake: Handshake,
    /// The identity Terraform would hold, when launched with mutual TLS.
    pub identity: Option<HostIdentity>,
    /// The rest of the provider's stdout, which must stay empty.
    pub stdout: BufReader<ChildStdout>,
    /// Holds the socket directory alive for the provider's lifetime.
    pub socket_dir: tempfile::TempDir,
    /// Everything the provider wrote to stderr so far, drained continuously so the pipe never
    /// fills up and blocks the provider.
    stderr: Arc<Mutex<String>>,
}

impl LaunchedProvider {
    /// The provider's stderr (its logs) up to now.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }
}

/// Launches the provider the way Terraform does, with mutual TLS, and connects to it.
pub async fn launch_provider() -> LaunchedProvider {
    launch_provider_with(true).await
}

/// Launches the provider with mutual TLS (`mtls`) or in plaintext, and connects to it.
pub async fn launch_provider_with(mtls: bool) -> LaunchedProvider {
    let identity = mtls.then(HostIdentity::generate);
    let socket_dir = tempfile::tempdir().expect("socket dir");
    let mut env = terraform_env(socket_dir.path().to_path_buf());
    if let Some(identity) = &identity {
        env.push(("PLUGIN_CLIENT_CERT".to_owned(), identity.cert_pem.clone()));
    }

    let mut child = spawn_provider(&env);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let handshake = read_handshake(&mut stdout).await;
    let channel = connect(&handshake, identity.as_ref()).await.expect("connect to the provider");
    LaunchedProvider { channel, child, handshake, identity, stdout, socket_dir, stderr }
}

/// Appends every line of `stderr` to a shared buffer, in a background task.
fn collect(stderr: ChildStderr) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&buffer);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut sink = sink.lock().expect("stderr buffer");
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    buffer
}

/// The environment Terraform gives a provider (minus the client certificate).
pub fn terraform_env(socket_dir: PathBuf) -> Vec<(String, String)> {
    vec![
        (MAGIC_COOKIE.0.to_owned(), MAGIC_COOKIE.1.to_owned()),
        ("PLUGIN_PROTOCOL_VERSIONS".to_owned(), "5,6".to_owned()),
        ("PLUGIN_MIN_PORT".to_owned(), "10000".to_owned()),
        ("PLUGIN_MAX_PORT".to_owned(), "25000".to_owned()),
        ("PLUGIN_UNIX_SOCKET_DIR".to_owned(), socket_dir.to_string_lossy().into_owned()),
    ]
}

/// Starts the provider binary with exactly `env` (plus `PATH`), stdout and stderr piped.
pub fn spawn_provider(env: &[(String, String)]) -> Child {
    let mut command = Command::new(PROVIDER_BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().expect("spawn the provider binary")
}

/// Reads and parses the handshake line.
pub async fn read_handshake(stdout: &mut BufReader<ChildStdout>) -> Handshake {
    let mut line = String::new();
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stdout.read_line(&mut line))
        .await
        .expect("handshake line in time")
        .expect("read stdout");
    assert!(line.ends_with('\n'), "handshake line must end with a newline: {line:?}");
    Handshake::parse(line.trim_end_matches('\n'))
}

/// Connects over the announced unix socket, with mutual TLS presenting `identity` when the
/// handshake carries a certificate, in plaintext otherwise.
pub async fn connect(
    handshake: &Handshake,
    identity: Option<&HostIdentity>,
) -> Result<Channel, tonic::transport::Error> {
    assert_eq!(handshake.network, "unix", "tests dial unix sockets only");
    let path = PathBuf::from(&handshake.address);
    let tls = (!handshake.server_cert_der.is_empty())
        .then(|| client_tls(handshake.server_cert_der.clone(), identity));

    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        let tls = tls.clone();
        async move {
            let stream = UnixStream::connect(&path).await?;
            match tls {
                None => Ok::<_, std::io::Error>(TokioIo::new(Box::new(stream) as Box<dyn Io>)),
                Some(config) => {
                    let server_name = ServerName::try_from("localhost").expect("server name");
                    let connector = tokio_rustls::TlsConnector::from(config);
                    let stream = connector.connect(server_name, stream).await?;
                    Ok(TokioIo::new(Box::new(stream) as Box<dyn Io>))
                }
            }
        }
    });
    // The URI is required by tonic but unused: the connector decides where to dial.
    Endpoint::from_static("http://localhost").connect_with_connector(connector).await
}

/// A byte stream the channel can run over, plain or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Client TLS as go-plugin sets it up: trust exactly the announced server certificate, present
/// the host identity (if any), and negotiate HTTP/2.
fn client_tls(server_cert_der: Vec<u8>, identity: Option<&HostIdentity>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedServerCert {
        expected: server_cert_der,
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(vec![identity.cert_der.clone()], identity.private_key())
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Trusts only the server certificate from the handshake line. webpki would refuse it: it is a
/// CA certificate serving as the end entity, which Go's verifier (Terraform's) accepts.
#[derive(Debug)]
struct PinnedServerCert {
    expected: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
