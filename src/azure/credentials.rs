//! Choosing and building the credential for one tenant, the way azurerm does.
//!
//! This module owns the precedence between authentication methods and the adapters around
//! `azure_identity`. It must never read `ARM_*` variables (the provider layer resolves them into
//! [`CredentialOptions`]) and never put a secret, token or assertion into an error or a log.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{
    ClientMethodOptions, ClientOptions, StatusCode as CoreStatusCode, Transport,
};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions,
};
use reqwest::StatusCode;

use crate::azure::cloud::CloudEnvironment;
use crate::azure::error::{parse_entra_description, parse_error_body};
use crate::azure::secret::Secret;

/// How to authenticate to one tenant, already resolved from configuration and environment.
#[derive(Debug, Clone, Default)]
pub struct CredentialOptions {
    /// The tenant to get tokens from.
    pub tenant_id: String,
    /// The application (client) id to authenticate as.
    pub client_id: Option<String>,
    /// A client secret.
    pub client_secret: Option<Secret>,
    /// A base64 PKCS#12 client certificate.
    pub client_certificate: Option<Secret>,
    /// A path to a PKCS#12 client certificate.
    pub client_certificate_path: Option<PathBuf>,
    /// The certificate's password.
    pub client_certificate_password: Option<Secret>,
    /// Whether OpenID Connect (workload identity federation) may be used.
    pub use_oidc: bool,
    /// An OIDC token (JWT) to exchange.
    pub oidc_token: Option<Secret>,
    /// A file holding the OIDC token; read again for every token request, since CI systems and
    /// HCP Terraform rewrite it while a run is in progress.
    pub oidc_token_file_path: Option<PathBuf>,
    /// The URL to request an OIDC token from (GitHub Actions, Azure DevOps).
    pub oidc_request_url: Option<String>,
    /// The bearer token for `oidc_request_url`.
    pub oidc_request_token: Option<Secret>,
    /// Whether a managed identity may be used.
    pub use_msi: bool,
    /// A custom managed identity endpoint.
    pub msi_endpoint: Option<String>,
    /// Whether the Azure CLI may be used.
    pub use_cli: bool,
    /// The cloud whose authority issues the tokens.
    pub cloud: CloudEnvironment,
}

/// The authentication method that was chosen, for messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A PKCS#12 client certificate.
    ClientCertificate,
    /// A client secret.
    ClientSecret,
    /// An OIDC token given as a value.
    OidcToken,
    /// An OIDC token read from a file.
    OidcTokenFile,
    /// An OIDC token requested from a CI system's URL.
    OidcRequest,
    /// A managed identity.
    ManagedIdentity,
    /// The Azure CLI's login.
    AzureCli,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::ClientCertificate => "client certificate",
            Self::ClientSecret => "client secret",
            Self::OidcToken => "OIDC token",
            Self::OidcTokenFile => "OIDC token file",
            Self::OidcRequest => "OIDC token request URL",
            Self::ManagedIdentity => "managed identity",
            Self::AzureCli => "Azure CLI",
        })
    }
}

/// A credential could not be built or refused to produce a token.
///
/// No variant holds a secret: messages name the method, the tenant and the file, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The tenant id is missing.
    #[error("no tenant id was given")]
    MissingTenant,

    /// No method's requirements were met.
    #[error(
        "no authentication method is configured: give a client id with a client secret, or \
         enable OIDC with an OIDC token or token file"
    )]
    NoMethod,

    /// The chosen method lacks a required value.
    #[error("authenticating with a {method} needs {missing}")]
    Missing {
        /// The chosen method.
        method: AuthMethod,
        /// What is missing, e.g. "a client id".
        missing: &'static str,
    },

    /// The chosen method is not implemented yet.
    #[error(
        "authenticating with a {method} is not supported yet; use a client secret or an OIDC \
         token (value or file) instead"
    )]
    Unsupported {
        /// The chosen method.
        method: AuthMethod,
    },

    /// Both an OIDC token and a token file were given and they differ.
    #[error("the OIDC token and the contents of the OIDC token file {path} differ; give only one")]
    OidcTokenMismatch {
        /// The token file.
        path: PathBuf,
    },

    /// The OIDC token file could not be read, or is empty.
    #[error("reading the OIDC token file {path}: {reason}")]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },

    /// `azure_identity` refused the configuration (a malformed tenant id, for example).
    #[error("setting up the {method} credential: {reason}")]
    Setup {
        /// The chosen method.
        method: AuthMethod,
        /// Why it was refused.
        reason: String,
    },

    /// Entra refused the token request, or could not be reached.
    #[error(
        "{}",
        describe_token_request(.method, .tenant_id, .scope, .status, .code, .message, .trace_id)
    )]
    TokenRequest {
        /// The method used.
        method: AuthMethod,
        /// The tenant asked.
        tenant_id: String,
        /// The scope asked for.
        scope: String,
        /// Entra's HTTP status, when it answered.
        status: Option<StatusCode>,
        /// The AADSTS code (or OAuth error) when Entra answered.
        code: Option<String>,
        /// Entra's explanation or the transport error.
        message: String,
        /// Entra's trace id, for support.
        trace_id: Option<String>,
    },
}

