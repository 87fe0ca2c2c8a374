//! The process's one HTTP client, shared by every Azure call and every credential.
//!
//! This module owns how we reach the network: user agent, proxy and trusted roots. It must never
//! add authentication or retries (that is `client`), and never log request contents.
//!
//! Proxy: reqwest reads `HTTPS_PROXY`/`https_proxy` and `NO_PROXY`/`no_proxy` itself whenever no
//! explicit proxy is configured (hyper-util's `Matcher::from_system`, used by reqwest 0.13 on
//! every platform).
//!
//! Roots: with the `rustls` feature reqwest 0.13 verifies through rustls-platform-verifier, which
//! on Linux loads `rustls-native-certs`; that crate reads `SSL_CERT_FILE` *instead of* the system
//! store, which is the OpenSSL convention. We still add the file's certificates explicitly, so a
//! future verifier change cannot silently drop them and so a machine without any system store
//! (a bare container) still builds a client when `SSL_CERT_FILE` is set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// `User-Agent` of every request we send.
pub const USER_AGENT: &str = concat!("terraform-provider-azurecmk/", env!("CARGO_PKG_VERSION"));

/// Environment variable naming a PEM bundle of extra trusted roots (OpenSSL convention).
pub const SSL_CERT_FILE_VARIABLE: &str = "SSL_CERT_FILE";

/// How long to wait for a TCP and TLS connection before treating it as a transport failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle connections are closed after this long; Azure front doors drop them at about four minutes.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What to build an HTTP client with, beyond the fixed user agent and timeouts.
#[derive(Debug, Clone, Default)]
pub struct HttpClientSettings {
    /// A proxy for every request; `None` leaves reqwest reading `HTTPS_PROXY` and `NO_PROXY`.
    pub proxy: Option<ProxySettings>,
    /// PEM bundles of roots to trust in addition to the platform's.
    pub extra_root_bundles: Vec<PemBundle>,
}

/// An explicitly configured proxy.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Proxy URL, e.g. `http://127.0.0.1:8443`.
    pub url: String,
    /// Hosts that bypass the proxy, in `NO_PROXY` syntax.
    pub no_proxy: Option<String>,
}

/// A PEM bundle of trusted roots and where it came from, for error messages.
#[derive(Debug, Clone)]
pub struct PemBundle {
    /// File the bundle was read from, or a description of its origin.
    pub origin: String,
    /// The PEM text.
    pub pem: Vec<u8>,
}

/// Building the HTTP client was refused.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    /// The extra roots file could not be read.
    #[error("reading trusted roots from {path} (named by SSL_CERT_FILE): {source}")]
    ReadRoots {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The bundle held no usable certificate.
    #[error("trusted roots from {origin}: {reason}")]
    InvalidRoots {
        /// Where the bundle came from.
        origin: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The proxy URL was not usable.
    #[error("proxy {url}: {reason}")]
    InvalidProxy {
        /// The proxy URL as configured.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// reqwest refused the configuration (for example no trusted roots at all).
    #[error("building the HTTP client: {reason}")]
    Build {
        /// reqwest's explanation, with its causes.
        reason: String,
    },
}

impl HttpClientSettings {
    /// Settings from the process environment: extra roots from `SSL_CERT_FILE` if set.
    pub fn from_environment() -> Result<Self, HttpSetupError> {
        let mut settings = Self::default();
        if let Some(path) = std::env::var_os(SSL_CERT_FILE_VARIABLE).filter(|v| !v.is_empty()) {
            settings.extra_root_bundles.push(read_pem_bundle(Path::new(&path))?);
        }
        Ok(settings)
    }
}

/// Reads a PEM bundle from a file.
pub fn read_pem_bundle(path: &Path) -> Result<PemBundle, HttpSetupError> {
    let pem = std::fs::read(path)
        .map_err(|source| HttpSetupError::ReadRoots { path: path.to_owned(), source })?;
    Ok(PemBundle { origin: path.display().to_string(), pem })
}

/// Builds a client from explicit settings; tests and custom setups use this directly.
pub fn build_http_client(settings: &HttpClientSettings) -> Result<reqwest::Client, HttpSetupError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT);

    if let Some(proxy) = &settings.proxy {
        builder = builder.proxy(build_proxy(proxy)?);
    }

    for bundle in &settings.extra_root_bundles {
        let certificates = reqwest::Certificate::from_pem_bundle(&bundle.pem).map_err(|error| {
            HttpSetupError::InvalidRoots { origin: bundle.origin.clone(), reason: chain(&error) }
        })?;
        if certificates.is_empty() {
            let reason = "no PEM certificate found".to_owned();
            return Err(HttpSetupError::InvalidRoots { origin: bundle.origin.clone(), reason });
        }
        builder = builder.tls_certs_merge(certificates);
    }

    builder.build().map_err(|error| HttpSetupError::Build { reason: chain(&error) })
}

fn build_proxy(settings: &ProxySettings) -> Result<reqwest::Proxy, HttpSetupError> {
    let proxy = reqwest::Proxy::all(settings.url.as_str()).map_err(|error| {
        HttpSetupError::InvalidProxy { url: settings.url.clone(), reason: chain(&error) }
    })?;
    let no_proxy = settings.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
    Ok(proxy.no_proxy(no_proxy))
}

/// The one client of this process, built from the environment on first use.
///
/// Sharing it keeps one connection pool (and one TLS session cache) for ARM, Graph, Key Vault and
/// the token endpoint. A problem with `SSL_CERT_FILE` is logged at WARN and the client is built
/// without the extra roots: the TLS errors that follow then name the host being refused.
pub fn shared_http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(build_from_environment).clone()
}

