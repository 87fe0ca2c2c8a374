//! The Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`) and access-token checks.
//!
//! Issues client-credentials tokens for service principals that prove themselves with a client
//! secret or a federated client assertion, answering failures with the AADSTS codes Entra uses.
//! Other API modules call [`authenticate`] to turn a bearer token into a [`Caller`]. This module
//! never logs secrets, assertions or tokens.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Shared;
use crate::http::{ApiRequest, json_response, unix_now};
use crate::jwt::JwtError;
use crate::state::{ReplicatedKind, World};

/// Lifetime of issued access tokens, seconds.
const TOKEN_LIFETIME: i64 = 3600;
/// The client assertion type for federated credentials and certificates.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Which API a token is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Azure Resource Manager.
    ResourceManager,
    /// Microsoft Graph.
    Graph,
    /// Key Vault data plane.
    KeyVault,
    /// The token-exchange audience used by managed identities in federation.
    TokenExchange,
}

/// Classifies an audience (the token's `aud`, or a scope without `/.default`).
pub fn audience_kind(audience: &str) -> Option<Audience> {
    let audience = audience.trim_end_matches('/').to_ascii_lowercase();
    match audience.as_str() {
        "https://management.azure.com"
        | "https://management.core.windows.net"
        | "https://management.usgovcloudapi.net"
        | "https://management.core.usgovcloudapi.net"
        | "https://management.chinacloudapi.cn"
        | "https://management.core.chinacloudapi.cn" => Some(Audience::ResourceManager),
        "https://graph.microsoft.com"
        | "https://graph.microsoft.us"
        | "https://microsoftgraph.chinacloudapi.cn"
        | "00000003-0000-0000-c000-000000000000" => Some(Audience::Graph),
        "https://vault.azure.net"
        | "https://vault.usgovcloudapi.net"
        | "https://vault.azure.cn" => Some(Audience::KeyVault),
        "api://azureadtokenexchange"
        | "api://azureadtokenexchangeusgov"
        | "api://azureadtokenexchangechina" => Some(Audience::TokenExchange),
        _ => None,
    }
}

/// The principal behind a valid access token.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `tid`.
    pub tenant_id: Uuid,
    /// `oid`: the service principal object id.
    pub object_id: Uuid,
    /// `appid`.
    pub app_id: Uuid,
    /// `aud`, classified.
    pub audience: Option<Audience>,
    /// `roles`.
    pub roles: Vec<String>,
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token at all.
    #[error("the authorization header is missing")]
    Missing,
    /// Signature, expiry or shape is wrong.
    #[error("{0}")]
    Invalid(#[from] JwtError),
    /// Claims are missing or not ids.
    #[error("token claims are incomplete")]
    Claims,
}

/// Checks a bearer token issued by this simulator.
pub fn authenticate(shared: &Shared, token: Option<&str>) -> Result<Caller, AuthError> {
    let token = token.ok_or(AuthError::Missing)?;
    let claims = shared.access_tokens.verify(token, unix_now())?;
    let id = |name: &str| {
        claims.get(name).and_then(Value::as_str).and_then(|value| Uuid::parse_str(value).ok())
    };
    let roles = claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|roles| roles.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Caller {
        tenant_id: id("tid").ok_or(AuthError::Claims)?,
        object_id: id("oid").ok_or(AuthError::Claims)?,
        app_id: id("appid").ok_or(AuthError::Claims)?,
        audience: claims.get("aud").and_then(Value::as_str).and_then(audience_kind),
        roles,
    })
}

/// Marks a token request in the request log with its tenant and scope.
#[derive(Clone, Debug)]
pub struct TokenRequestMark {
    /// Tenant segment of the URL.
    pub tenant: String,
    /// `scope` form field.
    pub scope: String,
}

/// An Entra error answer.
#[derive(Debug)]
struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl EntraError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: String) -> Self {
        Self { status, error, code, description }
    }

    fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    fn into_response(self, correlation_id: &str) -> Response {
        let trace_id = Uuid::new_v4().to_string();
        let stamp = entra_timestamp(time::OffsetDateTime::now_utc());
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: \
                    {correlation_id}\r\nTimestamp: {stamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        json_response(self.status, &body, &[("x-ms-request-id", trace_id.clone())])
    }
}

