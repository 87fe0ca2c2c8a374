//! Microsoft.Authorization role assignments (api-version 2022-04-01).
//!
//! This module owns the role assignment requests. It must never pick role names or scopes
//! itself; the one role this provider grants is a constant here so it is written once.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::azure::client::{
    ApiRequest, Audience, AzureClient, CallContext, ignore_not_found, optional,
};
use crate::azure::error::AzureError;
use crate::azure::ids::RoleAssignmentId;

/// The api-version this module speaks.
pub const API_VERSION: &str = "2022-04-01";

/// "Key Vault Crypto Service Encryption User": read keys, wrap and unwrap. Azure SQL needs
/// exactly this on an RBAC vault to use a key as TDE protector.
pub const KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER: &str = "e147488a-f6f5-4113-8e2d-b22465e65bf6";

/// The full id of a built-in role definition within a subscription.
pub fn role_definition_id(subscription_id: &str, role_definition_name: &str) -> String {
    format!(
        "/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/\
         {role_definition_name}"
    )
}

/// A role assignment as ARM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    /// The assignment's id.
    pub id: String,
    /// Its name (a GUID).
    pub name: String,
    /// The scope it applies to.
    pub scope: String,
    /// The role definition's full id.
    pub role_definition_id: String,
    /// The object id of the principal granted.
    pub principal_id: String,
    /// `ServicePrincipal`, `User`, `Group`, ...
    pub principal_type: Option<String>,
}

#[derive(Deserialize)]
struct WireRoleAssignment {
    id: String,
    name: String,
    properties: WireProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProperties {
    role_definition_id: String,
    principal_id: String,
    #[serde(default)]
    principal_type: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl From<WireRoleAssignment> for RoleAssignment {
    fn from(wire: WireRoleAssignment) -> Self {
        let properties = wire.properties;
        Self {
            id: wire.id,
            name: wire.name,
            scope: properties.scope.unwrap_or_default(),
            role_definition_id: properties.role_definition_id,
            principal_id: properties.principal_id,
            principal_type: properties.principal_type,
        }
    }
}

fn request(
    client: &AzureClient,
    method: Method,
    id: &RoleAssignmentId,
    operation: &str,
) -> ApiRequest {
    let url = client.arm_url(&id.to_string(), API_VERSION);
    ApiRequest::new(Audience::ResourceManager, method, url, operation, id.to_string())
}

/// Grants a role to a service principal.
///
/// `principalType` is always `ServicePrincipal`: stating it lets ARM skip the directory lookup
/// that fails with `PrincipalNotFound` while a new service principal replicates.
pub async fn create_role_assignment(
    client: &AzureClient,
    id: &RoleAssignmentId,
    role_definition_id: &str,
    principal_id: &str,
    call: &CallContext,
) -> Result<RoleAssignment, AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties<'a> {
        role_definition_id: &'a str,
        principal_id: &'a str,
        principal_type: &'a str,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        properties: Properties<'a>,
    }
    let properties =
        Properties { role_definition_id, principal_id, principal_type: "ServicePrincipal" };
    let request = request(client, Method::PUT, id, "creating role assignment");
    let response = client.send(request.with_json(&Body { properties })?, call).await?;
    Ok(response.json::<WireRoleAssignment>()?.into())
}

/// Reads a role assignment; `None` when it does not exist.
pub async fn get_role_assignment(
    client: &AzureClient,
    id: &RoleAssignmentId,
    call: &CallContext,
) -> Result<Option<RoleAssignment>, AzureError> {
    let request = request(client, Method::GET, id, "reading role assignment");
    let response = optional(client.send(request, call)).await?;
    response.map(|response| Ok(response.json::<WireRoleAssignment>()?.into())).transpose()
}

/// Deletes a role assignment; one already gone counts as deleted.
pub async fn delete_role_assignment(
    client: &AzureClient,
    id: &RoleAssignmentId,
    call: &CallContext,
) -> Result<(), AzureError> {
    let request = request(client, Method::DELETE, id, "deleting role assignment");
    ignore_not_found(client.send(request, call)).await
}

/// Lists the role assignments of a principal that apply at a scope (including inherited ones).
pub async fn list_role_assignments_for_principal(
    client: &AzureClient,
    scope: &str,
    principal_id: &str,
    call: &CallContext,
) -> Result<Vec<RoleAssignment>, AzureError> {
    let scope = scope.trim_end_matches('/');
    let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments");
    let url = client.arm_url(&path, API_VERSION);
    let operation = "listing role assignments";
    let filter = format!("principalId eq '{}'", principal_id.replace('\'', "''"));
    let request = ApiRequest::new(Audience::ResourceManager, Method::GET, url, operation, scope)
        .with_query("$filter", &filter);
    let assignments: Vec<WireRoleAssignment> = client.list_all(request, call).await?;
    Ok(assignments.into_iter().map(RoleAssignment::from).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::azure::client::CallContext;
    use crate::azure::ids::RoleAssignmentId;
    use crate::azure::testing::{FakeCredential, Reply, ScriptedServer, client_for};

    const VAULT: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1";

    fn assignment(name: &str) -> String {
        format!(
            r#"{{"id":"{VAULT}/providers/Microsoft.Authorization/roleAssignments/{name}","name":"{name}",
            "type":"Microsoft.Authorization/roleAssignments","properties":{{
            "roleDefinitionId":"/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6",
            "principalId":"sp-1","principalType":"ServicePrincipal","scope":"{VAULT}"}}}}"#
        )
    }

    #[tokio::test]
    async fn create_then_list_across_pages() {
        let server = ScriptedServer::start().await;
        let client = client_for(&server, Arc::new(FakeCredential::default()));
        let call = CallContext::with_timeout(Duration::from_secs(10));
        let id = RoleAssignmentId::parse(&format!(
            "{VAULT}/providers/Microsoft.Authorization/roleAssignments/guid-1"
        ))
        .unwrap();
        let next = server.url("/page2");
        server.script([
            Reply::json(201, &assignment("guid-1")),
            Reply::json(
                200,
                &format!(r#"{{"value":[{}],"nextLink":"{next}"}}"#, assignment("guid-1")),
            ),
            Reply::json(200, &format!(r#"{{"value":[{}]}}"#, assignment("guid-2"))),
        ]);

        let role = super::role_definition_id("s1", super::KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER);
        let created = super::create_role_assignment(&client, &id, &role, "sp-1", &call).await;
        assert_eq!(created.unwrap().scope, VAULT);
        let listed = super::list_role_assignments_for_principal(&client, VAULT, "sp-1", &call);
        let names: Vec<String> = listed.await.unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["guid-1", "guid-2"]);

        let requests = server.requests();
        assert_eq!(requests[0].method, "PUT");
        assert_eq!(
            requests[0].body,
            format!(
                r#"{{"properties":{{"roleDefinitionId":"{role}","principalId":"sp-1","principalType":"ServicePrincipal"}}}}"#
            )
        );
        assert_eq!(
            requests[1].target,
            format!(
                "{VAULT}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01\
                 &%24filter=principalId+eq+%27sp-1%27"
            )
        );
        assert_eq!(requests[2].target, "/page2");
    }
}