fn describe_token_request(
    method: &AuthMethod,
    tenant_id: &str,
    scope: &str,
    status: &Option<StatusCode>,
    code: &Option<String>,
    message: &str,
    trace_id: &Option<String>,
) -> String {
    let mut text = format!("getting a token for {scope} in tenant {tenant_id} with a {method}: ");
    if let Some(status) = status {
        text.push_str(&format!("HTTP {} ", status.as_u16()));
    }
    if let Some(code) = code {
        text.push_str(&format!("{code}: "));
    }
    text.push_str(message);
    if let Some(trace_id) = trace_id {
        text.push_str(&format!(" (trace id {trace_id})"));
    }
    text
}

impl CredentialError {
    /// Entra's HTTP status, if a token request got an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::TokenRequest { status, .. } => *status,
            _ => None,
        }
    }

    /// Entra's error code (for example `AADSTS700016`), if a token request got one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::TokenRequest { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Picks the method azurerm would pick for these options and builds its credential.
///
/// Precedence, as in go-azure-sdk's `NewAuthorizerFromCredentials`: client certificate, client
/// secret, OIDC token (value or file), OIDC token request URL, managed identity, Azure CLI.
/// Every credential sends through `http`, the process's shared client, so token requests use the
/// same proxy and trusted roots as every other call.
pub fn build_credential(
    options: &CredentialOptions,
    http: &reqwest::Client,
) -> Result<(Arc<dyn TokenCredential>, AuthMethod), CredentialError> {
    let method = choose_method(options)?;
    let credential: Arc<dyn TokenCredential> = match method {
        AuthMethod::ClientSecret => build_client_secret(options, http)?,
        AuthMethod::OidcToken | AuthMethod::OidcTokenFile => {
            build_client_assertion(options, method, http)?
        }
        // FIXME(auth-methods): certificates, OIDC token request URLs (GitHub Actions, Azure
        // DevOps), managed identity and the Azure CLI are recognised for precedence but have no
        // credential yet; users get a clear error instead of a silent fallback to another method.
        AuthMethod::ClientCertificate
        | AuthMethod::OidcRequest
        | AuthMethod::ManagedIdentity
        | AuthMethod::AzureCli => return Err(CredentialError::Unsupported { method }),
    };
    Ok((credential, method))
}

/// The method azurerm's precedence selects, without building anything.
pub fn choose_method(options: &CredentialOptions) -> Result<AuthMethod, CredentialError> {
    if options.tenant_id.trim().is_empty() {
        return Err(CredentialError::MissingTenant);
    }
    let given = |secret: &Option<Secret>| secret.as_ref().is_some_and(|value| !value.is_blank());

    if given(&options.client_certificate) || options.client_certificate_path.is_some() {
        return Ok(AuthMethod::ClientCertificate);
    }
    if given(&options.client_secret) {
        return Ok(AuthMethod::ClientSecret);
    }
    if options.use_oidc && options.oidc_token_file_path.is_some() {
        return Ok(AuthMethod::OidcTokenFile);
    }
    if options.use_oidc && given(&options.oidc_token) {
        return Ok(AuthMethod::OidcToken);
    }
    if options.use_oidc && options.oidc_request_url.is_some() && given(&options.oidc_request_token)
    {
        return Ok(AuthMethod::OidcRequest);
    }
    if options.use_msi {
        return Ok(AuthMethod::ManagedIdentity);
    }
    if options.use_cli {
        return Ok(AuthMethod::AzureCli);
    }
    Err(CredentialError::NoMethod)
}

fn client_options(cloud: CloudEnvironment, http: &reqwest::Client) -> ClientOptions {
    // A custom cloud configuration with our authority host, rather than the crate's built-in
    // table, so the endpoints come from one place (`cloud`) for tokens and API calls alike.
    let mut custom = CustomConfiguration::default();
    custom.authority_host = cloud.endpoints().authority_host.to_string();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::from(custom))),
        ..ClientOptions::default()
    }
}

