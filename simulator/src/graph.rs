//! Microsoft Graph v1.0: applications, their federated identity credentials, service principals
//! and `directoryObjects`, each visible only to tokens of its own tenant.
//!
//! Enforces Graph's validation (credential names, issuer and subject uniqueness, one audience,
//! twenty credentials per app, service principals only for applications the tenant may see)
//! with Graph's error shape and a `request-id` header. Never returns client secrets.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Shared;
use crate::entra::{Audience, AuthError, Caller, authenticate};
use crate::http::{
    ApiRequest, empty_response, field, field_str, format_rfc3339, json_response, request_id,
};
use crate::seed::APPLICATION_READ_WRITE_ALL;
use crate::state::{
    Application, FederatedCredential, PrincipalType, ReplicatedKind, ServicePrincipal, World,
};

const BASE: &str = "https://graph.microsoft.com/v1.0";
/// Most federated identity credentials one application may hold.
const MAX_CREDENTIALS: usize = 20;
/// Longest issuer, subject, audience or description Graph accepts.
const MAX_CLAIM_LENGTH: usize = 600;
/// Values `signInAudience` accepts.
const SIGN_IN_AUDIENCES: &[&str] = &[
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
];

/// A Graph error answer.
#[derive(Debug)]
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects \
                    are not present."
            ),
        )
    }
}

/// A successful answer before headers are added.
enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

type GraphResult = Result<Reply, GraphError>;

/// Serves one Graph request.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request = match ApiRequest::collect(request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let request_id = request_id();
    let client_request_id = request
        .headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());

    let result = authorize(&shared, &request).and_then(|caller| {
        let mut world = shared.world();
        route(&mut world, &caller, &request)
    });
    let headers =
        [("request-id", request_id.clone()), ("client-request-id", client_request_id.clone())];
    match result {
        Ok(Reply::Json(status, body)) => json_response(status, &body, &headers),
        Ok(Reply::NoContent) => empty_response(StatusCode::NO_CONTENT, &headers),
        Err(error) => {
            let body = json!({"error": {
                "code": error.code,
                "message": error.message,
                "innerError": {
                    "date": graph_date(OffsetDateTime::now_utc()),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }});
            json_response(error.status, &body, &headers)
        }
    }
}

/// Graph's `innerError.date` format: `2021-04-20T17:22:30`.
fn graph_date(moment: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    moment.format(&format).unwrap_or_default()
}

fn authorize(shared: &Shared, request: &ApiRequest) -> Result<Caller, GraphError> {
    let caller = authenticate(shared, request.bearer_token()).map_err(|error| {
        let message = match error {
            AuthError::Missing => "Access token is empty.".to_string(),
            other => format!("Access token validation failure: {other}."),
        };
        GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
    })?;
    if caller.audience != Some(Audience::Graph) {
        return Err(GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        ));
    }
    let may_read = caller.roles.iter().any(|role| {
        role == APPLICATION_READ_WRITE_ALL
            || role == "Application.Read.All"
            || role == "Directory.Read.All"
    });
    let may_write = caller.roles.iter().any(|role| role == APPLICATION_READ_WRITE_ALL);
    if !(may_write || (request.method == Method::GET && may_read)) {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    Ok(caller)
}

