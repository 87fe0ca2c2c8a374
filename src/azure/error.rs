//! The one error type of the Azure client, and parsing of the services' error bodies.
//!
//! This module owns how a refusal from ARM, Graph, Key Vault or Entra becomes an [`AzureError`]
//! that names the operation, the resource, the HTTP status, the service's error code and the
//! request id. It must never keep a response body whole (bodies can echo secrets) nor any
//! request header.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::azure::credentials::CredentialError;

/// Everything that can go wrong calling Azure.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// Azure answered with an error status, or a long-running operation ended Failed or Canceled.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The deadline passed before Azure finished.
    #[error(
        "{operation} {resource}: timed out after {}; Azure may still be working on it, raise \
         this resource's timeout in its `timeouts` block if it needs longer",
        format_duration(*waited)
    )]
    Timeout {
        /// What we were doing, e.g. "updating SQL server".
        operation: String,
        /// The resource id or URL path.
        resource: String,
        /// How long we had been waiting.
        waited: Duration,
    },

    /// The caller cancelled (Terraform asked the provider to stop).
    #[error("{operation} {resource}: cancelled")]
    Cancelled {
        /// What we were doing.
        operation: String,
        /// The resource id or URL path.
        resource: String,
    },

    /// The request never got an HTTP answer: DNS, TCP, TLS or a dropped connection.
    #[error("{operation} {resource}: {detail}")]
    Transport {
        /// What we were doing.
        operation: String,
        /// The resource id or URL path.
        resource: String,
        /// The transport error and its causes.
        detail: String,
    },

    /// No access token could be obtained.
    #[error("{operation} {resource}: {error}")]
    Credential {
        /// What we were doing.
        operation: String,
        /// The resource id or URL path.
        resource: String,
        /// Why the token request failed.
        error: Box<CredentialError>,
    },

    /// Azure answered with a success status but a body we could not read.
    #[error("{operation} {resource}: unexpected response from Azure: {detail}")]
    Decode {
        /// What we were doing.
        operation: String,
        /// The resource id or URL path.
        resource: String,
        /// What did not match.
        detail: String,
    },

    /// The request could not be built from the caller's input (a malformed URL, for example).
    #[error("{operation} {resource}: {detail}")]
    InvalidRequest {
        /// What we were doing.
        operation: String,
        /// The resource id or URL path.
        resource: String,
        /// What was wrong.
        detail: String,
    },
}

/// A refusal from an Azure service, with everything a user needs to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What we were doing, e.g. "updating SQL server".
    pub operation: String,
    /// The resource id or URL path.
    pub resource: String,
    /// The HTTP status, or `None` for a long-running operation that ended badly.
    pub status: Option<StatusCode>,
    /// For a long-running operation: its terminal status (`Failed`, `Canceled`).
    pub operation_status: Option<String>,
    /// The service's error code, e.g. `InvalidPrimaryIdentityId`, `Request_ResourceNotFound`.
    pub code: Option<String>,
    /// The service's message.
    pub message: String,
    /// Request id for support: `x-ms-request-id`, Graph `request-id`, Entra trace id.
    pub request_id: Option<String>,
    /// Nested details (ARM `details[]`, Key Vault `innererror`), outermost first.
    pub details: Vec<ErrorDetail>,
}

/// One nested error detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    /// The detail's code, if any.
    pub code: Option<String>,
    /// The detail's message, possibly empty.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}: ", self.operation, self.resource)?;
        match (&self.status, &self.operation_status) {
            (_, Some(operation_status)) => {
                write!(formatter, "long-running operation ended {operation_status}")?
            }
            (Some(status), None) => write!(formatter, "HTTP {}", status.as_u16())?,
            (None, None) => formatter.write_str("Azure refused")?,
        }
        if let Some(code) = &self.code {
            write!(formatter, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(formatter, ": {}", self.message)?;
        }
        for detail in self.details.iter().filter(|detail| !detail.message.is_empty()) {
            match &detail.code {
                Some(code) => write!(formatter, "; {code}: {}", detail.message)?,
                None => write!(formatter, "; {}", detail.message)?,
            }
        }
        if let Some(request_id) = &self.request_id {
            write!(formatter, " (request id {request_id})")?;
        }
        Ok(())
    }
}

