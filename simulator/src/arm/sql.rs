//! Microsoft.Sql (2025-01-01): servers, server keys, the encryption protector, and their
//! long-running operations.
//!
//! Server PUT/PATCH validate identities synchronously (400s, as Azure does) and run the
//! cross-tenant key chain inside the operation whenever a Key Vault key is registered, made the
//! protector, or an identity change touches an active customer-managed key; a broken link shows
//! as a `Failed` operation and leaves the server unchanged. Reading the protector re-checks its
//! key and records in admin state whether the key is still reachable.

use std::collections::BTreeMap;

use aws_lc_rs::digest;
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::lro::{self, Family};
use super::tde_chain::{self, ChainFailure, ServerConfiguration};
use super::{ArmContext, ArmError, ArmReply, ArmResult, group_id, method_not_allowed};
use crate::http::{field, field_bool, field_str, format_rfc3339};
use crate::state::{OperationOutcome, ServerIdentity, ServerKey, SqlServer, World};
use crate::vault::KeyIdentifier;

const SERVER_TYPE: &str = "Microsoft.Sql/servers";
/// The built-in service-managed key's name.
const SERVICE_MANAGED: &str = "ServiceManaged";

/// Routes `…/providers/Microsoft.Sql/{rest}`.
pub fn handle(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    rest: &[&str],
) -> ArmResult {
    let method = context.request.method.clone();
    let lower: Vec<String> = rest.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (method, lower.as_slice()) {
        (Method::GET, ["locations", _, segment, id]) => match lro::classify_segment(segment) {
            Some(true) => lro::status(world, id),
            Some(false) => lro::result(world, context, id),
            None => Err(unknown_type(segment)),
        },
        (method, ["servers", _]) => {
            let name = rest[1];
            match method {
                Method::GET => with_server(world, context, group, name)
                    .map(|key| ArmReply::ok(server_json(world, &world.servers[&key]))),
                Method::PUT => put_server(world, context, group, name),
                Method::PATCH => patch_server(world, context, group, name),
                Method::DELETE => delete_server(world, context, group, name),
                _ => Err(method_not_allowed()),
            }
        }
        (method, ["servers", _, "keys", tail @ ..]) => {
            let key = with_server(world, context, group, rest[1])?;
            match (method, tail) {
                (Method::GET, []) => Ok(list_keys(&world.servers[&key])),
                (Method::GET, [_]) => get_key(&world.servers[&key], rest[3]),
                (Method::PUT, [_]) => put_key(world, context, group, &key, rest[3]),
                (Method::DELETE, [_]) => delete_key(world, context, group, &key, rest[3]),
                _ => Err(method_not_allowed()),
            }
        }
        (method, ["servers", _, "encryptionprotector", tail @ ..]) => {
            let key = with_server(world, context, group, rest[1])?;
            match (method, tail) {
                (Method::GET, []) => {
                    revalidate(world, &key);
                    Ok(ArmReply::ok(json!({"value": [protector_json(&world.servers[&key])]})))
                }
                (Method::GET, ["current"]) => {
                    revalidate(world, &key);
                    Ok(ArmReply::ok(protector_json(&world.servers[&key])))
                }
                (Method::PUT, ["current"]) => put_protector(world, context, group, &key),
                (Method::POST, ["current", "revalidate"]) => {
                    revalidate_operation(world, context, group, &key)
                }
                (_, [name, ..]) if *name != "current" => Err(ArmError::bad_request(
                    "InvalidParameterValue",
                    format!(
                        "Invalid encryption protector name '{}'; the only supported name is \
                            'current'.",
                        rest[3]
                    ),
                )),
                _ => Err(method_not_allowed()),
            }
        }
        (_, [kind, ..]) => Err(unknown_type(kind)),
        _ => Err(unknown_type("")),
    }
}

fn unknown_type(kind: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The resource type '{kind}' could not be found in the namespace 'Microsoft.Sql' for \
                api version '2025-01-01'."
        ),
    )
}

fn server_id(world: &World, context: &ArmContext<'_>, group: &str, name: &str) -> String {
    format!("{}/providers/{SERVER_TYPE}/{name}", group_id(world, context.subscription, group))
}