/// Entra's timestamp format in error bodies: `2024-01-02 03:04:05Z`.
fn entra_timestamp(moment: time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    moment.format(&format).unwrap_or_default()
}

/// The form fields of a token request that matter here.
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion: Option<String>,
    client_assertion_type: Option<String>,
    scope: Option<String>,
}

impl TokenForm {
    fn parse(request: &ApiRequest) -> Self {
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
        let get =
            |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
        let mut form = Self {
            grant_type: get("grant_type"),
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            client_assertion: get("client_assertion"),
            client_assertion_type: get("client_assertion_type"),
            scope: get("scope"),
        };
        // RFC 6749 client_secret_basic: `Basic base64(client_id:client_secret)`.
        if let Some((id, secret)) = basic_credentials(request) {
            form.client_id.get_or_insert(id);
            form.client_secret.get_or_insert(secret);
        }
        form
    }
}

fn basic_credentials(request: &ApiRequest) -> Option<(String, String)> {
    let value = request.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request = match ApiRequest::collect(request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let tenant = request.segments().first().map(|s| s.to_string()).unwrap_or_default();
    let correlation_id = request
        .headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let form = TokenForm::parse(&request);

    let outcome = {
        let world = shared.world();
        issue(&shared, &world, &tenant, &form)
    };
    let mut response = match outcome {
        Ok(access_token) => success_response(&access_token),
        Err(error) => error.into_response(&correlation_id),
    };
    response
        .extensions_mut()
        .insert(TokenRequestMark { tenant, scope: form.scope.clone().unwrap_or_default() });
    response
}

fn success_response(access_token: &str) -> Response {
    // Written by hand to keep Entra's field order; `expires_in` is a number.
    let body = format!(
        "{{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,\
         \"access_token\":\"{access_token}\"}}"
    );
    let mut response = Response::new(axum::body::Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-ms-request-id", value);
    }
    response
}

fn issue(
    shared: &Shared,
    world: &World,
    tenant: &str,
    form: &TokenForm,
) -> Result<String, EntraError> {
    let tenant_id = Uuid::parse_str(tenant)
        .ok()
        .filter(|id| world.tenants.contains_key(id))
        .ok_or_else(|| unknown_tenant(tenant))?;
    let tenant_name = world.tenants[&tenant_id].display_name.clone();

    match form.grant_type.as_deref() {
        None => return Err(EntraError::missing_parameter("grant_type")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(EntraError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
    }
    let client_id =
        form.client_id.as_deref().ok_or_else(|| EntraError::missing_parameter("client_id"))?;
    let scope = form.scope.as_deref().ok_or_else(|| EntraError::missing_parameter("scope"))?;
    let resource = resource_of_scope(scope)?;

    let app_id = Uuid::parse_str(client_id).map_err(|_| app_not_found(client_id, &tenant_name))?;
    let principal = world
        .visible_principal_by_app_id(tenant_id, app_id)
        .ok_or_else(|| app_not_found(client_id, &tenant_name))?;
    let application = world.application_anywhere(app_id);
    verify_client(shared, world, application, client_id, form)?;

    if audience_kind(&resource).is_none() {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named \
                    {tenant_name}. This can happen if the application has not been installed by \
                    the administrator of the tenant or consented to by any user in the tenant. You \
                    might have sent your authentication request to the wrong tenant."
            ),
        ));
    }

    let now = unix_now();
    let mut claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "tid": tenant_id.to_string(),
        "oid": principal.object_id.to_string(),
        "sub": principal.object_id.to_string(),
        "appid": app_id.to_string(),
        "idtyp": "app",
        "ver": "1.0",
    });
    if audience_kind(&resource) == Some(Audience::Graph) && !principal.graph_roles.is_empty() {
        claims["roles"] = json!(principal.graph_roles);
    }
    Ok(shared.access_tokens.sign(&claims))
}

/// Checks a scope is exactly one `{resource}/.default` and returns the resource.
fn resource_of_scope(scope: &str) -> Result<String, EntraError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let resources: Vec<&str> = scopes
        .iter()
        .filter(|scope| !matches!(**scope, "openid" | "profile" | "offline_access"))
        .copied()
        .collect();
    match resources.as_slice() {
        [single] if single.ends_with("/.default") => {
            Ok(single.trim_end_matches("/.default").to_string())
        }
        _ => Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value \
                    for the input parameter 'scope' is not valid. The scope {scope} is not valid. \
                    The client credentials flow needs exactly one scope of the form \
                    '{{resource}}/.default'."
            ),
        )),
    }
}

