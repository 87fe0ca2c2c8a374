//! Microsoft.ManagedIdentity/userAssignedIdentities (2024-11-30): create, read, update tags,
//! delete.
//!
//! Creating an identity also creates its service principal (type ManagedIdentity, appId = the
//! client id, object id = the principal id) in the subscription's tenant; deleting it removes
//! that principal. Shapes follow the spec's IdentityCreate/IdentityGet examples.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ArmContext, ArmError, ArmReply, ArmResult, group_id, method_not_allowed};
use crate::http::{field, field_str};
use crate::state::{PrincipalType, ServicePrincipal, UserAssignedIdentity, World};

const TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// Routes `…/providers/Microsoft.ManagedIdentity/{rest}`.
pub fn handle(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    rest: &[&str],
) -> ArmResult {
    let [kind, name] = rest else {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            "The resource type could not be found in the namespace 'Microsoft.ManagedIdentity'.",
        ));
    };
    if !kind.eq_ignore_ascii_case("userAssignedIdentities") {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The resource type '{kind}' could not be found in the namespace \
                    'Microsoft.ManagedIdentity'."
            ),
        ));
    }
    let id = format!("{}/providers/{TYPE}/{name}", group_id(world, context.subscription, group));
    match context.request.method {
        Method::GET => get(world, &id, name, group),
        Method::PUT => put(world, context, id, name),
        Method::PATCH => patch(world, context, &id, name, group),
        Method::DELETE => delete(world, &id),
        _ => Err(method_not_allowed()),
    }
}

/// The identity's JSON, as the spec example shows it.
pub fn identity_json(identity: &UserAssignedIdentity) -> Value {
    json!({
        "id": identity.id,
        "name": identity.name,
        "type": TYPE,
        "location": identity.location,
        "tags": identity.tags,
        "properties": {
            "tenantId": identity.tenant_id,
            "principalId": identity.principal_id,
            "clientId": identity.client_id,
            "isolationScope": "None",
        },
    })
}

fn get(world: &World, id: &str, name: &str, group: &str) -> ArmResult {
    let identity =
        world.identity(id).ok_or_else(|| ArmError::resource_not_found(TYPE, name, group))?;
    Ok(ArmReply::ok(identity_json(identity)))
}

fn tags_of(body: &Value) -> Result<Option<Map<String, Value>>, ArmError> {
    match field(body, "tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(tags)) => Ok(Some(tags.clone())),
        Some(_) => Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The property 'tags' must be an object.",
        )),
    }
}

fn put(world: &mut World, context: &ArmContext<'_>, id: String, name: &str) -> ArmResult {
    let body = context.body()?;
    let location = field_str(&body, "location").ok_or_else(|| {
        ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )
    })?;
    let tags = tags_of(&body)?.unwrap_or_default();

    if let Some(existing) = world.identities.get_mut(&id.to_ascii_lowercase()) {
        if !existing.location.eq_ignore_ascii_case(location) {
            return Err(ArmError::bad_request(
                "InvalidResourceLocation",
                format!(
                    "The resource '{name}' already exists in location '{}'. A resource with the \
                        same name cannot be created in location '{location}'.",
                    existing.location
                ),
            ));
        }
        existing.tags = tags;
        return Ok(ArmReply::ok(identity_json(existing)));
    }

    let identity = UserAssignedIdentity {
        id,
        name: name.to_string(),
        location: location.to_string(),
        tags,
        tenant_id: context.tenant,
        principal_id: Uuid::new_v4(),
        client_id: Uuid::new_v4(),
    };
    // The identity's principal appears in the directory of the subscription's tenant.
    world.service_principals.insert(
        identity.principal_id,
        ServicePrincipal {
            object_id: identity.principal_id,
            app_id: identity.client_id,
            tenant_id: identity.tenant_id,
            display_name: identity.name.clone(),
            app_owner_tenant_id: None,
            principal_type: PrincipalType::ManagedIdentity,
            managed_identity_id: Some(identity.id.clone()),
            graph_roles: Vec::new(),
            created: OffsetDateTime::now_utc(),
        },
    );
    let reply = identity_json(&identity);
    world.identities.insert(identity.id.to_ascii_lowercase(), identity);
    Ok(ArmReply::Json(StatusCode::CREATED, reply, Vec::new()))
}

fn patch(
    world: &mut World,
    context: &ArmContext<'_>,
    id: &str,
    name: &str,
    group: &str,
) -> ArmResult {
    let body = context.body()?;
    let tags = tags_of(&body)?;
    let identity = world
        .identities
        .get_mut(&id.to_ascii_lowercase())
        .ok_or_else(|| ArmError::resource_not_found(TYPE, name, group))?;
    if let Some(tags) = tags {
        identity.tags = tags;
    }
    Ok(ArmReply::ok(identity_json(identity)))
}

fn delete(world: &mut World, id: &str) -> ArmResult {
    let Some(identity) = world.identities.remove(&id.to_ascii_lowercase()) else {
        return Ok(ArmReply::Empty(StatusCode::NO_CONTENT));
    };
    world.service_principals.remove(&identity.principal_id);
    Ok(ArmReply::Empty(StatusCode::OK))
}