fn build_from_environment() -> reqwest::Client {
    let settings = HttpClientSettings::from_environment().unwrap_or_else(|error| {
        tracing::warn!(error = %error, "ignoring extra trusted roots");
        HttpClientSettings::default()
    });
    match build_http_client(&settings) {
        Ok(client) => client,
        Err(error) => {
            // Only a machine without any trusted root gets here. A client that trusts nothing
            // still lets every call fail with a TLS error naming the host, instead of a panic.
            tracing::warn!(error = %error, "building the HTTP client without trusted roots");
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .tls_certs_only(Vec::new())
                .build()
                .unwrap_or_default()
        }
    }
}

/// An error and its causes, joined with `: `, as one line.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest often repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{HttpClientSettings, HttpSetupError, PemBundle, ProxySettings, build_http_client};

    #[test]
    fn user_agent_names_the_provider_and_version() {
        assert_eq!(
            super::USER_AGENT,
            format!("terraform-provider-azurecmk/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn rejects_bundles_without_certificates() {
        let cases = [("empty file", ""), ("not pem", "hello"), ("private key only", KEY_ONLY)];
        for (name, pem) in cases {
            let settings = HttpClientSettings {
                extra_root_bundles: vec![PemBundle { origin: name.into(), pem: pem.into() }],
                ..HttpClientSettings::default()
            };
            let error = build_http_client(&settings).unwrap_err();
            assert!(matches!(error, HttpSetupError::InvalidRoots { .. }), "{name}: {error}");
        }
    }

    #[test]
    fn rejects_unusable_proxy_urls() {
        let settings = HttpClientSettings {
            proxy: Some(ProxySettings { url: "not a url at all".into(), no_proxy: None }),
            ..HttpClientSettings::default()
        };
        let error = build_http_client(&settings).unwrap_err();
        assert!(matches!(error, HttpSetupError::InvalidProxy { .. }), "{error}");
    }

    #[test]
    fn missing_roots_file_names_the_variable() {
        let error =
            super::read_pem_bundle(std::path::Path::new("/nonexistent/ca.pem")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
        assert!(message.contains("SSL_CERT_FILE"), "{message}");
    }

    /// The path the provider takes to the simulator (and a corporate TLS-inspecting proxy):
    /// an HTTPS request for Azure's real host name, tunnelled through a CONNECT proxy to a
    /// server whose certificate only an extra root vouches for.
    #[tokio::test]
    async fn reaches_azure_host_names_through_a_proxy_with_extra_roots() {
        let pki = crate::azure::testing::test_pki("management.azure.com");
        let upstream = crate::azure::testing::start_tls_server(&pki, "through the proxy").await;
        let (proxy, targets) = crate::azure::testing::start_connect_proxy(upstream).await;
        let proxy = Some(ProxySettings { url: format!("http://{proxy}"), no_proxy: None });

        let trusted = HttpClientSettings {
            proxy: proxy.clone(),
            extra_root_bundles: vec![PemBundle {
                origin: "test CA".into(),
                pem: pki.ca_pem.into(),
            }],
        };
        let client = build_http_client(&trusted).unwrap();
        let response = client.get("https://management.azure.com/").send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "through the proxy");
        assert_eq!(targets.lock().unwrap()[0], "CONNECT management.azure.com:443");

        // Without the extra root the same server is refused: the roots are what made it work.
        let untrusted = HttpClientSettings { proxy, extra_root_bundles: Vec::new() };
        if let Ok(client) = build_http_client(&untrusted) {
            let error = client.get("https://management.azure.com/").send().await.unwrap_err();
            assert!(super::chain(&error).contains("certificate"), "{}", super::chain(&error));
        }
    }

    /// Runs this test binary again with `HTTPS_PROXY` and `SSL_CERT_FILE` set, so the child
    /// builds the shared client from a real environment (Rust forbids changing our own
    /// environment safely while other tests run).
    #[tokio::test]
    async fn shared_client_honours_https_proxy_and_ssl_cert_file() {
        let pki = crate::azure::testing::test_pki("graph.microsoft.com");
        let upstream = crate::azure::testing::start_tls_server(&pki, "from the environment").await;
        let (proxy, targets) = crate::azure::testing::start_connect_proxy(upstream).await;
        let directory = tempfile::tempdir().unwrap();
        let ca_file = directory.path().join("ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();

        let status = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "azure::http::tests::environment_probe", "--nocapture"])
            .env("HTTPS_PROXY", format!("http://{proxy}"))
            .env("NO_PROXY", "example.invalid")
            .env(super::SSL_CERT_FILE_VARIABLE, &ca_file)
            .env(PROBE_VARIABLE, "https://graph.microsoft.com/v1.0/")
            .status()
            .await
            .unwrap();

        assert!(status.success(), "the probe in the child process failed");
        assert_eq!(targets.lock().unwrap().as_slice(), ["CONNECT graph.microsoft.com:443"]);
    }

    const PROBE_VARIABLE: &str = "AZURECMK_TEST_HTTP_PROBE_URL";

    /// The child half of the test above; without its variable (a normal test run) there is
    /// nothing to probe and it returns at once.
    #[tokio::test]
    async fn environment_probe() {
        let Ok(url) = std::env::var(PROBE_VARIABLE) else { return };
        let response = super::shared_http_client().get(url).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "from the environment");
    }

    const KEY_ONLY: &str = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
}
