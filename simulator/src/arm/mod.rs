//! Azure Resource Manager: authentication, tenant and subscription checks, api-versions, RBAC
//! for control-plane actions, resource groups, and dispatch to one module per provider.
//!
//! Every answer carries `x-ms-request-id`; every error uses ARM's envelope. Provider modules
//! receive an [`ArmContext`] and the locked world and never re-check authentication.

mod authorization;
mod key_vault;
mod lro;
mod managed_identity;
mod sql;
mod tde_chain;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Shared;
use crate::entra::{Audience, AuthError, Caller, authenticate};
use crate::http::{ApiRequest, empty_response, json_response, request_id};
use crate::state::World;

/// Owner: every control-plane action.
const OWNER: &str = "8e3af657-a8ff-443b-a75c-2fe8c4bcb635";
/// Contributor: every action except granting access.
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
/// Reader: reads only.
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
/// User Access Administrator: reads and role assignments.
const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20ad72a";

/// An ARM error: status, code and message in ARM's envelope.
#[derive(Debug, Clone)]
pub struct ArmError {
    /// HTTP status.
    pub status: StatusCode,
    /// Azure error code.
    pub code: String,
    /// Azure error message.
    pub message: String,
}

impl ArmError {
    /// An error with the given status.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_string(), message: message.into() }
    }

    /// A 400 error.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// ARM's 404 for a missing resource.
    pub fn resource_not_found(resource_type: &str, name: &str, group: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{resource_type}/{name}' under resource group '{group}' was not \
                    found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

/// A successful ARM answer.
pub enum ArmReply {
    /// JSON body with extra headers.
    Json(StatusCode, Value, Vec<(&'static str, String)>),
    /// No body.
    Empty(StatusCode),
}

impl ArmReply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Self {
        Self::Json(StatusCode::OK, body, Vec::new())
    }
}

/// Result of an ARM handler.
pub type ArmResult = Result<ArmReply, ArmError>;

/// What every provider module needs to know about the request.
pub struct ArmContext<'a> {
    /// The request.
    pub request: &'a ApiRequest,
    /// Subscription in the path.
    pub subscription: Uuid,
    /// Tenant owning the subscription.
    pub tenant: Uuid,
    /// api-version sent.
    pub api_version: String,
}

impl ArmContext<'_> {
    /// The JSON body; an empty body is an empty object.
    pub fn body(&self) -> Result<Value, ArmError> {
        match self.request.json_body() {
            Ok(Value::Null) => Ok(json!({})),
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized.",
            )),
        }
    }

    /// `https://{host}` for building operation URLs.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.request.host)
    }
}

/// Serves one ARM request.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request = match ApiRequest::collect(request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let request_id = request_id();
    let result = match authenticate_arm(&shared, &request) {
        Ok(caller) => {
            let mut world = shared.world();
            route(&mut world, &caller, &request)
        }
        Err(error) => Err(error),
    };
    let mut headers =
        vec![("x-ms-request-id", request_id.clone()), ("x-ms-correlation-request-id", request_id)];
    match result {
        Ok(ArmReply::Json(status, body, extra)) => {
            headers.extend(extra);
            json_response(status, &body, &headers)
        }
        Ok(ArmReply::Empty(status)) => empty_response(status, &headers),
        Err(error) => {
            if error.status == StatusCode::UNAUTHORIZED {
                headers.push((
                    "www-authenticate",
                    format!(
                        "Bearer authorization_uri=\"https://login.windows.net/\", \
                            error=\"invalid_token\", error_description=\"{}\"",
                        error.message.replace('"', "'")
                    ),
                ));
            }
            json_response(error.status, &error.body(), &headers)
        }
    }
}