fn verify_client(
    shared: &Shared,
    world: &World,
    application: Option<&crate::state::Application>,
    client_id: &str,
    form: &TokenForm,
) -> Result<(), EntraError> {
    if let Some(secret) = form.client_secret.as_deref() {
        let valid = application.is_some_and(|app| app.secrets.iter().any(|s| s.expose() == secret));
        if valid {
            return Ok(());
        }
        return Err(EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                    the client secret value, not the client secret ID, for a secret added to app \
                    '{client_id}'."
            ),
        ));
    }
    let Some(assertion) = form.client_assertion.as_deref() else {
        return Err(EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
                'client_secret'."
                .into(),
        ));
    };
    if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700023,
            format!("Client assertion type must be '{JWT_BEARER}'."),
        ));
    }
    verify_assertion(shared, world, application, assertion)
}

fn verify_assertion(
    shared: &Shared,
    world: &World,
    application: Option<&crate::state::Application>,
    assertion: &str,
) -> Result<(), EntraError> {
    // FIXME(certificates): certificate assertions (RS256 with x5t) are not verified; seeds carry
    // no certificates, so such assertions fail here as bad signatures (AADSTS700027).
    let claims = shared.oidc_tokens.verify(assertion, unix_now()).map_err(|error| match error {
        JwtError::Expired | JwtError::NotYetValid => EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.".into(),
        ),
        JwtError::Malformed | JwtError::BadSignature => EntraError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.".into(),
        ),
    })?;
    let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(audience)) => vec![audience.as_str()],
        Some(Value::Array(audiences)) => audiences.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };

    let matched = application.is_some_and(|app| {
        world.credentials_of(app.object_id).iter().any(|credential| {
            world.replicated(ReplicatedKind::FederatedCredential, credential.created)
                && credential.issuer == issuer
                && credential.subject == subject
                && credential.audiences.iter().any(|aud| audiences.contains(&aud.as_str()))
        })
    });
    if matched {
        return Ok(());
    }
    Err(EntraError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        70021,
        format!(
            "No matching federated identity record found for presented assertion. Assertion \
                Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{}'.",
            audiences.join(",")
        ),
    ))
}

fn unknown_tenant(tenant: &str) -> EntraError {
    EntraError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and \
                are signing into the correct cloud. Check with your subscription administrator, \
                this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn app_not_found(client_id: &str, tenant_name: &str) -> EntraError {
    EntraError::new(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory \
                '{tenant_name}'. This can happen if the application has not been installed by the \
                administrator of the tenant or consented to by any user in the tenant. You may \
                have sent your authentication request to the wrong tenant."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_kind_cases() {
        let cases = [
            ("arm", "https://management.azure.com", Some(Audience::ResourceManager)),
            ("arm slash", "https://management.azure.com/", Some(Audience::ResourceManager)),
            (
                "arm classic",
                "https://management.core.windows.net/",
                Some(Audience::ResourceManager),
            ),
            ("graph", "https://graph.microsoft.com", Some(Audience::Graph)),
            ("vault", "https://vault.azure.net", Some(Audience::KeyVault)),
            ("exchange", "api://AzureADTokenExchange", Some(Audience::TokenExchange)),
            ("unknown", "https://storage.azure.com", None),
        ];
        for (name, audience, expected) in cases {
            assert_eq!(audience_kind(audience), expected, "{name}");
        }
    }

    #[test]
    fn scope_cases() {
        let cases = [
            ("default", "https://vault.azure.net/.default", Some("https://vault.azure.net")),
            (
                "double slash",
                "https://management.azure.com//.default",
                Some("https://management.azure.com/"),
            ),
            (
                "with openid",
                "openid https://graph.microsoft.com/.default",
                Some("https://graph.microsoft.com"),
            ),
            ("no default", "https://graph.microsoft.com/User.Read", None),
            ("two resources", "https://a/.default https://b/.default", None),
            ("empty", "", None),
        ];
        for (name, scope, expected) in cases {
            let actual = resource_of_scope(scope).ok();
            assert_eq!(actual.as_deref(), expected, "{name}");
        }
    }
}