/// The lookup key of an existing server, or ARM's 404.
fn with_server(
    world: &World,
    context: &ArmContext<'_>,
    group: &str,
    name: &str,
) -> Result<String, ArmError> {
    let key = server_id(world, context, group, name).to_ascii_lowercase();
    if world.servers.contains_key(&key) {
        Ok(key)
    } else {
        Err(ArmError::resource_not_found(SERVER_TYPE, name, group))
    }
}

// ---- JSON shapes ------------------------------------------------------------------------------

fn identity_json(world: &World, server: &SqlServer) -> Value {
    let mut identity = json!({"type": server.identity.type_name()});
    if let Some(principal) = server.identity.system_principal_id {
        identity["principalId"] = json!(principal);
    }
    let tenant = server
        .id
        .split('/')
        .nth(2)
        .and_then(|s| Uuid::parse_str(s).ok())
        .and_then(|s| world.subscription_tenant(s));
    if let Some(tenant) = tenant {
        identity["tenantId"] = json!(tenant);
    }
    if !server.identity.user_assigned.is_empty() {
        let entries: Map<String, Value> = server
            .identity
            .user_assigned
            .iter()
            .map(|id| {
                let found = world.identity(id);
                let entry = json!({
                    "principalId": found.map(|identity| identity.principal_id),
                    "clientId": found.map(|identity| identity.client_id),
                });
                (id.clone(), entry)
            })
            .collect();
        identity["userAssignedIdentities"] = Value::Object(entries);
    }
    identity
}

/// The server's JSON, following the spec's ServerGet example plus the CMK properties.
fn server_json(world: &World, server: &SqlServer) -> Value {
    let mut properties = json!({
        "administratorLogin": server.administrator_login,
        "version": "12.0",
        "state": "Ready",
        "fullyQualifiedDomainName": format!("{}.database.windows.net", server.name),
        "privateEndpointConnections": [],
        "minimalTlsVersion": server.minimal_tls_version,
        "publicNetworkAccess": server.public_network_access,
        "restrictOutboundNetworkAccess": "Disabled",
        "isIPv6Enabled": "Disabled",
    });
    if let Some(primary) = &server.primary_user_assigned_identity_id {
        properties["primaryUserAssignedIdentityId"] = json!(primary);
    }
    if let Some(client) = server.federated_client_id {
        properties["federatedClientId"] = json!(client);
    }
    if let Some(key) = server.protector_key() {
        properties["keyId"] = json!(key.uri);
    }
    json!({
        "id": server.id,
        "name": server.name,
        "type": SERVER_TYPE,
        "location": server.location,
        "kind": "v12.0",
        "tags": server.tags,
        "identity": identity_json(world, server),
        "properties": properties,
    })
}

fn key_json(server: &SqlServer, key: &ServerKey) -> Value {
    json!({
        "id": format!("{}/keys/{}", server.id, key.name),
        "name": key.name,
        "type": "Microsoft.Sql/servers/keys",
        "location": server.location,
        "kind": "azurekeyvault",
        "properties": {
            "serverKeyType": "AzureKeyVault",
            "uri": key.uri,
            "thumbprint": key.thumbprint,
            "creationDate": format_rfc3339(key.creation_date),
            "autoRotationEnabled": false,
            "subregion": server.location,
        },
    })
}

fn service_managed_key_json(server: &SqlServer) -> Value {
    json!({
        "id": format!("{}/keys/{SERVICE_MANAGED}", server.id),
        "name": SERVICE_MANAGED,
        "type": "Microsoft.Sql/servers/keys",
        "location": server.location,
        "kind": "servicemanaged",
        "properties": {"serverKeyType": SERVICE_MANAGED, "subregion": server.location},
    })
}

fn protector_json(server: &SqlServer) -> Value {
    let mut body = json!({
        "id": format!("{}/encryptionProtector/current", server.id),
        "name": "current",
        "type": "Microsoft.Sql/servers/encryptionProtector",
        "location": server.location,
    });
    match server.protector_key() {
        Some(key) => {
            body["kind"] = json!("azurekeyvault");
            body["properties"] = json!({
                "serverKeyName": key.name,
                "serverKeyType": "AzureKeyVault",
                "uri": key.uri,
                "thumbprint": key.thumbprint,
                "autoRotationEnabled": server.protector_auto_rotation,
                "subregion": server.location,
            });
        }
        None => {
            body["kind"] = json!("servicemanaged");
            body["properties"] = json!({
                "serverKeyName": SERVICE_MANAGED,
                "serverKeyType": SERVICE_MANAGED,
                "autoRotationEnabled": false,
                "subregion": server.location,
            });
        }
    }
    body
}