fn authenticate_arm(shared: &Shared, request: &ApiRequest) -> Result<Caller, ArmError> {
    let caller = authenticate(shared, request.bearer_token()).map_err(|error| {
        let message = match error {
            AuthError::Missing => {
                "Authentication failed. The 'Authorization' header is missing.".to_string()
            }
            other => format!("Authentication failed: {other}."),
        };
        ArmError::new(StatusCode::UNAUTHORIZED, "AuthenticationFailed", message)
    })?;
    if caller.audience != Some(Audience::ResourceManager) {
        return Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource. It should exactly \
                match with one of the allowed audiences \
                'https://management.core.windows.net/','https://management.core.windows.net',\
                'https://management.azure.com/','https://management.azure.com'.",
        ));
    }
    Ok(caller)
}

/// The api-version each provider namespace serves.
fn supported_api_version(namespace: &str) -> Option<&'static str> {
    match namespace.to_ascii_lowercase().as_str() {
        "microsoft.sql" => Some("2025-01-01"),
        "microsoft.managedidentity" => Some("2024-11-30"),
        "microsoft.keyvault" => Some("2025-05-01"),
        "microsoft.authorization" => Some("2022-04-01"),
        "microsoft.resources" => Some("2021-04-01"),
        _ => None,
    }
}

fn route(world: &mut World, caller: &Caller, request: &ApiRequest) -> ArmResult {
    let segments = request.segments();
    let subscription = match segments.as_slice() {
        [first, id, ..] if first.eq_ignore_ascii_case("subscriptions") => Uuid::parse_str(id)
            .map_err(|_| {
                ArmError::bad_request(
                    "InvalidSubscriptionId",
                    format!("The provided subscription identifier '{id}' is malformed or invalid."),
                )
            })?,
        _ => {
            return Err(ArmError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!(
                    "No HTTP resource was found that matches the request URI 'https://{}{}'.",
                    request.host, request.path
                ),
            ));
        }
    };
    let tenant = world.subscription_tenant(subscription).ok_or_else(|| {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{subscription}' could not be found."),
        )
    })?;
    if caller.tenant_id != tenant {
        return Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer 'https://sts.windows.net/{}/'. It must \
                    match the tenant 'https://sts.windows.net/{tenant}/' associated with this \
                    subscription. Please use the authority (URL) \
                    'https://login.windows.net/{tenant}' to get the token. Note, if the \
                    subscription is transferred to another tenant there is no impact to the \
                    services, but information about new tenant could take time to propagate (up to \
                    an hour). If you just transferred your subscription and see this error \
                    message, please try back later.",
                caller.tenant_id
            ),
        ));
    }

    let target = Target::parse(&segments)?;
    let api_version = check_api_version(request, target.namespace())?;
    authorize(world, caller, request, &target)?;
    let context = ArmContext { request, subscription, tenant, api_version };

    if let Some(group) = target.resource_group()
        && world.resource_group(subscription, group).is_none()
        && !(request.method == Method::PUT && target.is_group_itself())
    {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{group}' could not be found."),
        ));
    }
    match target {
        Target::RoleAssignments { scope, name } => {
            authorization::handle(world, &context, &scope, name.as_deref())
        }
        Target::ResourceGroup { name } => resource_group(world, &context, &name),
        Target::Provider { group, namespace, rest } => {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            match namespace.to_ascii_lowercase().as_str() {
                "microsoft.sql" => sql::handle(world, &context, &group, &rest),
                "microsoft.managedidentity" => {
                    managed_identity::handle(world, &context, &group, &rest)
                }
                "microsoft.keyvault" => key_vault::handle(world, &context, &group, &rest),
                _ => Err(unknown_namespace(&namespace)),
            }
        }
        Target::SubscriptionList { namespace, rest } => {
            let kind = rest.first().map(String::as_str).unwrap_or_default();
            match namespace.to_ascii_lowercase().as_str() {
                "microsoft.keyvault" => key_vault::list_in_subscription(world, &context, kind),
                _ => Err(unknown_namespace(&namespace)),
            }
        }
    }
}