fn require_client_id(
    options: &CredentialOptions,
    method: AuthMethod,
) -> Result<String, CredentialError> {
    match options.client_id.as_deref().map(str::trim) {
        Some(client_id) if !client_id.is_empty() => Ok(client_id.to_owned()),
        _ => Err(CredentialError::Missing { method, missing: "a client id" }),
    }
}

fn build_client_secret(
    options: &CredentialOptions,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let method = AuthMethod::ClientSecret;
    let client_id = require_client_id(options, method)?;
    let secret = options.client_secret.as_ref().map(Secret::expose).unwrap_or_default();
    let credential_options =
        ClientSecretCredentialOptions { client_options: client_options(options.cloud, http) };
    let credential = ClientSecretCredential::new(
        options.tenant_id.trim(),
        client_id,
        azure_core::credentials::Secret::new(secret.to_owned()),
        Some(credential_options),
    )
    .map_err(|error| CredentialError::Setup { method, reason: error.to_string() })?;
    Ok(credential)
}

fn build_client_assertion(
    options: &CredentialOptions,
    method: AuthMethod,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let client_id = require_client_id(options, method)?;
    let assertion = match (&options.oidc_token_file_path, &options.oidc_token) {
        (Some(path), token) => {
            // azurerm refuses a token value that disagrees with the file; we check once here
            // so the user hears about it before the first call rather than at token time.
            if let Some(token) = token.as_ref().filter(|token| !token.is_blank()) {
                let from_file = read_token_file(path)?;
                if from_file.expose() != token.expose().trim() {
                    return Err(CredentialError::OidcTokenMismatch { path: path.clone() });
                }
            }
            OidcAssertion::File { path: path.clone() }
        }
        (None, Some(token)) => OidcAssertion::Value { token: Secret::new(token.expose().trim()) },
        (None, None) => return Err(CredentialError::Missing { method, missing: "an OIDC token" }),
    };
    let credential_options =
        ClientAssertionCredentialOptions { client_options: client_options(options.cloud, http) };
    let credential = ClientAssertionCredential::new(
        options.tenant_id.trim().to_owned(),
        client_id,
        assertion,
        Some(credential_options),
    )
    .map_err(|error| CredentialError::Setup { method, reason: error.to_string() })?;
    Ok(credential)
}

/// The external token presented to Entra as a client assertion.
enum OidcAssertion {
    /// A fixed token.
    Value { token: Secret },
    /// A file read again on every token request, trimmed.
    File { path: PathBuf },
}

impl fmt::Debug for OidcAssertion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value { .. } => formatter.write_str("OidcAssertion::Value(<redacted>)"),
            Self::File { path } => write!(formatter, "OidcAssertion::File({})", path.display()),
        }
    }
}

#[async_trait::async_trait]
impl ClientAssertion for OidcAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        match self {
            Self::Value { token } => Ok(token.expose().to_owned()),
            Self::File { path } => {
                let path = path.clone();
                // A small file, but read off the runtime's worker threads all the same.
                let token = tokio::task::spawn_blocking(move || read_token_file(&path))
                    .await
                    .map_err(|error| azure_core::Error::new(ErrorKind::Io, error))?
                    .map_err(|error| azure_core::Error::new(ErrorKind::Io, error))?;
                Ok(token.expose().to_owned())
            }
        }
    }
}

/// Reads and trims an OIDC token file; an empty file is an error, not an empty assertion.
fn read_token_file(path: &Path) -> Result<Secret, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|error| CredentialError::TokenFile {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        let reason = "the file is empty".to_owned();
        return Err(CredentialError::TokenFile { path: path.to_owned(), reason });
    }
    Ok(Secret::new(token))
}