// ---- servers ---------------------------------------------------------------------------------

/// A property change in a request: absent, explicitly cleared, or set.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change<T> {
    Absent,
    Clear,
    Set(T),
}

fn string_change(properties: &Value, name: &str) -> Change<String> {
    match field(properties, name) {
        None => Change::Absent,
        Some(Value::Null) => Change::Clear,
        Some(Value::String(text)) if text.is_empty() => Change::Clear,
        Some(Value::String(text)) => Change::Set(text.clone()),
        Some(other) => Change::Set(other.to_string()),
    }
}

/// The requested `identity`: its type flags and its user-assigned entries (null = remove).
struct IdentityRequest {
    system: bool,
    user: bool,
    entries: Vec<(String, bool)>,
}

fn invalid(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("InvalidParameterValue", message)
}

/// Parses `identity`; `type` accepts `SystemAssigned,UserAssigned` in either order and any case.
fn parse_identity(value: &Value) -> Result<IdentityRequest, ArmError> {
    let kind = field_str(value, "type").unwrap_or("None");
    let (mut system, mut user, mut none) = (false, false, false);
    for part in kind.split(',').map(str::trim) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" => system = true,
            "userassigned" => user = true,
            "none" => none = true,
            _ => {
                return Err(invalid(format!(
                    "Invalid value given for parameter identity.type: '{kind}'. Specify None, \
                        SystemAssigned, UserAssigned or 'SystemAssigned,UserAssigned'."
                )));
            }
        }
    }
    if none && (system || user) {
        return Err(invalid(format!("Invalid value given for parameter identity.type: '{kind}'.")));
    }
    let entries = match field(value, "userAssignedIdentities") {
        Some(Value::Object(map)) => {
            map.iter().map(|(id, entry)| (id.clone(), !entry.is_null())).collect()
        }
        _ => Vec::new(),
    };
    Ok(IdentityRequest { system, user, entries })
}

/// The server identity after applying a request (PATCH merges entries, PUT replaces them).
fn next_identity(
    world: &World,
    current: &ServerIdentity,
    request: &IdentityRequest,
    merge: bool,
) -> Result<ServerIdentity, ArmError> {
    let mut user_assigned: Vec<String> =
        if merge && request.user { current.user_assigned.clone() } else { Vec::new() };
    if request.user {
        for (id, keep) in &request.entries {
            user_assigned.retain(|attached| !attached.eq_ignore_ascii_case(id));
            if *keep {
                user_assigned.push(id.clone());
            }
        }
        if user_assigned.is_empty() {
            return Err(ArmError::bad_request(
                "MissingIdentityId",
                "The identity type is UserAssigned but no user assigned identity ids were \
                 provided.",
            ));
        }
    }
    if let Some(missing) = user_assigned.iter().find(|id| world.identity(id).is_none()) {
        return Err(invalid(format!("The user assigned identity '{missing}' was not found.")));
    }
    let system_principal_id = match (request.system, current.system_principal_id) {
        (false, _) => None,
        (true, Some(existing)) => Some(existing),
        (true, None) => Some(Uuid::new_v4()),
    };
    Ok(ServerIdentity { system_assigned: request.system, system_principal_id, user_assigned })
}