fn unknown_namespace(namespace: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "InvalidResourceNamespace",
        format!("The resource namespace '{namespace}' is invalid."),
    )
}

/// What an ARM path addresses.
enum Target {
    /// `{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`.
    RoleAssignments { scope: String, name: Option<String> },
    /// `/subscriptions/{s}/resourceGroups/{name}`.
    ResourceGroup { name: String },
    /// `/subscriptions/{s}/resourceGroups/{group}/providers/{namespace}/{rest…}`.
    Provider { group: String, namespace: String, rest: Vec<String> },
    /// `/subscriptions/{s}/providers/{namespace}/{type}`: a subscription-wide list.
    SubscriptionList { namespace: String, rest: Vec<String> },
}

impl Target {
    fn parse(segments: &[&str]) -> Result<Self, ArmError> {
        let is = |index: usize, expected: &str| {
            segments.get(index).is_some_and(|segment| segment.eq_ignore_ascii_case(expected))
        };
        if let Some(index) = (0..segments.len()).find(|&i| {
            is(i, "providers")
                && is(i + 1, "Microsoft.Authorization")
                && is(i + 2, "roleAssignments")
        }) {
            if segments.len() > index + 4 {
                return Err(not_found_path(segments));
            }
            return Ok(Self::RoleAssignments {
                scope: format!("/{}", segments[..index].join("/")),
                name: segments.get(index + 3).map(|name| name.to_string()),
            });
        }
        match segments {
            [_, _, groups, name] if groups.eq_ignore_ascii_case("resourceGroups") => {
                Ok(Self::ResourceGroup { name: name.to_string() })
            }
            [_, _, groups, group, providers, namespace, rest @ ..]
                if groups.eq_ignore_ascii_case("resourceGroups")
                    && providers.eq_ignore_ascii_case("providers")
                    && !rest.is_empty() =>
            {
                Ok(Self::Provider {
                    group: group.to_string(),
                    namespace: namespace.to_string(),
                    rest: rest.iter().map(|segment| segment.to_string()).collect(),
                })
            }
            [_, _, providers, namespace, rest @ ..]
                if providers.eq_ignore_ascii_case("providers") && rest.len() == 1 =>
            {
                Ok(Self::SubscriptionList {
                    namespace: namespace.to_string(),
                    rest: rest.iter().map(|segment| segment.to_string()).collect(),
                })
            }
            _ => Err(not_found_path(segments)),
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Self::RoleAssignments { .. } => "Microsoft.Authorization",
            Self::ResourceGroup { .. } => "Microsoft.Resources",
            Self::Provider { namespace, .. } | Self::SubscriptionList { namespace, .. } => {
                namespace
            }
        }
    }

    fn resource_group(&self) -> Option<&str> {
        match self {
            Self::RoleAssignments { scope, .. } => {
                let parts: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
                match parts.as_slice() {
                    [_, _, groups, group, ..] if groups.eq_ignore_ascii_case("resourceGroups") => {
                        Some(group)
                    }
                    _ => None,
                }
            }
            Self::ResourceGroup { name } => Some(name),
            Self::Provider { group, .. } => Some(group),
            Self::SubscriptionList { .. } => None,
        }
    }

    fn is_group_itself(&self) -> bool {
        matches!(self, Self::ResourceGroup { .. })
    }

    /// The ARM action checked by RBAC, e.g. `Microsoft.Sql/servers/write`.
    fn action(&self, method: &Method) -> String {
        let verb = match *method {
            Method::GET | Method::HEAD => "read",
            Method::DELETE => "delete",
            Method::POST => "action",
            _ => "write",
        };
        match self {
            Self::RoleAssignments { .. } => {
                format!("Microsoft.Authorization/roleAssignments/{verb}")
            }
            Self::ResourceGroup { .. } => {
                format!("Microsoft.Resources/subscriptions/resourceGroups/{verb}")
            }
            Self::Provider { namespace, rest, .. } | Self::SubscriptionList { namespace, rest } => {
                let types: Vec<&str> = rest.iter().step_by(2).map(String::as_str).collect();
                format!("{namespace}/{}/{verb}", types.join("/"))
            }
        }
    }
}