/// Turns `azure_identity`'s error into ours, keeping Entra's code and trace id.
///
/// The azure_identity error wraps the Entra response; we read code, first line and trace id
/// from its body and drop the rest (the troubleshooting link, the raw response).
pub(crate) fn token_request_error(
    method: AuthMethod,
    tenant_id: &str,
    scope: &str,
    error: &azure_core::Error,
) -> CredentialError {
    let innermost = innermost_core_error(error);
    let mut status = None;
    let mut code = None;
    let mut trace_id = None;
    let mut message = match innermost.get_ref() {
        Some(cause) => crate::azure::http::chain(cause),
        None => innermost.to_string(),
    };
    if let ErrorKind::HttpResponse { status: http_status, error_code, raw_response } =
        innermost.kind()
    {
        status = convert_status(*http_status);
        code = error_code.clone();
        if let Some(response) = raw_response {
            let parsed = parse_error_body(response.body().as_ref());
            code = parsed.code.or(code);
            trace_id = parsed.request_id;
            if let Some(parsed_message) = parsed.message {
                message = parsed_message;
            }
        }
    }
    if let ErrorKind::DataConversion = innermost.kind()
        && let Some(description) = description_from_decode_error(&message)
    {
        let parsed = parse_entra_description(&description);
        code = parsed.code;
        trace_id = parsed.request_id;
        message = parsed.message.unwrap_or(message);
    }
    if let Some(CredentialError::TokenFile { path, reason }) =
        find_cause::<CredentialError>(innermost)
    {
        message = format!("reading the OIDC token file {}: {reason}", path.display());
    }
    CredentialError::TokenRequest {
        method,
        tenant_id: tenant_id.to_owned(),
        scope: scope.to_owned(),
        status,
        code,
        message,
        trace_id,
    }
}

/// Recovers Entra's `error_description` from the text of azure_identity's decoding error.
///
/// FIXME(azure-identity-errors): azure_identity 1.0.0 (and 1.1.0-beta.1) decodes
/// `error_description` as a borrowed `&str`, which fails whenever the JSON escapes a character;
/// Entra's descriptions always contain `\r\n`. Every refused token request then surfaces as
/// `invalid type: string "<description>", expected a borrowed string`, without the HTTP status.
/// We read the description back out of that text (serde prints it Debug-escaped) until the
/// crate decodes an owned string.
fn description_from_decode_error(text: &str) -> Option<String> {
    let start = text.find("invalid type: string \"")? + "invalid type: string \"".len();
    let end = text.rfind("\", expected a borrowed string")?;
    let escaped = text.get(start..end)?;
    let mut description = String::with_capacity(escaped.len());
    let mut characters = escaped.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            description.push(character);
            continue;
        }
        match characters.next() {
            Some('r') => description.push('\r'),
            Some('n') => description.push('\n'),
            Some('t') => description.push('\t'),
            Some(other) => description.push(other),
            None => {}
        }
    }
    Some(description)
}

/// azure_identity wraps its errors in `Credential` errors; the interesting one is inside.
fn innermost_core_error(error: &azure_core::Error) -> &azure_core::Error {
    let mut current = error;
    while let Some(inner) = current.downcast_ref::<azure_core::Error>() {
        current = inner;
    }
    current
}

fn find_cause<T: std::error::Error + 'static>(error: &azure_core::Error) -> Option<&T> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        source = current.source();
    }
    None
}