/// The server after applying a PUT or PATCH body, validated; `keyId` is returned separately.
fn next_server(
    world: &World,
    current: &SqlServer,
    body: &Value,
    merge: bool,
) -> Result<(SqlServer, Option<String>), ArmError> {
    let mut next = current.clone();
    let properties = field(body, "properties").cloned().unwrap_or_else(|| json!({}));

    match field(body, "identity") {
        Some(value) if !value.is_null() => {
            next.identity = next_identity(world, &current.identity, &parse_identity(value)?, merge)?
        }
        _ if !merge => next.identity = ServerIdentity::default(),
        _ => {}
    }
    match string_change(&properties, "primaryUserAssignedIdentityId") {
        Change::Set(id) => next.primary_user_assigned_identity_id = Some(id),
        Change::Clear => next.primary_user_assigned_identity_id = None,
        Change::Absent if !merge => next.primary_user_assigned_identity_id = None,
        Change::Absent => {}
    }
    match string_change(&properties, "federatedClientId") {
        Change::Set(text) => {
            let client = Uuid::parse_str(&text).map_err(|_| {
                invalid(format!(
                    "Invalid value given for parameter federatedClientId: '{text}' is not a GUID."
                ))
            })?;
            next.federated_client_id = Some(client);
        }
        Change::Clear => next.federated_client_id = None,
        Change::Absent if !merge => next.federated_client_id = None,
        Change::Absent => {}
    }
    if let Some(tags) = field(body, "tags").and_then(Value::as_object) {
        next.tags = tags.clone();
    }
    if let Some(access) = field_str(&properties, "publicNetworkAccess") {
        next.public_network_access = access.to_string();
    }
    if let Some(tls) = field_str(&properties, "minimalTlsVersion") {
        next.minimal_tls_version = tls.to_string();
    }

    if let Some(primary) = &next.primary_user_assigned_identity_id
        && !next.identity.has_user_assigned(primary)
    {
        return Err(ArmError::bad_request(
            "InvalidPrimaryIdentityId",
            format!(
                "The primary user assigned identity '{primary}' is not in the server's list of \
                    user assigned identities."
            ),
        ));
    }
    let key_id = match string_change(&properties, "keyId") {
        Change::Set(uri) => Some(uri),
        _ => None,
    };
    if let Some(uri) = &key_id {
        validate_key_id(&next, uri)?;
    }
    Ok((next, key_id))
}

fn validate_key_id(server: &SqlServer, uri: &str) -> Result<(), ArmError> {
    if server.identity.user_assigned.is_empty() {
        return Err(ArmError::bad_request(
            "InvalidIdentityTypeForKeyId",
            "KeyId is provided by user but identity type is not set to 'UserAssigned'.",
        ));
    }
    if server.primary_user_assigned_identity_id.is_none() {
        return Err(ArmError::bad_request(
            "PrimaryIdentityMissingPermissionForKeyId",
            "KeyId is provided by user but PrimaryUserAssignedIdentityId is not provided.",
        ));
    }
    match KeyIdentifier::parse(uri) {
        Some(kid) if !kid.version.is_empty() => Ok(()),
        _ => Err(ArmError::bad_request(
            "AzureKeyVaultInvalidUri",
            format!("The provided Key Vault uri '{uri}' is not valid."),
        )),
    }
}

fn configuration(server: &SqlServer) -> ServerConfiguration<'_> {
    ServerConfiguration {
        server_name: &server.name,
        identity: &server.identity,
        primary: server.primary_user_assigned_identity_id.as_deref(),
        federated_client_id: server.federated_client_id,
    }
}

fn failed(failure: ChainFailure) -> OperationOutcome {
    OperationOutcome::Failed {
        status: failure.status.as_u16(),
        code: failure.code.to_string(),
        message: failure.message,
    }
}

/// The server key name Azure requires for a key identifier: `{vault}_{key}_{version}`.
fn expected_key_name(kid: &KeyIdentifier) -> String {
    format!("{}_{}_{}", kid.vault, kid.name, kid.version)
}

/// A stable fake thumbprint for a key identifier.
fn thumbprint(uri: &str) -> String {
    let hash =
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, uri.to_ascii_lowercase().as_bytes());
    hash.as_ref().iter().map(|byte| format!("{byte:02X}")).collect()
}

/// Registers a Key Vault key on a server (no-op if already there).
fn register_key(server: &mut SqlServer, uri: &str) -> String {
    let kid = KeyIdentifier::parse(uri).expect("validated key identifier");
    let name = expected_key_name(&kid);
    server.keys.entry(name.to_ascii_lowercase()).or_insert_with(|| ServerKey {
        name: name.clone(),
        uri: uri.to_string(),
        thumbprint: thumbprint(uri),
        creation_date: OffsetDateTime::now_utc(),
    });
    name
}

fn mark_validated(server: &mut SqlServer) {
    server.key_accessible = true;
    server.key_problem = None;
    server.last_validated = Some(OffsetDateTime::now_utc());
}

