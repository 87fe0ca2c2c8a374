//! Microsoft.Authorization/roleAssignments (2022-04-01) at any scope: create, read, delete, list.
//!
//! The principal must exist in the directory of the scope's tenant (`PrincipalNotFound`
//! otherwise, unless the caller names `principalType`, which skips the replication wait as in
//! Azure); the same principal, role and scope under another name is `RoleAssignmentExists`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ArmContext, ArmError, ArmReply, ArmResult, method_not_allowed};
use crate::http::{field, field_str, format_rfc3339};
use crate::state::{ReplicatedKind, RoleAssignment, World, scope_covers};

const TYPE: &str = "Microsoft.Authorization/roleAssignments";

/// Built-in roles the simulator knows, by definition GUID.
const KNOWN_ROLES: &[&str] = &[
    "8e3af657-a8ff-443b-a75c-2fe8c4bcb635", // Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c", // Contributor
    "acdd72a7-3385-48ef-bd42-f606fba81ae7", // Reader
    "18d7d88d-d35e-4fb5-a5c3-7773c20ad72a", // User Access Administrator
    "00482a5a-887f-4fb3-b363-3b7fe8e74483", // Key Vault Administrator
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", // Key Vault Crypto Officer
    "12338af0-0e69-4776-bea7-57ae8d297424", // Key Vault Crypto User
    "e147488a-f6f5-4113-8e2d-b22465e65bf6", // Key Vault Crypto Service Encryption User
    "21090545-7ca7-4776-b22c-e363652d74d2", // Key Vault Reader
];

/// Routes `{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`.
pub fn handle(
    world: &mut World,
    context: &ArmContext<'_>,
    scope: &str,
    name: Option<&str>,
) -> ArmResult {
    match (&context.request.method, name) {
        (&Method::GET, None) => list(world, context, scope),
        (&Method::GET, Some(name)) => get(world, scope, name),
        (&Method::PUT, Some(name)) => put(world, context, scope, name),
        (&Method::DELETE, Some(name)) => delete(world, scope, name),
        _ => Err(method_not_allowed()),
    }
}

fn assignment_id(scope: &str, name: &str) -> String {
    format!("{}/providers/{TYPE}/{name}", scope.trim_end_matches('/'))
}

/// The role assignment's JSON, as in the spec's RoleAssignments_Get example.
fn assignment_json(assignment: &RoleAssignment) -> Value {
    json!({
        "id": assignment.id,
        "name": assignment.name,
        "type": TYPE,
        "properties": {
            "roleDefinitionId": assignment.role_definition_id,
            "principalId": assignment.principal_id,
            "principalType": assignment.principal_type,
            "scope": assignment.scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": format_rfc3339(assignment.created),
            "updatedOn": format_rfc3339(assignment.created),
        },
    })
}

fn not_found(name: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

fn get(world: &World, scope: &str, name: &str) -> ArmResult {
    let assignment = world
        .role_assignments
        .get(&assignment_id(scope, name).to_ascii_lowercase())
        .filter(|assignment| world.replicated(ReplicatedKind::RoleAssignment, assignment.created))
        .ok_or_else(|| not_found(name))?;
    Ok(ArmReply::ok(assignment_json(assignment)))
}

fn list(world: &World, context: &ArmContext<'_>, scope: &str) -> ArmResult {
    let principal = match context.request.query_param("$filter") {
        None => None,
        Some(filter) => Some(principal_filter(filter)?),
    };
    let values: Vec<Value> = world
        .role_assignments
        .values()
        .filter(|assignment| assignment.tenant_id == context.tenant)
        .filter(|assignment| {
            scope_covers(&assignment.scope, scope) || scope_covers(scope, &assignment.scope)
        })
        .filter(|assignment| principal.is_none_or(|principal| assignment.principal_id == principal))
        .filter(|assignment| world.replicated(ReplicatedKind::RoleAssignment, assignment.created))
        .map(assignment_json)
        .collect();
    Ok(ArmReply::ok(json!({"value": values})))
}

/// Parses `principalId eq '{guid}'`.
fn principal_filter(filter: &str) -> Result<Uuid, ArmError> {
    let mut parts = filter.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(property), Some(operator), Some(value))
            if property.eq_ignore_ascii_case("principalId")
                && operator.eq_ignore_ascii_case("eq") =>
        {
            Uuid::parse_str(value.trim().trim_matches('\'')).map_err(|_| invalid_filter(filter))
        }
        _ => Err(invalid_filter(filter)),
    }
}