impl AzureError {
    /// The HTTP status Azure answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api(error) => error.status,
            Self::Credential { error, .. } => error.status(),
            _ => None,
        }
    }

    /// The service's error code (`ResourceNotFound`, `AADSTS700016`, ...), if there was one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(error) => error.code.as_deref(),
            Self::Credential { error, .. } => error.code(),
            _ => None,
        }
    }

    /// The request id Azure gave, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(error) => error.request_id.as_deref(),
            _ => None,
        }
    }

    /// The object does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Another object or operation is in the way (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// Azure asked us to slow down (HTTP 429) and we ran out of retries or time.
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(StatusCode::TOO_MANY_REQUESTS)
    }

    /// The caller is not who Azure needs, or lacks permission (401, 403, or no token at all).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Credential { .. })
            || matches!(self.status(), Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN))
    }

    /// The deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The caller cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled { .. })
    }
}

impl From<ApiError> for AzureError {
    fn from(error: ApiError) -> Self {
        Self::Api(Box::new(error))
    }
}

/// Which service answered, since each has its own error envelope and request id header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// Azure Resource Manager.
    ResourceManager,
    /// Microsoft Graph.
    Graph,
    /// The Key Vault data plane.
    KeyVault,
    /// The Entra token endpoint.
    Entra,
}

/// Turns an error response into an [`ApiError`].
///
/// Reads the body as the service's envelope and falls back to the other known envelopes, since
/// gateways in front of a service sometimes answer in ARM's shape. A body that is not JSON is
/// never copied into the message: it may be an HTML page or echo what we sent.
pub fn parse_error_response(
    service: ServiceKind,
    operation: &str,
    resource: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    let parsed = parse_error_body(body);
    // Graph and Entra put the id support asks for in the body; ARM and Key Vault in a header.
    let from_headers = request_id_from_headers(service, headers);
    let request_id = match service {
        ServiceKind::Graph | ServiceKind::Entra => parsed.request_id.or(from_headers),
        ServiceKind::ResourceManager | ServiceKind::KeyVault => from_headers.or(parsed.request_id),
    };
    let message = match parsed.message {
        Some(message) if !message.is_empty() => message,
        _ => status.canonical_reason().unwrap_or("no error message").to_lowercase(),
    };
    ApiError {
        operation: operation.to_owned(),
        resource: resource.to_owned(),
        status: Some(status),
        operation_status: None,
        code: parsed.code,
        message,
        request_id,
        details: parsed.details,
    }
}

/// The request id header a service uses, read from a response.
pub fn request_id_from_headers(service: ServiceKind, headers: &HeaderMap) -> Option<String> {
    let names: &[&str] = match service {
        ServiceKind::Graph => &["request-id", "x-ms-request-id", "client-request-id"],
        ServiceKind::Entra => &["x-ms-request-id", "client-request-id"],
        ServiceKind::ResourceManager | ServiceKind::KeyVault => {
            &["x-ms-request-id", "x-ms-correlation-request-id"]
        }
    };
    names.iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// What could be read from an error body, whatever its envelope.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedErrorBody {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) details: Vec<ErrorDetail>,
}

/// Reads ARM, Graph, Key Vault and Entra error bodies.
pub(crate) fn parse_error_body(body: &[u8]) -> ParsedErrorBody {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return ParsedErrorBody::default();
    };
    match envelope.error {
        Some(ErrorField::Object(error)) => parse_nested_error(*error),
        Some(ErrorField::Code(code)) => {
            let mut parsed =
                parse_entra_description(&envelope.error_description.unwrap_or_default());
            parsed.code = parsed.code.or(Some(code));
            parsed
        }
        None => ParsedErrorBody {
            // Some ARM operation-status and Key Vault bodies put code and message at top level.
            code: envelope.code,
            message: envelope.message.map(MessageField::into_text),
            ..ParsedErrorBody::default()
        },
    }
}