/// Runs the chain where the change needs it and returns the server to store, or the failure.
fn settle_server_change(
    world: &World,
    current: &SqlServer,
    mut next: SqlServer,
    key_id: Option<String>,
) -> Result<SqlServer, ChainFailure> {
    let current_uri = current.protector_key().map(|key| key.uri.clone());
    if let Some(uri) = key_id.filter(|uri| Some(uri) != current_uri.as_ref()) {
        tde_chain::check(world, configuration(&next), &uri)?;
        let name = register_key(&mut next, &uri);
        next.protector_key_name = Some(name);
        mark_validated(&mut next);
        return Ok(next);
    }
    let identity_changed = next.identity.user_assigned != current.identity.user_assigned
        || next.primary_user_assigned_identity_id != current.primary_user_assigned_identity_id
        || next.federated_client_id != current.federated_client_id;
    if let (Some(uri), true) = (current_uri, identity_changed) {
        // Azure refuses an identity change that would cut the server off its active key.
        tde_chain::check(world, configuration(&next), &uri)?;
        mark_validated(&mut next);
    }
    Ok(next)
}

/// Applies a PUT or PATCH body to a stored server; the chain decides the operation's outcome.
fn apply_server_update(
    world: &mut World,
    key: &str,
    body: &Value,
    merge: bool,
) -> Result<OperationOutcome, ArmError> {
    let current = world.servers[key].clone();
    let (next, key_id) = next_server(world, &current, body, merge)?;
    Ok(match settle_server_change(world, &current, next, key_id) {
        Ok(next) => {
            let body = server_json(world, &next);
            world.servers.insert(key.to_string(), next);
            OperationOutcome::Succeeded(body)
        }
        Err(failure) => failed(failure),
    })
}

fn update_server(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    key: &str,
    body: &Value,
    merge: bool,
) -> ArmResult {
    let outcome = apply_server_update(world, key, body, merge)?;
    let location = world.servers[key].location.clone();
    Ok(lro::accept(
        world,
        context,
        group,
        &location,
        Family::Server,
        "UpsertLogicalServer",
        outcome,
    ))
}

fn patch_server(world: &mut World, context: &ArmContext<'_>, group: &str, name: &str) -> ArmResult {
    let key = with_server(world, context, group, name)?;
    let body = context.body()?;
    update_server(world, context, group, &key, &body, true)
}

fn put_server(world: &mut World, context: &ArmContext<'_>, group: &str, name: &str) -> ArmResult {
    let body = context.body()?;
    let location = field_str(&body, "location")
        .ok_or_else(|| {
            ArmError::bad_request(
                "LocationRequired",
                "The location property is required for this definition.",
            )
        })?
        .to_string();
    let id = server_id(world, context, group, name);
    let key = id.to_ascii_lowercase();
    if world.servers.contains_key(&key) {
        return update_server(world, context, group, &key, &body, false);
    }
    if world.servers.values().any(|server| server.name.eq_ignore_ascii_case(name)) {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "NameAlreadyExists",
            format!(
                "The name '{name}.database.windows.net' already exists. Choose a different name."
            ),
        ));
    }
    let valid_name = (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid_name {
        return Err(ArmError::bad_request(
            "InvalidServerName",
            format!("Invalid server name '{name}': use lowercase letters, digits and hyphens."),
        ));
    }
    let properties = field(&body, "properties").cloned().unwrap_or_else(|| json!({}));
    let blank = SqlServer {
        id,
        resource_group: group.to_string(),
        name: name.to_string(),
        location,
        tags: Map::new(),
        administrator_login: field_str(&properties, "administratorLogin").map(str::to_string),
        identity: ServerIdentity::default(),
        primary_user_assigned_identity_id: None,
        federated_client_id: None,
        public_network_access: "Enabled".into(),
        minimal_tls_version: "1.2".into(),
        keys: BTreeMap::new(),
        protector_key_name: None,
        protector_auto_rotation: false,
        key_accessible: true,
        key_problem: None,
        last_validated: None,
    };
    let location = blank.location.clone();
    world.servers.insert(key.clone(), blank);
    let outcome = apply_server_update(world, &key, &body, false);
    // A create whose validation or chain failed leaves no server behind.
    if !matches!(outcome, Ok(OperationOutcome::Succeeded(_))) {
        world.servers.remove(&key);
    }
    let outcome = outcome?;
    Ok(lro::accept(
        world,
        context,
        group,
        &location,
        Family::Server,
        "UpsertLogicalServer",
        outcome,
    ))
}

fn delete_server(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    name: &str,
) -> ArmResult {
    let key = server_id(world, context, group, name).to_ascii_lowercase();
    let Some(server) = world.servers.remove(&key) else {
        return Ok(ArmReply::Empty(StatusCode::NO_CONTENT));
    };
    Ok(lro::accept(
        world,
        context,
        group,
        &server.location,
        Family::Server,
        "DropLogicalServer",
        OperationOutcome::Succeeded(Value::Null),
    ))
}