fn route(world: &mut World, caller: &Caller, request: &ApiRequest) -> GraphResult {
    let segments = request.segments();
    let Some((version, rest)) = segments.split_first() else {
        return Err(GraphError::bad_request("Invalid version."));
    };
    if !matches!(*version, "v1.0" | "beta") {
        return Err(GraphError::bad_request(format!("Invalid version: {version}")));
    }
    let tenant = caller.tenant_id;
    let method = &request.method;
    let (collection, key) = match rest.first() {
        Some(first) => split_alternate_key(first),
        None => return Err(GraphError::bad_request("Resource not found for the segment ''.")),
    };

    match (collection.to_ascii_lowercase().as_str(), key, &rest[1..]) {
        ("applications", None, []) if method == Method::GET => {
            list_applications(world, tenant, request)
        }
        ("applications", None, []) if method == Method::POST => {
            create_application(world, tenant, request)
        }
        ("applications", key, tail) => {
            let reference = ObjectRef::of(key, tail.first().copied())
                .ok_or_else(|| GraphError::bad_request("Unsupported request."))?;
            let tail = if key.is_some() { tail } else { &tail[1..] };
            let object_id = resolve_application(world, tenant, &reference)?;
            application_member(world, object_id, method, tail, request)
        }
        ("serviceprincipals", None, []) if method == Method::GET => {
            list_principals(world, tenant, request)
        }
        ("serviceprincipals", None, []) if method == Method::POST => {
            create_principal(world, tenant, request)
        }
        ("serviceprincipals", key, tail) => {
            let reference = ObjectRef::of(key, tail.first().copied())
                .ok_or_else(|| GraphError::bad_request("Unsupported request."))?;
            let tail = if key.is_some() { tail } else { &tail[1..] };
            let object_id = resolve_principal(world, tenant, &reference)?;
            principal_member(world, object_id, method, tail)
        }
        ("directoryobjects", None, [id]) if method == Method::GET => {
            directory_object(world, tenant, id)
        }
        _ => Err(GraphError::bad_request(format!(
            "Resource not found for the segment '{collection}'."
        ))),
    }
}

/// Splits `applications(appId='x')` into `("applications", Some(("appId", "x")))`.
fn split_alternate_key(segment: &str) -> (&str, Option<(&str, &str)>) {
    let Some((name, rest)) = segment.split_once('(') else { return (segment, None) };
    let inner = rest.trim_end_matches(')');
    let key =
        inner.split_once('=').map(|(key, value)| (key.trim(), value.trim().trim_matches('\'')));
    (name, key)
}

/// How a request names an object: by object id or by an alternate key.
enum ObjectRef<'a> {
    Id(&'a str),
    AppId(&'a str),
}

impl<'a> ObjectRef<'a> {
    fn of(key: Option<(&'a str, &'a str)>, id: Option<&'a str>) -> Option<Self> {
        match key {
            Some((name, value)) if name.eq_ignore_ascii_case("appId") => Some(Self::AppId(value)),
            Some(_) => None,
            None => id.map(Self::Id),
        }
    }

    fn text(&self) -> &'a str {
        match self {
            Self::Id(text) | Self::AppId(text) => text,
        }
    }
}

fn resolve_application(
    world: &World,
    tenant: Uuid,
    reference: &ObjectRef<'_>,
) -> Result<Uuid, GraphError> {
    let parsed = Uuid::parse_str(reference.text()).ok();
    world
        .applications
        .values()
        .filter(|app| app.tenant_id == tenant)
        .filter(|app| world.replicated(ReplicatedKind::Application, app.created))
        .find(|app| match reference {
            ObjectRef::Id(_) => Some(app.object_id) == parsed,
            ObjectRef::AppId(_) => Some(app.app_id) == parsed,
        })
        .map(|app| app.object_id)
        .ok_or_else(|| GraphError::not_found(reference.text()))
}

fn resolve_principal(
    world: &World,
    tenant: Uuid,
    reference: &ObjectRef<'_>,
) -> Result<Uuid, GraphError> {
    let parsed = Uuid::parse_str(reference.text()).ok();
    world
        .service_principals
        .values()
        .filter(|principal| principal.tenant_id == tenant)
        .filter(|principal| world.replicated(ReplicatedKind::ServicePrincipal, principal.created))
        .find(|principal| match reference {
            ObjectRef::Id(_) => Some(principal.object_id) == parsed,
            ObjectRef::AppId(_) => Some(principal.app_id) == parsed,
        })
        .map(|principal| principal.object_id)
        .ok_or_else(|| GraphError::not_found(reference.text()))
}