fn convert_status(status: CoreStatusCode) -> Option<StatusCode> {
    StatusCode::from_u16(u16::from(status)).ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{AuthMethod, CredentialError, CredentialOptions, choose_method};
    use crate::azure::secret::Secret;

    const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
    const FAKE_SECRET: &str = "fake-secret-do-not-print";

    fn options() -> CredentialOptions {
        CredentialOptions {
            tenant_id: TENANT.into(),
            client_id: Some("11111111-1111-1111-1111-111111111111".into()),
            ..CredentialOptions::default()
        }
    }

    #[test]
    fn precedence_follows_azurerm() {
        let everything = CredentialOptions {
            client_certificate_path: Some(PathBuf::from("/c.pfx")),
            client_secret: Some(Secret::new(FAKE_SECRET)),
            use_oidc: true,
            oidc_token: Some(Secret::new("jwt")),
            oidc_token_file_path: Some(PathBuf::from("/t")),
            oidc_request_url: Some("https://token.actions".into()),
            oidc_request_token: Some(Secret::new("bearer")),
            use_msi: true,
            use_cli: true,
            ..options()
        };
        let cases: Vec<(&str, CredentialOptions, Result<AuthMethod, CredentialError>)> = vec![
            ("certificate first", everything.clone(), Ok(AuthMethod::ClientCertificate)),
            (
                "then secret",
                CredentialOptions { client_certificate_path: None, ..everything.clone() },
                Ok(AuthMethod::ClientSecret),
            ),
            (
                "blank secret is ignored",
                CredentialOptions {
                    client_certificate_path: None,
                    client_secret: Some(Secret::new(" ")),
                    ..everything.clone()
                },
                Ok(AuthMethod::OidcTokenFile),
            ),
            (
                "oidc token value",
                CredentialOptions { use_oidc: true, oidc_token: Some("jwt".into()), ..options() },
                Ok(AuthMethod::OidcToken),
            ),
            (
                "oidc token without use_oidc falls through",
                CredentialOptions { oidc_token: Some("jwt".into()), use_cli: true, ..options() },
                Ok(AuthMethod::AzureCli),
            ),
            (
                "request url needs a token",
                CredentialOptions {
                    use_oidc: true,
                    oidc_request_url: Some("https://x".into()),
                    use_msi: true,
                    ..options()
                },
                Ok(AuthMethod::ManagedIdentity),
            ),
            (
                "request url with token",
                CredentialOptions {
                    use_oidc: true,
                    oidc_request_url: Some("https://x".into()),
                    oidc_request_token: Some("t".into()),
                    ..options()
                },
                Ok(AuthMethod::OidcRequest),
            ),
            ("nothing", options(), Err(CredentialError::NoMethod)),
            (
                "no tenant",
                CredentialOptions { tenant_id: " ".into(), use_cli: true, ..options() },
                Err(CredentialError::MissingTenant),
            ),
        ];
        for (name, options, expected) in cases {
            assert_eq!(choose_method(&options), expected, "{name}");
        }
    }

    #[test]
    fn debug_of_options_hides_secrets() {
        let options = CredentialOptions {
            client_secret: Some(Secret::new(FAKE_SECRET)),
            oidc_token: Some(Secret::new(FAKE_SECRET)),
            ..options()
        };
        let rendered = format!("{options:?}");
        assert!(!rendered.contains(FAKE_SECRET), "{rendered}");
    }

    #[test]
    fn unsupported_methods_say_so() {
        let http = reqwest::Client::new();
        let cases = [
            ("msi", CredentialOptions { use_msi: true, ..options() }, AuthMethod::ManagedIdentity),
            ("cli", CredentialOptions { use_cli: true, ..options() }, AuthMethod::AzureCli),
        ];
        for (name, options, method) in cases {
            let error = super::build_credential(&options, &http).unwrap_err();
            assert_eq!(error, CredentialError::Unsupported { method }, "{name}");
            assert!(error.to_string().contains("not supported yet"), "{name}");
        }
    }

    #[test]
    fn secret_needs_a_client_id() {
        let http = reqwest::Client::new();
        let options = CredentialOptions {
            client_id: None,
            client_secret: Some(Secret::new(FAKE_SECRET)),
            ..options()
        };
        let error = super::build_credential(&options, &http).unwrap_err();
        assert_eq!(
            error,
            CredentialError::Missing { method: AuthMethod::ClientSecret, missing: "a client id" }
        );
        assert!(!error.to_string().contains(FAKE_SECRET));
    }

    #[test]
    fn mismatched_token_and_file_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let http = reqwest::Client::new();
        let base = CredentialOptions {
            use_oidc: true,
            oidc_token_file_path: Some(path.clone()),
            ..options()
        };

        let same = CredentialOptions { oidc_token: Some("from-file".into()), ..base.clone() };
        let (_, method) = super::build_credential(&same, &http).unwrap();
        assert_eq!(method, AuthMethod::OidcTokenFile);

        let different = CredentialOptions { oidc_token: Some("other".into()), ..base };
        let error = super::build_credential(&different, &http).unwrap_err();
        assert_eq!(error, CredentialError::OidcTokenMismatch { path });
    }

    #[test]
    fn entra_description_is_recovered_from_the_decoding_error() {
        let text = "invalid type: string \"AADSTS7000215: Invalid client secret provided. Ensure \
                    it is \\\"the value\\\".\\r\\nTrace ID: ed48\\r\\nCorrelation ID: 2644\\r\\n\
                    Timestamp: 2026-12-03 17:01:49Z\", expected a borrowed string at line 1 column 479";
        let description = super::description_from_decode_error(text).unwrap();
        assert_eq!(
            description,
            "AADSTS7000215: Invalid client secret provided. Ensure it is \"the value\".\r\n\
             Trace ID: ed48\r\nCorrelation ID: 2644\r\nTimestamp: 2026-12-03 17:01:49Z"
        );
        assert_eq!(super::description_from_decode_error("missing field `x`"), None);
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let directory = tempfile::tempdir().unwrap();
        let cases = [
            ("trimmed", " jwt-value \n", Ok("jwt-value")),
            ("empty", "\n", Err("the file is empty")),
        ];
        for (name, contents, expected) in cases {
            let path = directory.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let result = super::read_token_file(&path);
            match (result, expected) {
                (Ok(token), Ok(value)) => assert_eq!(token.expose(), value, "{name}"),
                (Err(CredentialError::TokenFile { reason, .. }), Err(expected)) => {
                    assert_eq!(reason, expected, "{name}")
                }
                (other, _) => panic!("{name}: {other:?}"),
            }
        }
    }
}