// ---- server keys -----------------------------------------------------------------------------

fn list_keys(server: &SqlServer) -> ArmReply {
    let mut values = vec![service_managed_key_json(server)];
    values.extend(server.keys.values().map(|key| key_json(server, key)));
    ArmReply::ok(json!({"value": values}))
}

fn get_key(server: &SqlServer, name: &str) -> ArmResult {
    if name.eq_ignore_ascii_case(SERVICE_MANAGED) {
        return Ok(ArmReply::ok(service_managed_key_json(server)));
    }
    let key = server.keys.get(&name.to_ascii_lowercase()).ok_or_else(|| {
        ArmError::resource_not_found(
            "Microsoft.Sql/servers/keys",
            &format!("{}/{name}", server.name),
            &server.resource_group,
        )
    })?;
    Ok(ArmReply::ok(key_json(server, key)))
}

fn put_key(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    server_key: &str,
    name: &str,
) -> ArmResult {
    let body = context.body()?;
    let properties = field(&body, "properties").cloned().unwrap_or_else(|| json!({}));
    let key_type = field_str(&properties, "serverKeyType").unwrap_or_default();
    if key_type.eq_ignore_ascii_case(SERVICE_MANAGED) {
        return Err(ArmError::bad_request(
            "InvalidUpsertKeyType",
            "Service managed keys cannot be upserted.",
        ));
    }
    if !key_type.eq_ignore_ascii_case("AzureKeyVault") {
        return Err(ArmError::bad_request(
            "InvalidKeyType",
            format!("The key type '{key_type}' is invalid; use AzureKeyVault."),
        ));
    }
    let uri = field_str(&properties, "uri").unwrap_or_default().to_string();
    if uri.is_empty() {
        return Err(ArmError::bad_request(
            "SecurityAzureKeyVaultUrlNullOrEmpty",
            "The Azure Key Vault uri is null or empty.",
        ));
    }
    let kid =
        KeyIdentifier::parse(&uri).filter(|kid| !kid.version.is_empty()).ok_or_else(|| {
            ArmError::bad_request(
                "AzureKeyVaultMalformedVaultUri",
                format!("The provided Key Vault uri '{uri}' is malformed."),
            )
        })?;
    let expected = expected_key_name(&kid);
    if !expected.eq_ignore_ascii_case(name) {
        return Err(ArmError::bad_request(
            "InvalidKeyName",
            format!(
                "Invalid key name '{name}' for uri '{uri}'; the key name must be '{expected}' \
                    ({{vault}}_{{key}}_{{version}})."
            ),
        ));
    }

    let server = world.servers[server_key].clone();
    let outcome = match tde_chain::check(world, configuration(&server), &uri) {
        Ok(()) => {
            let stored = world.servers.get_mut(server_key).expect("checked");
            let name = register_key(stored, &uri);
            let stored = &world.servers[server_key];
            OperationOutcome::Succeeded(key_json(stored, &stored.keys[&name.to_ascii_lowercase()]))
        }
        Err(failure) => failed(failure),
    };
    Ok(lro::accept(
        world,
        context,
        group,
        &server.location,
        Family::ServerKey,
        "UpsertServerKey",
        outcome,
    ))
}

fn delete_key(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    server_key: &str,
    name: &str,
) -> ArmResult {
    let server = world.servers.get_mut(server_key).expect("checked");
    if !server.keys.contains_key(&name.to_ascii_lowercase()) {
        return Ok(ArmReply::Empty(StatusCode::NO_CONTENT));
    }
    if server
        .protector_key_name
        .as_deref()
        .is_some_and(|current| current.eq_ignore_ascii_case(name))
    {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "AzureKeyVaultKeyInUse",
            format!(
                "The key '{name}' is currently being used by server '{}' as its encryption \
                    protector and cannot be deleted.",
                server.name
            ),
        ));
    }
    server.keys.remove(&name.to_ascii_lowercase());
    let location = server.location.clone();
    Ok(lro::accept(
        world,
        context,
        group,
        &location,
        Family::ServerKey,
        "DropServerKey",
        OperationOutcome::Succeeded(Value::Null),
    ))
}

// ---- encryption protector -------------------------------------------------------------------