fn invalid_filter(filter: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidFilterInQueryString",
        format!("The filter '{filter}' is not supported."),
    )
}

fn put(world: &mut World, context: &ArmContext<'_>, scope: &str, name: &str) -> ArmResult {
    if Uuid::parse_str(name).is_err() {
        return Err(ArmError::bad_request(
            "InvalidRoleAssignmentId",
            format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a \
                    GUID."
            ),
        ));
    }
    let body = context.body()?;
    let properties = field(&body, "properties").cloned().unwrap_or_else(|| json!({}));
    let role_definition_id =
        field_str(&properties, "roleDefinitionId").unwrap_or_default().to_string();
    let role_guid = role_definition_id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    if !KNOWN_ROLES.contains(&role_guid.as_str()) {
        return Err(ArmError::bad_request(
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{role_guid}' does not exist."),
        ));
    }
    let principal_text = field_str(&properties, "principalId").unwrap_or_default();
    let principal_type = field_str(&properties, "principalType").map(str::to_string);
    let tenant = context.tenant;
    let principal_missing = || {
        ArmError::bad_request(
            "PrincipalNotFound",
            format!(
                "Principal {} does not exist in the directory {tenant}. Check that you have the \
                    correct principal ID. If you are creating this principal and then immediately \
                    assigning a role, this error might be related to a replication delay. In this \
                    case, set the role assignment principalType property to a value, such as \
                    ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                principal_text.replace('-', "")
            ),
        )
    };
    let principal_id = Uuid::parse_str(principal_text).map_err(|_| principal_missing())?;
    // With principalType set, Azure skips the directory lookup that replication can fail.
    let known = world
        .service_principals
        .get(&principal_id)
        .filter(|principal| principal.tenant_id == tenant);
    let visible = known.filter(|principal| {
        principal_type.is_some()
            || world.replicated(ReplicatedKind::ServicePrincipal, principal.created)
    });
    if visible.is_none() {
        return Err(principal_missing());
    }
    let principal_kind = principal_type.unwrap_or_else(|| "ServicePrincipal".to_string());

    let id = assignment_id(scope, name);
    let duplicate = world.role_assignments.values().any(|existing| {
        !existing.id.eq_ignore_ascii_case(&id)
            && existing.principal_id == principal_id
            && existing.role_guid() == role_guid
            && existing
                .scope
                .trim_end_matches('/')
                .eq_ignore_ascii_case(scope.trim_end_matches('/'))
    });
    if duplicate {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            "The role assignment already exists.",
        ));
    }
    if let Some(existing) = world.role_assignments.get(&id.to_ascii_lowercase()) {
        if existing.principal_id != principal_id || existing.role_guid() != role_guid {
            return Err(ArmError::bad_request(
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ));
        }
        return Ok(ArmReply::ok(assignment_json(existing)));
    }

    let assignment = RoleAssignment {
        id: id.clone(),
        name: name.to_string(),
        scope: scope.to_string(),
        role_definition_id,
        principal_id,
        principal_type: principal_kind,
        tenant_id: tenant,
        created: OffsetDateTime::now_utc(),
    };
    let reply = assignment_json(&assignment);
    world.role_assignments.insert(id.to_ascii_lowercase(), assignment);
    Ok(ArmReply::Json(StatusCode::CREATED, reply, Vec::new()))
}

fn delete(world: &mut World, scope: &str, name: &str) -> ArmResult {
    match world.role_assignments.remove(&assignment_id(scope, name).to_ascii_lowercase()) {
        Some(assignment) => Ok(ArmReply::ok(assignment_json(&assignment))),
        None => Ok(ArmReply::Empty(StatusCode::NO_CONTENT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_filter_cases() {
        let id = "22222222-0000-4000-8000-0000000000d1";
        let cases = [
            ("quoted", format!("principalId eq '{id}'"), true),
            ("other case", format!("PRINCIPALID EQ '{id}'"), true),
            ("other property", format!("roleId eq '{id}'"), false),
            ("not a guid", "principalId eq 'x'".to_string(), false),
        ];
        for (name, filter, ok) in cases {
            assert_eq!(principal_filter(&filter).is_ok(), ok, "{name}");
        }
    }
}