fn body_of(request: &ApiRequest) -> Result<Value, GraphError> {
    match request.json_body() {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(Value::Null) => Ok(json!({})),
        _ => Err(GraphError::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and \
                payload is of valid JSON format.",
        )),
    }
}

/// Parses `$filter=appId eq '…'` or `displayName eq '…'`.
fn equality_filter(request: &ApiRequest) -> Result<Option<(String, String)>, GraphError> {
    let Some(filter) = request.query_param("$filter") else { return Ok(None) };
    let mut parts = filter.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(property), Some(operator), Some(value)) if operator.eq_ignore_ascii_case("eq") => {
            Ok(Some((property.to_string(), value.trim().trim_matches('\'').to_string())))
        }
        _ => Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            format!("Unsupported or invalid query filter clause specified: '{filter}'."),
        )),
    }
}

fn collection(context: &str, values: Vec<Value>) -> Reply {
    Reply::Json(
        StatusCode::OK,
        json!({"@odata.context": format!("{BASE}/$metadata#{context}"), "value": values}),
    )
}

// ---- applications -------------------------------------------------------------------------

fn application_json(app: &Application) -> Value {
    json!({
        "@odata.context": format!("{BASE}/$metadata#applications/$entity"),
        "id": app.object_id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "description": app.description,
        "signInAudience": app.sign_in_audience,
        "identifierUris": app.identifier_uris,
        "tags": app.tags,
        "createdDateTime": format_rfc3339(app.created),
        "deletedDateTime": null,
        "publisherDomain": null,
        "passwordCredentials": [],
        "keyCredentials": [],
    })
}

fn list_applications(world: &World, tenant: Uuid, request: &ApiRequest) -> GraphResult {
    let filter = equality_filter(request)?;
    let values = world
        .applications
        .values()
        .filter(|app| app.tenant_id == tenant)
        .filter(|app| world.replicated(ReplicatedKind::Application, app.created))
        .filter(|app| matches_filter(&filter, app.app_id, &app.display_name))
        .map(application_json)
        .collect();
    Ok(collection("applications", values))
}

/// Whether an object with this client id and display name passes a `$filter` of `appId eq '…'`
/// or `displayName eq '…'` (the only ones Graph is asked for here); no filter passes everything.
fn matches_filter(filter: &Option<(String, String)>, app_id: Uuid, display_name: &str) -> bool {
    match filter {
        None => true,
        Some((property, value)) if property.eq_ignore_ascii_case("appId") => {
            app_id.to_string() == value.to_ascii_lowercase()
        }
        Some((property, value)) if property.eq_ignore_ascii_case("displayName") => {
            display_name == value
        }
        Some(_) => false,
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn checked_audience(body: &Value, current: &str) -> Result<String, GraphError> {
    match field(body, "signInAudience") {
        None | Some(Value::Null) => Ok(current.to_string()),
        Some(Value::String(audience)) if SIGN_IN_AUDIENCES.contains(&audience.as_str()) => {
            Ok(audience.clone())
        }
        Some(_) => Err(GraphError::bad_request(
            "Invalid value specified for property 'signInAudience' of resource 'Application'.",
        )),
    }
}

fn create_application(world: &mut World, tenant: Uuid, request: &ApiRequest) -> GraphResult {
    let body = body_of(request)?;
    let display_name = field_str(&body, "displayName")
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| {
            GraphError::bad_request(
                "Invalid value specified for property 'displayName' of resource 'Application'.",
            )
        })?;
    let application = Application {
        object_id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        tenant_id: tenant,
        display_name: display_name.to_string(),
        sign_in_audience: checked_audience(&body, "AzureADMyOrg")?,
        description: field_str(&body, "description").map(str::to_string),
        identifier_uris: string_list(field(&body, "identifierUris")),
        tags: string_list(field(&body, "tags")),
        secrets: Vec::new(),
        created: OffsetDateTime::now_utc(),
    };
    let reply = application_json(&application);
    world.applications.insert(application.object_id, application);
    Ok(Reply::Json(StatusCode::CREATED, reply))
}

fn application_member(
    world: &mut World,
    object_id: Uuid,
    method: &Method,
    tail: &[&str],
    request: &ApiRequest,
) -> GraphResult {
    match tail {
        [] if method == Method::GET => {
            Ok(Reply::Json(StatusCode::OK, application_json(&world.applications[&object_id])))
        }
        [] if method == Method::PATCH => update_application(world, object_id, request),
        [] if method == Method::DELETE => {
            world.applications.remove(&object_id);
            world
                .federated_credentials
                .retain(|_, credential| credential.application_object_id != object_id);
            Ok(Reply::NoContent)
        }
        [segment, rest @ ..] => {
            let (name, key) = split_alternate_key(segment);
            if !name.eq_ignore_ascii_case("federatedIdentityCredentials") {
                return Err(GraphError::bad_request(format!(
                    "Resource not found for the segment '{name}'."
                )));
            }
            credential_member(world, object_id, method, key, rest, request)
        }
        _ => Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )),
    }
}