fn put_protector(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    server_key: &str,
) -> ArmResult {
    let body = context.body()?;
    let properties = field(&body, "properties").cloned().unwrap_or_else(|| json!({}));
    let key_type = field_str(&properties, "serverKeyType").unwrap_or_default();
    let auto_rotation = field_bool(&properties, "autoRotationEnabled").unwrap_or(false);
    let server = world.servers[server_key].clone();

    let outcome = if key_type.eq_ignore_ascii_case(SERVICE_MANAGED) {
        let stored = world.servers.get_mut(server_key).expect("checked");
        stored.protector_key_name = None;
        stored.protector_auto_rotation = false;
        mark_validated(stored);
        OperationOutcome::Succeeded(protector_json(stored))
    } else if key_type.eq_ignore_ascii_case("AzureKeyVault") {
        let name = field_str(&properties, "serverKeyName").unwrap_or_default();
        let registered = server.keys.get(&name.to_ascii_lowercase()).cloned().ok_or_else(|| {
            ArmError::new(
                StatusCode::NOT_FOUND,
                "ServerKeyNotFound",
                format!(
                    "The server key \
                '{name}' was not found on server '{}'; register it under servers/keys first.",
                    server.name
                ),
            )
        })?;
        match tde_chain::check(world, configuration(&server), &registered.uri) {
            Ok(()) => {
                let stored = world.servers.get_mut(server_key).expect("checked");
                stored.protector_key_name = Some(registered.name.clone());
                stored.protector_auto_rotation = auto_rotation;
                mark_validated(stored);
                OperationOutcome::Succeeded(protector_json(stored))
            }
            Err(failure) => failed(failure),
        }
    } else {
        return Err(ArmError::bad_request(
            "InvalidKeyType",
            format!("The key type '{key_type}' is invalid; use AzureKeyVault or ServiceManaged."),
        ));
    };
    Ok(lro::accept(
        world,
        context,
        group,
        &server.location,
        Family::EncryptionProtector,
        "UpsertEncryptionProtector",
        outcome,
    ))
}

fn revalidate_operation(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    server_key: &str,
) -> ArmResult {
    let problem = revalidate(world, server_key);
    let server = &world.servers[server_key];
    let outcome = match problem {
        Some(failure) => failed(failure),
        None => OperationOutcome::Succeeded(Value::Null),
    };
    let location = server.location.clone();
    Ok(lro::accept(
        world,
        context,
        group,
        &location,
        Family::EncryptionProtector,
        "RevalidateEncryptionProtector",
        outcome,
    ))
}

/// Re-checks the protector's key and records whether the server can still reach it.
fn revalidate(world: &mut World, server_key: &str) -> Option<ChainFailure> {
    let server = world.servers[server_key].clone();
    let problem = server
        .protector_key()
        .and_then(|key| tde_chain::check(world, configuration(&server), &key.uri).err());
    let stored = world.servers.get_mut(server_key).expect("checked");
    stored.key_accessible = problem.is_none();
    stored.key_problem =
        problem.as_ref().map(|failure| format!("{}: {}", failure.code, failure.message));
    stored.last_validated = Some(OffsetDateTime::now_utc());
    if let Some(failure) = &problem {
        tracing::warn!(server = %stored.name, code = failure.code, "protector key is no longer \
            accessible");
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_type_cases() {
        let cases = [
            ("user", "UserAssigned", Some((false, true))),
            ("both", "SystemAssigned,UserAssigned", Some((true, true))),
            ("both reversed lower", "userassigned, systemassigned", Some((true, true))),
            ("none", "None", Some((false, false))),
            ("bogus", "Managed", None),
            ("none with user", "None,UserAssigned", None),
        ];
        for (name, kind, expected) in cases {
            let parsed = parse_identity(&json!({"type": kind}))
                .ok()
                .map(|request| (request.system, request.user));
            assert_eq!(parsed, expected, "{name}");
        }
    }

    #[test]
    fn key_name_and_thumbprint() {
        let kid = KeyIdentifier::parse(
            "https://kv.vault.azure.net/keys/tde/0123456789abcdef0123456789abcdef",
        )
        .expect("kid");
        assert_eq!(expected_key_name(&kid), "kv_tde_0123456789abcdef0123456789abcdef");
        let print = thumbprint("https://kv.vault.azure.net/keys/tde/01");
        assert_eq!(print.len(), 40);
        assert_eq!(print, thumbprint("https://KV.vault.azure.net/keys/tde/01"));
    }
}