fn not_found_path(segments: &[&str]) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "No HTTP resource was found that matches the request URI '/{}'.",
            segments.join("/")
        ),
    )
}

fn check_api_version(request: &ApiRequest, namespace: &str) -> Result<String, ArmError> {
    let Some(version) = request.query_param("api-version") else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let supported = supported_api_version(namespace).ok_or_else(|| unknown_namespace(namespace))?;
    if version != supported {
        return Err(ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{version}' is invalid. The supported versions are '{supported}'."
            ),
        ));
    }
    Ok(version.to_string())
}

/// Control-plane RBAC: the caller needs a role at or above the request's scope.
fn authorize(
    world: &World,
    caller: &Caller,
    request: &ApiRequest,
    target: &Target,
) -> Result<(), ArmError> {
    let scope = format!("/{}", request.segments().join("/"));
    let roles: Vec<String> = world
        .roles_covering(caller.object_id, &scope)
        .into_iter()
        .map(|assignment| assignment.role_guid())
        .collect();
    let has = |role: &str| roles.iter().any(|held| held == role);
    let reading = matches!(request.method, Method::GET | Method::HEAD);
    let granting = matches!(target, Target::RoleAssignments { .. });
    let allowed = has(OWNER)
        || (reading && (has(CONTRIBUTOR) || has(READER) || has(USER_ACCESS_ADMINISTRATOR)))
        || (!reading && !granting && has(CONTRIBUTOR))
        || (granting && has(USER_ACCESS_ADMINISTRATOR));
    if allowed {
        return Ok(());
    }
    Err(ArmError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{object}' with object id '{object}' does not have authorization to \
                perform action '{}' over scope '{scope}' or the scope is invalid. If access was \
                recently granted, please refresh your credentials.",
            target.action(&request.method),
            object = caller.object_id,
        ),
    ))
}

fn resource_group(world: &mut World, context: &ArmContext<'_>, name: &str) -> ArmResult {
    let render = |group: &crate::state::ResourceGroup| {
        json!({
            "id": format!("/subscriptions/{}/resourceGroups/{}", group.subscription_id, group.name),
            "name": group.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": group.location,
            "properties": {"provisioningState": "Succeeded"},
        })
    };
    match context.request.method {
        Method::GET => {
            let group = world.resource_group(context.subscription, name).ok_or_else(|| {
                ArmError::new(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    format!("Resource group '{name}' could not be found."),
                )
            })?;
            Ok(ArmReply::ok(render(group)))
        }
        Method::PUT => {
            let body = context.body()?;
            let location = crate::http::field_str(&body, "location").ok_or_else(|| {
                ArmError::bad_request(
                    "LocationRequired",
                    "The location property is required for this definition.",
                )
            })?;
            let key = crate::state::resource_group_key(context.subscription, name);
            let created = !world.resource_groups.contains_key(&key);
            let group =
                world.resource_groups.entry(key).or_insert_with(|| crate::state::ResourceGroup {
                    subscription_id: context.subscription,
                    name: name.to_string(),
                    location: location.to_string(),
                });
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(ArmReply::Json(status, render(group), Vec::new()))
        }
        _ => Err(method_not_allowed()),
    }
}

/// ARM's answer for a method a resource type does not support.
pub fn method_not_allowed() -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The requested resource does not support http method.",
    )
}

/// The ARM id prefix of a resource group, with the group's stored spelling.
pub fn group_id(world: &World, subscription: Uuid, group: &str) -> String {
    let name = world
        .resource_group(subscription, group)
        .map(|g| g.name.clone())
        .unwrap_or_else(|| group.to_string());
    format!("/subscriptions/{subscription}/resourceGroups/{name}")
}