fn update_application(world: &mut World, object_id: Uuid, request: &ApiRequest) -> GraphResult {
    let body = body_of(request)?;
    let current = world.applications[&object_id].sign_in_audience.clone();
    let audience = checked_audience(&body, &current)?;
    let app = world
        .applications
        .get_mut(&object_id)
        .ok_or_else(|| GraphError::not_found(&object_id.to_string()))?;
    app.sign_in_audience = audience;
    if let Some(name) = field_str(&body, "displayName") {
        app.display_name = name.to_string();
    }
    if let Some(description) = field(&body, "description") {
        app.description = description.as_str().map(str::to_string);
    }
    if field(&body, "identifierUris").is_some() {
        app.identifier_uris = string_list(field(&body, "identifierUris"));
    }
    if field(&body, "tags").is_some() {
        app.tags = string_list(field(&body, "tags"));
    }
    Ok(Reply::NoContent)
}

// ---- federated identity credentials --------------------------------------------------------

fn credential_json(credential: &FederatedCredential) -> Value {
    json!({
        "@odata.context": format!(
            "{BASE}/$metadata#applications('{}')/federatedIdentityCredentials/$entity",
            credential.application_object_id
        ),
        "id": credential.id,
        "name": credential.name,
        "issuer": credential.issuer,
        "subject": credential.subject,
        "description": credential.description,
        "audiences": credential.audiences,
    })
}

fn credential_member(
    world: &mut World,
    app_object_id: Uuid,
    method: &Method,
    key: Option<(&str, &str)>,
    rest: &[&str],
    request: &ApiRequest,
) -> GraphResult {
    let reference = match (key, rest) {
        (None, []) if method == Method::GET => {
            let values = world
                .credentials_of(app_object_id)
                .into_iter()
                .filter(|credential| {
                    world.replicated(ReplicatedKind::FederatedCredential, credential.created)
                })
                .map(credential_json)
                .collect();
            return Ok(collection(
                &format!("applications('{app_object_id}')/federatedIdentityCredentials"),
                values,
            ));
        }
        (None, []) if method == Method::POST => {
            return create_credential(world, app_object_id, request);
        }
        (Some((name, value)), []) if name.eq_ignore_ascii_case("name") => value.to_string(),
        (None, [id]) => id.to_string(),
        _ => return Err(GraphError::bad_request("Unsupported request.")),
    };
    let credential_id = world
        .credentials_of(app_object_id)
        .into_iter()
        .filter(|credential| {
            world.replicated(ReplicatedKind::FederatedCredential, credential.created)
        })
        .find(|credential| {
            credential.id.to_string() == reference.to_ascii_lowercase()
                || credential.name == reference
        })
        .map(|credential| credential.id)
        .ok_or_else(|| GraphError::not_found(&reference))?;

    match *method {
        Method::GET => Ok(Reply::Json(
            StatusCode::OK,
            credential_json(&world.federated_credentials[&credential_id]),
        )),
        Method::PATCH => update_credential(world, app_object_id, credential_id, request),
        Method::DELETE => {
            world.federated_credentials.remove(&credential_id);
            Ok(Reply::NoContent)
        }
        _ => Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )),
    }
}

