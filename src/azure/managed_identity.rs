//! Microsoft.ManagedIdentity user-assigned identities (api-version 2024-11-30).
//!
//! This module owns the identity requests and their wire shapes. It must never decide what to
//! do with an identity (that is the resource's job) nor touch federated credentials on it.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::azure::client::{
    ApiRequest, Audience, AzureClient, CallContext, ignore_not_found, optional,
};
use crate::azure::error::AzureError;
use crate::azure::ids::UserAssignedIdentityId;

/// The api-version this module speaks.
pub const API_VERSION: &str = "2024-11-30";

/// A user-assigned managed identity as Azure reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The ARM id, as Azure spelled it.
    pub id: String,
    /// The identity's name.
    pub name: String,
    /// The Azure region.
    pub location: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Object id of the identity's service principal: the subject of federated credentials.
    pub principal_id: String,
    /// Client (application) id of the identity.
    pub client_id: String,
    /// The tenant the identity lives in: the issuer of its tokens.
    pub tenant_id: String,
}

#[derive(Serialize)]
struct IdentityBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    tags: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIdentity {
    id: String,
    name: String,
    location: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    properties: WireProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireProperties {
    principal_id: Option<String>,
    client_id: Option<String>,
    tenant_id: Option<String>,
}

impl From<WireIdentity> for Identity {
    fn from(wire: WireIdentity) -> Self {
        Self {
            id: wire.id,
            name: wire.name,
            location: wire.location,
            tags: wire.tags.unwrap_or_default(),
            principal_id: wire.properties.principal_id.unwrap_or_default(),
            client_id: wire.properties.client_id.unwrap_or_default(),
            tenant_id: wire.properties.tenant_id.unwrap_or_default(),
        }
    }
}

fn request(
    client: &AzureClient,
    method: Method,
    id: &UserAssignedIdentityId,
    operation: &str,
) -> ApiRequest {
    let url = client.arm_url(&id.to_string(), API_VERSION);
    ApiRequest::new(Audience::ResourceManager, method, url, operation, id.to_string())
}

/// Creates the identity, or updates its tags if it exists (PUT, answered 200 or 201).
pub async fn create_or_update(
    client: &AzureClient,
    id: &UserAssignedIdentityId,
    location: &str,
    tags: &BTreeMap<String, String>,
    call: &CallContext,
) -> Result<Identity, AzureError> {
    let body = IdentityBody { location: Some(location), tags };
    let request = request(client, Method::PUT, id, "creating user-assigned identity");
    let response = client.send(request.with_json(&body)?, call).await?;
    Ok(response.json::<WireIdentity>()?.into())
}

/// Reads the identity; `None` when it does not exist.
pub async fn get(
    client: &AzureClient,
    id: &UserAssignedIdentityId,
    call: &CallContext,
) -> Result<Option<Identity>, AzureError> {
    let request = request(client, Method::GET, id, "reading user-assigned identity");
    let response = optional(client.send(request, call)).await?;
    response.map(|response| Ok(response.json::<WireIdentity>()?.into())).transpose()
}

/// Replaces the identity's tags (PATCH).
pub async fn update_tags(
    client: &AzureClient,
    id: &UserAssignedIdentityId,
    tags: &BTreeMap<String, String>,
    call: &CallContext,
) -> Result<Identity, AzureError> {
    let body = IdentityBody { location: None, tags };
    let request = request(client, Method::PATCH, id, "updating user-assigned identity tags");
    let response = client.send(request.with_json(&body)?, call).await?;
    Ok(response.json::<WireIdentity>()?.into())
}

/// Deletes the identity; an identity already gone counts as deleted.
pub async fn delete(
    client: &AzureClient,
    id: &UserAssignedIdentityId,
    call: &CallContext,
) -> Result<(), AzureError> {
    let request = request(client, Method::DELETE, id, "deleting user-assigned identity");
    ignore_not_found(client.send(request, call)).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::azure::client::CallContext;
    use crate::azure::ids::UserAssignedIdentityId;
    use crate::azure::testing::{FakeCredential, Reply, ScriptedServer, client_for};

    const ID: &str = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/\
                      userAssignedIdentities/uami1";
    const IDENTITY: &str = r#"{"id":"/subscriptions/s1/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami1",
        "name":"uami1","location":"westeurope","type":"Microsoft.ManagedIdentity/userAssignedIdentities",
        "tags":{"env":"test"},"properties":{"clientId":"c-1","principalId":"p-1","tenantId":"t-1","isolationScope":"None"}}"#;

    #[tokio::test]
    async fn create_get_update_delete() {
        let server = ScriptedServer::start().await;
        let client = client_for(&server, Arc::new(FakeCredential::default()));
        let id = UserAssignedIdentityId::parse(ID).unwrap();
        let call = CallContext::with_timeout(Duration::from_secs(10));
        let tags = BTreeMap::from([("env".to_owned(), "test".to_owned())]);
        server.script([
            Reply::json(201, IDENTITY),
            Reply::json(200, IDENTITY),
            Reply::json(404, r#"{"error":{"code":"ResourceNotFound","message":"gone"}}"#),
            Reply::json(200, IDENTITY),
            Reply::json(204, ""),
            Reply::json(404, ""),
        ]);

        let created = super::create_or_update(&client, &id, "westeurope", &tags, &call).await;
        let created = created.unwrap();
        assert_eq!(created.principal_id, "p-1");
        assert_eq!(created.client_id, "c-1");
        assert_eq!(created.tenant_id, "t-1");
        assert_eq!(created.tags, tags);
        assert_eq!(super::get(&client, &id, &call).await.unwrap(), Some(created));
        assert_eq!(super::get(&client, &id, &call).await.unwrap(), None);
        super::update_tags(&client, &id, &tags, &call).await.unwrap();
        super::delete(&client, &id, &call).await.unwrap();
        super::delete(&client, &id, &call).await.unwrap();

        let requests = server.requests();
        let target = format!("{}?api-version=2024-11-30", ID);
        assert_eq!(requests[0].method, "PUT");
        assert_eq!(requests[0].target, target);
        assert_eq!(requests[0].body, r#"{"location":"westeurope","tags":{"env":"test"}}"#);
        assert_eq!(requests[3].method, "PATCH");
        assert_eq!(requests[3].body, r#"{"tags":{"env":"test"}}"#);
        assert_eq!(requests[4].method, "DELETE");
    }
}