fn parse_nested_error(error: NestedError) -> ParsedErrorBody {
    let mut details: Vec<ErrorDetail> = error
        .details
        .map(DetailsField::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(|detail| ErrorDetail {
            code: detail.code,
            message: detail.message.map(MessageField::into_text).unwrap_or_default(),
        })
        .collect();
    let inner = error.inner_error.or(error.innererror);
    let mut request_id = None;
    if let Some(inner) = inner {
        request_id = inner.request_id;
        // Key Vault's innererror carries a finer code ("ForbiddenByRbac") worth showing.
        if inner.code.is_some() {
            details.push(ErrorDetail { code: inner.code, message: String::new() });
        }
    }
    ParsedErrorBody {
        code: error.code.filter(|code| !code.is_empty()),
        message: error.message.map(MessageField::into_text),
        request_id,
        details,
    }
}

/// Reads an Entra `error_description`; `code` is the AADSTS number when there is one.
pub(crate) fn parse_entra_description(description: &str) -> ParsedErrorBody {
    // Entra descriptions read "AADSTS700016: Application ... \r\nTrace ID: ...\r\nCorrelation
    // ID: ...\r\nTimestamp: ...". The first line is the message, the trace id is what support asks
    // for, and the AADSTS number is the precise code (the `error` field is only a category).
    let mut lines = description.lines().map(str::trim).filter(|line| !line.is_empty());
    let first_line = lines.next().unwrap_or_default();
    let trace_id = description
        .lines()
        .find_map(|line| line.trim().strip_prefix("Trace ID:"))
        .map(|id| id.trim().to_owned());
    let (code, message) = match first_line.split_once(':') {
        Some((prefix, rest)) if prefix.starts_with("AADSTS") => {
            (Some(prefix.to_owned()), rest.trim())
        }
        _ => (None, first_line),
    };
    ParsedErrorBody {
        code,
        message: (!message.is_empty()).then(|| message.to_owned()),
        request_id: trace_id,
        details: Vec::new(),
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<ErrorField>,
    error_description: Option<String>,
    code: Option<String>,
    message: Option<MessageField>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Object(Box<NestedError>),
    Code(String),
}

#[derive(Deserialize)]
struct NestedError {
    code: Option<String>,
    message: Option<MessageField>,
    details: Option<DetailsField>,
    #[serde(rename = "innerError")]
    inner_error: Option<InnerError>,
    innererror: Option<InnerError>,
}

/// Graph sometimes sends `message` as `{"lang": "en", "value": "..."}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MessageField {
    Text(String),
    Localized { value: String },
}

impl MessageField {
    fn into_text(self) -> String {
        match self {
            Self::Text(text) | Self::Localized { value: text } => text,
        }
    }
}

/// Graph sends `details` as an array or, in older responses, as a single object.
#[derive(Deserialize)]
#[serde(untagged)]
enum DetailsField {
    Many(Vec<RawDetail>),
    One(RawDetail),
}

impl DetailsField {
    fn into_vec(self) -> Vec<RawDetail> {
        match self {
            Self::Many(details) => details,
            Self::One(detail) => vec![detail],
        }
    }
}

#[derive(Deserialize)]
struct RawDetail {
    code: Option<String>,
    message: Option<MessageField>,
}

#[derive(Deserialize)]
struct InnerError {
    code: Option<String>,
    #[serde(rename = "request-id")]
    request_id: Option<String>,
}

/// `1h2m3s`, `2m0s`, `45s`, `800ms`: how Terraform users write timeouts.
pub(crate) fn format_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
    match (hours, minutes) {
        (0, 0) if total == 0 => format!("{}ms", duration.as_millis()),
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::{
        ApiError, AzureError, ErrorDetail, ParsedErrorBody, ServiceKind, format_duration,
        parse_error_body, parse_error_response,
    };

    fn detail(code: &str, message: &str) -> ErrorDetail {
        ErrorDetail { code: Some(code.to_owned()), message: message.to_owned() }
    }

    #[test]
    fn parses_each_envelope() {
        let cases: Vec<(&str, &str, ParsedErrorBody)> = vec![
            (
                "arm with details",
                r#"{"error":{"code":"InvalidPrimaryIdentityId","message":"not in list",
                   "target":"properties","details":[{"code":"Inner","message":"why"}]}}"#,
                ParsedErrorBody {
                    code: Some("InvalidPrimaryIdentityId".into()),
                    message: Some("not in list".into()),
                    request_id: None,
                    details: vec![detail("Inner", "why")],
                },
            ),
            (
                "graph with innerError",
                r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist",
                   "innerError":{"date":"2021-04-20T17:22:30","request-id":"f58c","client-request-id":"f58c"}}}"#,
                ParsedErrorBody {
                    code: Some("Request_ResourceNotFound".into()),
                    message: Some("Resource 'x' does not exist".into()),
                    request_id: Some("f58c".into()),
                    details: vec![],
                },
            ),
            (
                "graph localized message and single details object",
                r#"{"error":{"code":"Request_BadRequest","message":{"lang":"en","value":"bad"},
                   "details":{"code":"D","message":"d"}}}"#,
                ParsedErrorBody {
                    code: Some("Request_BadRequest".into()),
                    message: Some("bad".into()),
                    request_id: None,
                    details: vec![detail("D", "d")],
                },
            ),
            (
                "key vault innererror",
                r#"{"error":{"code":"Forbidden","message":"Caller is not authorized",
                   "innererror":{"code":"ForbiddenByRbac"}}}"#,
                ParsedErrorBody {
                    code: Some("Forbidden".into()),
                    message: Some("Caller is not authorized".into()),
                    request_id: None,
                    details: vec![ErrorDetail {
                        code: Some("ForbiddenByRbac".into()),
                        message: String::new(),
                    }],
                },
            ),
            (
                "entra token endpoint",
                "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client \
                 secret provided.\\r\\nTrace ID: abc-123\\r\\nCorrelation ID: def\\r\\nTimestamp: \
                 2024-01-01 00:00:00Z\",\"error_codes\":[7000215]}",
                ParsedErrorBody {
                    code: Some("AADSTS7000215".into()),
                    message: Some("Invalid client secret provided.".into()),
                    request_id: Some("abc-123".into()),
                    details: vec![],
                },
            ),
            (
                "top-level code and message",
                r#"{"code":"ResourceNotFound","message":"gone"}"#,
                ParsedErrorBody {
                    code: Some("ResourceNotFound".into()),
                    message: Some("gone".into()),
                    ..ParsedErrorBody::default()
                },
            ),
            ("html body", "<html>Bad Gateway</html>", ParsedErrorBody::default()),
            ("empty body", "", ParsedErrorBody::default()),
        ];
        for (name, body, expected) in cases {
            assert_eq!(parse_error_body(body.as_bytes()), expected, "{name}");
        }
    }

    #[test]
    fn display_reads_like_a_sentence() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-request-id", HeaderValue::from_static("req-1"));
        let body = br#"{"error":{"code":"InvalidPrimaryIdentityId","message":"The primary identity is not in the list."}}"#;
        let error = parse_error_response(
            ServiceKind::ResourceManager,
            "updating SQL server",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x",
            StatusCode::BAD_REQUEST,
            &headers,
            body,
        );
        assert_eq!(
            AzureError::from(error).to_string(),
            "updating SQL server /subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/\
             servers/x: HTTP 400 InvalidPrimaryIdentityId: The primary identity is not in the \
             list. (request id req-1)"
        );
    }

    #[test]
    fn graph_request_id_prefers_the_body() {
        let mut headers = HeaderMap::new();
        headers.insert("request-id", HeaderValue::from_static("from-header"));
        let body =
            br#"{"error":{"code":"X","message":"m","innerError":{"request-id":"from-body"}}}"#;
        let error = parse_error_response(
            ServiceKind::Graph,
            "op",
            "/x",
            StatusCode::NOT_FOUND,
            &headers,
            body,
        );
        assert_eq!(error.request_id.as_deref(), Some("from-body"));

        let error = parse_error_response(
            ServiceKind::Graph,
            "op",
            "/x",
            StatusCode::NOT_FOUND,
            &headers,
            b"",
        );
        assert_eq!(error.request_id.as_deref(), Some("from-header"));
    }

    #[test]
    fn missing_message_falls_back_to_status_reason() {
        let error = parse_error_response(
            ServiceKind::KeyVault,
            "reading key",
            "/keys/k",
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>",
        );
        assert_eq!(error.message, "bad gateway");
        assert_eq!(error.code, None);
    }

    #[test]
    fn kinds_follow_the_status() {
        let cases = [
            ("not found", StatusCode::NOT_FOUND, [true, false, false, false]),
            ("conflict", StatusCode::CONFLICT, [false, true, false, false]),
            ("throttled", StatusCode::TOO_MANY_REQUESTS, [false, false, true, false]),
            ("unauthorized", StatusCode::UNAUTHORIZED, [false, false, false, true]),
            ("forbidden", StatusCode::FORBIDDEN, [false, false, false, true]),
            ("bad request", StatusCode::BAD_REQUEST, [false, false, false, false]),
        ];
        for (name, status, expected) in cases {
            let error = AzureError::from(ApiError {
                operation: "op".into(),
                resource: "/x".into(),
                status: Some(status),
                operation_status: None,
                code: Some("Code".into()),
                message: "m".into(),
                request_id: None,
                details: vec![],
            });
            let kinds = [
                error.is_not_found(),
                error.is_conflict(),
                error.is_throttled(),
                error.is_unauthorized(),
            ];
            assert_eq!(kinds, expected, "{name}");
            assert_eq!(error.code(), Some("Code"), "{name}");
        }
    }

    #[test]
    fn long_running_failure_display() {
        let error = AzureError::from(ApiError {
            operation: "setting encryption protector".into(),
            resource: "/s/x".into(),
            status: None,
            operation_status: Some("Failed".into()),
            code: Some("AzureKeyVaultMissingPermissions".into()),
            message: "The server is missing required permissions on the Azure Key Vault.".into(),
            request_id: Some("op-1".into()),
            details: vec![],
        });
        assert_eq!(
            error.to_string(),
            "setting encryption protector /s/x: long-running operation ended Failed \
             AzureKeyVaultMissingPermissions: The server is missing required permissions on the \
             Azure Key Vault. (request id op-1)"
        );
    }

    #[test]
    fn timeout_names_the_operation_and_the_setting() {
        let error = AzureError::Timeout {
            operation: "updating SQL server".into(),
            resource: "/s/x".into(),
            waited: Duration::from_secs(1800),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("updating SQL server /s/x: timed out after 30m0s"),
            "{message}"
        );
        assert!(message.contains("timeouts"), "{message}");
    }

    #[test]
    fn durations_read_like_terraform_timeouts() {
        let cases = [
            ("sub-second", Duration::from_millis(800), "800ms"),
            ("seconds", Duration::from_secs(45), "45s"),
            ("minutes", Duration::from_secs(120), "2m0s"),
            ("hours", Duration::from_secs(3723), "1h2m3s"),
        ];
        for (name, duration, expected) in cases {
            assert_eq!(format_duration(duration), expected, "{name}");
        }
    }
}