/// Graph's rule: 3 to 120 characters of letters, digits, `-` and `_`, starting alphanumeric.
fn valid_credential_name(name: &str) -> bool {
    (3..=120).contains(&name.len())
        && name.chars().next().is_some_and(|first| first.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks issuer, subject, audiences and description; returns them.
fn credential_claims(
    body: &Value,
    current: Option<&FederatedCredential>,
) -> Result<(String, String, Vec<String>, Option<String>), GraphError> {
    let text = |name: &str, fallback: Option<&str>| -> Result<String, GraphError> {
        let value = field_str(body, name).or(fallback).unwrap_or_default();
        if value.trim().is_empty() {
            return Err(GraphError::bad_request(format!(
                "Property '{name}' is required and cannot be empty."
            )));
        }
        if value.len() > MAX_CLAIM_LENGTH {
            return Err(GraphError::bad_request(format!(
                "Property '{name}' exceeds the maximum length of {MAX_CLAIM_LENGTH}."
            )));
        }
        Ok(value.to_string())
    };
    let issuer = text("issuer", current.map(|c| c.issuer.as_str()))?;
    let subject = text("subject", current.map(|c| c.subject.as_str()))?;
    let audiences = match field(body, "audiences") {
        Some(value) => string_list(Some(value)),
        None => current.map(|c| c.audiences.clone()).unwrap_or_default(),
    };
    if audiences.len() != 1
        || audiences[0].trim().is_empty()
        || audiences[0].len() > MAX_CLAIM_LENGTH
    {
        return Err(GraphError::bad_request(
            "Invalid value specified for property 'audiences' of resource \
                'FederatedIdentityCredential'. The audiences collection must contain exactly one \
                value.",
        ));
    }
    let description = match field(body, "description") {
        Some(value) => value.as_str().map(str::to_string),
        None => current.and_then(|c| c.description.clone()),
    };
    if description.as_ref().is_some_and(|d| d.len() > MAX_CLAIM_LENGTH) {
        return Err(GraphError::bad_request(format!(
            "Property 'description' exceeds the maximum length of {MAX_CLAIM_LENGTH}."
        )));
    }
    Ok((issuer, subject, audiences, description))
}

fn check_unique_pair(
    world: &World,
    app_object_id: Uuid,
    issuer: &str,
    subject: &str,
    except: Option<Uuid>,
) -> Result<(), GraphError> {
    let clash = world.credentials_of(app_object_id).into_iter().any(|credential| {
        Some(credential.id) != except
            && credential.issuer == issuer
            && credential.subject == subject
    });
    if clash {
        return Err(GraphError::bad_request(format!(
            "FederatedIdentityCredential with issuer '{issuer}' and subject '{subject}' \
                combination already exists."
        )));
    }
    Ok(())
}

fn create_credential(world: &mut World, app_object_id: Uuid, request: &ApiRequest) -> GraphResult {
    let body = body_of(request)?;
    let name = field_str(&body, "name").unwrap_or_default().to_string();
    if !valid_credential_name(&name) {
        return Err(GraphError::bad_request(format!(
            "FederatedIdentityCredential name '{name}' is invalid. The name must be 3 to 120 \
                characters long, contain only alphanumeric characters, '-' and '_', and start with \
                an alphanumeric character."
        )));
    }
    let (issuer, subject, audiences, description) = credential_claims(&body, None)?;
    let existing = world.credentials_of(app_object_id);
    if existing.iter().any(|credential| credential.name.eq_ignore_ascii_case(&name)) {
        return Err(GraphError::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            format!("FederatedIdentityCredential with name {name} already exists."),
        ));
    }
    if existing.len() >= MAX_CREDENTIALS {
        return Err(GraphError::bad_request(format!(
            "The application already has the maximum of {MAX_CREDENTIALS} federated identity \
                credentials."
        )));
    }
    check_unique_pair(world, app_object_id, &issuer, &subject, None)?;

    let tenant_id = world.applications[&app_object_id].tenant_id;
    let credential = FederatedCredential {
        id: Uuid::new_v4(),
        application_object_id: app_object_id,
        tenant_id,
        name,
        issuer,
        subject,
        audiences,
        description,
        created: OffsetDateTime::now_utc(),
    };
    let reply = credential_json(&credential);
    world.federated_credentials.insert(credential.id, credential);
    Ok(Reply::Json(StatusCode::CREATED, reply))
}

fn update_credential(
    world: &mut World,
    app_object_id: Uuid,
    credential_id: Uuid,
    request: &ApiRequest,
) -> GraphResult {
    let body = body_of(request)?;
    let current = world.federated_credentials[&credential_id].clone();
    if field_str(&body, "name").is_some_and(|name| name != current.name) {
        return Err(GraphError::bad_request("Property 'name' is read-only and cannot be changed."));
    }
    let (issuer, subject, audiences, description) = credential_claims(&body, Some(&current))?;
    check_unique_pair(world, app_object_id, &issuer, &subject, Some(credential_id))?;
    let credential = world
        .federated_credentials
        .get_mut(&credential_id)
        .ok_or_else(|| GraphError::not_found(&credential_id.to_string()))?;
    credential.issuer = issuer;
    credential.subject = subject;
    credential.audiences = audiences;
    credential.description = description;
    // A changed credential propagates like a new one.
    credential.created = OffsetDateTime::now_utc();
    Ok(Reply::NoContent)
}

// ---- service principals ----------------------------------------------------------------------

fn principal_json(principal: &ServicePrincipal) -> Value {
    let (kind, alternative_names) = match principal.principal_type {
        PrincipalType::Application => ("Application", json!([])),
        PrincipalType::ManagedIdentity => (
            "ManagedIdentity",
            json!(["isExplicit=True", principal.managed_identity_id.clone().unwrap_or_default()]),
        ),
    };
    json!({
        "@odata.context": format!("{BASE}/$metadata#servicePrincipals/$entity"),
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": principal.object_id,
        "appId": principal.app_id,
        "displayName": principal.display_name,
        "appDisplayName": principal.display_name,
        "appOwnerOrganizationId": principal.app_owner_tenant_id,
        "servicePrincipalType": kind,
        "servicePrincipalNames": [principal.app_id.to_string()],
        "alternativeNames": alternative_names,
        "accountEnabled": true,
        "tags": [],
    })
}

fn list_principals(world: &World, tenant: Uuid, request: &ApiRequest) -> GraphResult {
    let filter = equality_filter(request)?;
    let values = world
        .service_principals
        .values()
        .filter(|principal| principal.tenant_id == tenant)
        .filter(|principal| world.replicated(ReplicatedKind::ServicePrincipal, principal.created))
        .filter(|principal| matches_filter(&filter, principal.app_id, &principal.display_name))
        .map(principal_json)
        .collect();
    Ok(collection("servicePrincipals", values))
}

fn create_principal(world: &mut World, tenant: Uuid, request: &ApiRequest) -> GraphResult {
    let body = body_of(request)?;
    let app_id_text = field_str(&body, "appId").unwrap_or_default().to_string();
    let invalid_app = || {
        GraphError::bad_request(format!(
            "The appId '{app_id_text}' of the service principal does not reference a valid \
                application object."
        ))
    };
    let app_id = Uuid::parse_str(&app_id_text).map_err(|_| invalid_app())?;
    // The application is usable here if it lives in this tenant, or is multi-tenant elsewhere;
    // either way it must have replicated.
    let application = world
        .applications
        .values()
        .filter(|app| app.app_id == app_id)
        .filter(|app| world.replicated(ReplicatedKind::Application, app.created))
        .find(|app| app.tenant_id == tenant || app.is_multi_tenant())
        .cloned()
        .ok_or_else(invalid_app)?;
    if world.principal_by_app_id(tenant, app_id).is_some() {
        return Err(GraphError::new(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "Another object with the same value for property servicePrincipalNames already exists.",
        ));
    }

    let principal = ServicePrincipal {
        object_id: Uuid::new_v4(),
        app_id,
        tenant_id: tenant,
        display_name: application.display_name.clone(),
        app_owner_tenant_id: Some(application.tenant_id),
        principal_type: PrincipalType::Application,
        managed_identity_id: None,
        graph_roles: Vec::new(),
        created: OffsetDateTime::now_utc(),
    };
    let reply = principal_json(&principal);
    world.service_principals.insert(principal.object_id, principal);
    Ok(Reply::Json(StatusCode::CREATED, reply))
}

fn principal_member(
    world: &mut World,
    object_id: Uuid,
    method: &Method,
    tail: &[&str],
) -> GraphResult {
    match (method, tail) {
        (&Method::GET, []) => {
            Ok(Reply::Json(StatusCode::OK, principal_json(&world.service_principals[&object_id])))
        }
        (&Method::PATCH, []) => Ok(Reply::NoContent),
        (&Method::DELETE, []) => {
            if world.service_principals[&object_id].principal_type == PrincipalType::ManagedIdentity
            {
                return Err(GraphError::bad_request(
                    "A managed identity's service principal is deleted with its Azure resource.",
                ));
            }
            world.service_principals.remove(&object_id);
            Ok(Reply::NoContent)
        }
        _ => Err(GraphError::bad_request("Unsupported request.")),
    }
}

// ---- directory objects -----------------------------------------------------------------------

fn directory_object(world: &World, tenant: Uuid, id: &str) -> GraphResult {
    let parsed = Uuid::parse_str(id).map_err(|_| GraphError::not_found(id))?;
    if let Some(app) = world.applications.get(&parsed).filter(|app| {
        app.tenant_id == tenant && world.replicated(ReplicatedKind::Application, app.created)
    }) {
        let mut body = application_json(app);
        body["@odata.type"] = json!("#microsoft.graph.application");
        body["@odata.context"] = json!(format!("{BASE}/$metadata#directoryObjects/$entity"));
        return Ok(Reply::Json(StatusCode::OK, body));
    }
    if let Some(principal) = world.service_principals.get(&parsed).filter(|principal| {
        principal.tenant_id == tenant
            && world.replicated(ReplicatedKind::ServicePrincipal, principal.created)
    }) {
        let mut body = principal_json(principal);
        body["@odata.context"] = json!(format!("{BASE}/$metadata#directoryObjects/$entity"));
        return Ok(Reply::Json(StatusCode::OK, body));
    }
    Err(GraphError::not_found(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_name_cases() {
        let cases = [
            ("simple", "msi-webapp1", true),
            ("underscore", "a_b", true),
            ("too short", "ab", false),
            ("starts with dash", "-abc", false),
            ("space", "a bc", false),
            ("dot", "a.bc", false),
            ("max length", &"a".repeat(120), true),
            ("too long", &"a".repeat(121), false),
        ];
        for (name, input, expected) in cases {
            assert_eq!(valid_credential_name(input), expected, "{name}");
        }
    }

    #[test]
    fn alternate_key_cases() {
        let cases = [
            ("plain", "applications", ("applications", None)),
            ("app id", "applications(appId='abc')", ("applications", Some(("appId", "abc")))),
            (
                "name",
                "federatedIdentityCredentials(name='x-1')",
                ("federatedIdentityCredentials", Some(("name", "x-1"))),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(split_alternate_key(input), expected, "{name}");
        }
    }
}
