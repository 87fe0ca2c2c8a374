//! Microsoft.Sql logical servers (api-version 2025-01-01): identity, federated client id,
//! server keys and the TDE encryption protector.
//!
//! This module owns those requests and their wire shapes. It must never decide the order of
//! steps (the protector resource does: identity, then key, then protector; revert before
//! anything on destroy) and never touch other server settings such as administrators.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::azure::client::{
    ApiRequest, Audience, AzureClient, CallContext, ignore_not_found, optional,
};
use crate::azure::error::AzureError;
use crate::azure::ids::{KeyVaultKeyId, ServerKeyId, SqlServerId, server_key_name};

/// The api-version this module speaks.
pub const API_VERSION: &str = "2025-01-01";

/// Name and type of the built-in service-managed key.
pub const SERVICE_MANAGED: &str = "ServiceManaged";

/// Type of a key held in Azure Key Vault.
pub const AZURE_KEY_VAULT: &str = "AzureKeyVault";

/// A logical server, reduced to what TDE with a customer-managed key involves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The ARM id, as Azure spelled it.
    pub id: String,
    /// The server's name.
    pub name: String,
    /// The Azure region.
    pub location: String,
    /// The identities attached, if any.
    pub identity: Option<ServerIdentity>,
    /// The user-assigned identity used by default (for Key Vault access, among others).
    pub primary_user_assigned_identity_id: Option<String>,
    /// The multi-tenant application's client id used for cross-tenant keys.
    pub federated_client_id: Option<String>,
    /// The customer-managed key URI, when set through the server.
    pub key_id: Option<String>,
    /// `Ready`, `Disabled`, ...
    pub state: Option<String>,
}

/// The identities attached to a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerIdentity {
    /// Whether a system-assigned identity is on.
    pub system_assigned: bool,
    /// User-assigned identities by ARM id (as Azure spelled the ids).
    pub user_assigned: BTreeMap<String, UserAssignedIdentity>,
    /// The system-assigned identity's object id.
    pub principal_id: Option<String>,
    /// The system-assigned identity's tenant.
    pub tenant_id: Option<String>,
}

/// One user-assigned identity as a server reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentity {
    /// The identity's object id.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// The identity's client id.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// The identity part of a server update: the full set wanted, not a difference.
///
/// Sending the complete map works whether the service merges or replaces
/// `userAssignedIdentities` on PATCH (the published description does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentityUpdate {
    /// Keep or turn on the system-assigned identity.
    pub system_assigned: bool,
    /// Every user-assigned identity the server should have, by ARM id.
    pub user_assigned_identity_ids: Vec<String>,
    /// The primary user-assigned identity; must be among the ids above.
    pub primary_user_assigned_identity_id: Option<String>,
    /// The multi-tenant application's client id; `None` leaves it unchanged.
    pub federated_client_id: Option<String>,
}

impl ServerIdentityUpdate {
    /// The wire value of `identity.type`. Azure writes the combined value without a space.
    pub fn identity_type(&self) -> &'static str {
        match (self.system_assigned, self.user_assigned_identity_ids.is_empty()) {
            (true, false) => "SystemAssigned,UserAssigned",
            (true, true) => "SystemAssigned",
            (false, false) => "UserAssigned",
            (false, true) => "None",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireServer {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    identity: Option<WireIdentity>,
    #[serde(default)]
    properties: WireServerProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIdentity {
    #[serde(rename = "type", default)]
    identity_type: String,
    #[serde(default)]
    user_assigned_identities: Option<BTreeMap<String, UserAssignedIdentity>>,
    principal_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireServerProperties {
    primary_user_assigned_identity_id: Option<String>,
    federated_client_id: Option<String>,
    key_id: Option<String>,
    state: Option<String>,
}

impl From<WireServer> for Server {
    fn from(wire: WireServer) -> Self {
        let identity = wire.identity.map(|identity| ServerIdentity {
            // Either order and any spacing: "SystemAssigned, UserAssigned" appears in the wild.
            system_assigned: identity.identity_type.to_ascii_lowercase().contains("systemassigned"),
            user_assigned: identity.user_assigned_identities.unwrap_or_default(),
            principal_id: identity.principal_id,
            tenant_id: identity.tenant_id,
        });
        let properties = wire.properties;
        Self {
            id: wire.id,
            name: wire.name,
            location: wire.location,
            identity,
            primary_user_assigned_identity_id: properties.primary_user_assigned_identity_id,
            federated_client_id: properties.federated_client_id,
            key_id: properties.key_id,
            state: properties.state,
        }
    }
}

fn arm_request(
    client: &AzureClient,
    method: Method,
    path: &str,
    operation: &str,
    resource: &str,
) -> ApiRequest {
    let url = client.arm_url(path, API_VERSION);
    ApiRequest::new(Audience::ResourceManager, method, url, operation, resource)
}

/// Reads a server; `None` when it does not exist.
pub async fn get_server(
    client: &AzureClient,
    id: &SqlServerId,
    call: &CallContext,
) -> Result<Option<Server>, AzureError> {
    let path = id.to_string();
    let request = arm_request(client, Method::GET, &path, "reading SQL server", &path);
    let response = optional(client.send(request, call)).await?;
    response.map(|response| Ok(response.json::<WireServer>()?.into())).transpose()
}

/// Sets the server's identities, primary identity and federated client id in one PATCH, and
/// waits for the operation.
///
/// One request matters: Azure validates the primary identity against the identity list of the
/// same request (`InvalidPrimaryIdentityId`).
pub async fn update_server_identity(
    client: &AzureClient,
    id: &SqlServerId,
    update: &ServerIdentityUpdate,
    call: &CallContext,
) -> Result<Server, AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Identity<'a> {
        #[serde(rename = "type")]
        identity_type: &'a str,
        user_assigned_identities: BTreeMap<&'a str, Empty>,
    }
    #[derive(Serialize)]
    struct Empty {}
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        primary_user_assigned_identity_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        federated_client_id: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        identity: Identity<'a>,
        properties: Properties<'a>,
    }

    let user_assigned_identities =
        update.user_assigned_identity_ids.iter().map(|id| (id.as_str(), Empty {})).collect();
    let body = Body {
        identity: Identity { identity_type: update.identity_type(), user_assigned_identities },
        properties: Properties {
            primary_user_assigned_identity_id: update.primary_user_assigned_identity_id.as_deref(),
            federated_client_id: update.federated_client_id.as_deref(),
        },
    };
    let path = id.to_string();
    let request = arm_request(client, Method::PATCH, &path, "updating SQL server identity", &path);
    let response = client.send_and_wait(request.with_json(&body)?, call).await?;
    Ok(response.json::<WireServer>()?.into())
}

/// Takes a user-assigned identity off a server and clears the primary identity and federated
/// client id that pointed through it, in one PATCH (JSON merge patch: `null` removes), waiting for
/// the operation. `remaining` is how the identity type reads without it.
pub async fn detach_identity(
    client: &AzureClient,
    id: &SqlServerId,
    identity_id: &str,
    remaining: &ServerIdentityUpdate,
    call: &CallContext,
) -> Result<Server, AzureError> {
    let body = serde_json::json!({
        "identity": {
            "type": remaining.identity_type(),
            "userAssignedIdentities": { identity_id: null },
        },
        "properties": { "primaryUserAssignedIdentityId": null, "federatedClientId": null },
    });
    let path = id.to_string();
    let request = arm_request(client, Method::PATCH, &path, "detaching SQL server identity", &path);
    let response = client.send_and_wait(request.with_json(&body)?, call).await?;
    Ok(response.json::<WireServer>()?.into())
}

/// A key registered on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// The ARM id.
    pub id: String,
    /// The key's name (`{vault}_{key}_{version}`, or `ServiceManaged`).
    pub name: String,
    /// `ServiceManaged` or `AzureKeyVault`.
    pub server_key_type: String,
    /// The Key Vault key URI.
    pub uri: Option<String>,
    /// The key's thumbprint.
    pub thumbprint: Option<String>,
    /// When it was registered.
    pub creation_date: Option<String>,
    /// Whether SQL follows new key versions by itself.
    pub auto_rotation_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireServerKey {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    properties: WireServerKeyProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireServerKeyProperties {
    #[serde(default)]
    server_key_type: String,
    uri: Option<String>,
    thumbprint: Option<String>,
    creation_date: Option<String>,
    auto_rotation_enabled: Option<bool>,
}

impl From<WireServerKey> for ServerKey {
    fn from(wire: WireServerKey) -> Self {
        let properties = wire.properties;
        Self {
            id: wire.id,
            name: wire.name,
            server_key_type: properties.server_key_type,
            uri: properties.uri,
            thumbprint: properties.thumbprint,
            creation_date: properties.creation_date,
            auto_rotation_enabled: properties.auto_rotation_enabled,
        }
    }
}

/// The id a Key Vault key gets when registered on a server; `None` for a versionless key.
pub fn server_key_id(server: &SqlServerId, key: &KeyVaultKeyId) -> Option<ServerKeyId> {
    let key_name = server_key_name(key)?;
    Some(ServerKeyId { server: server.clone(), key_name })
}

/// Registers a Key Vault key version on a server (PUT keys/{vault}_{key}_{version}), waiting
/// for the operation. This is where Azure first checks it can reach the key.
pub async fn create_server_key(
    client: &AzureClient,
    id: &ServerKeyId,
    key: &KeyVaultKeyId,
    call: &CallContext,
) -> Result<ServerKey, AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties {
        server_key_type: &'static str,
        uri: String,
    }
    #[derive(Serialize)]
    struct Body {
        properties: Properties,
    }
    let body =
        Body { properties: Properties { server_key_type: AZURE_KEY_VAULT, uri: key.to_string() } };
    let path = id.to_string();
    let request = arm_request(client, Method::PUT, &path, "registering server key", &path);
    let response = client.send_and_wait(request.with_json(&body)?, call).await?;
    Ok(response.json::<WireServerKey>()?.into())
}

/// Reads a server key; `None` when it does not exist.
pub async fn get_server_key(
    client: &AzureClient,
    id: &ServerKeyId,
    call: &CallContext,
) -> Result<Option<ServerKey>, AzureError> {
    let path = id.to_string();
    let request = arm_request(client, Method::GET, &path, "reading server key", &path);
    let response = optional(client.send(request, call)).await?;
    response.map(|response| Ok(response.json::<WireServerKey>()?.into())).transpose()
}

/// Removes a key from a server, waiting for the operation; one already gone counts as removed.
///
/// Azure refuses (409 `AzureKeyVaultKeyInUse`) while the key is the protector.
pub async fn delete_server_key(
    client: &AzureClient,
    id: &ServerKeyId,
    call: &CallContext,
) -> Result<(), AzureError> {
    let path = id.to_string();
    let request = arm_request(client, Method::DELETE, &path, "removing server key", &path);
    ignore_not_found(client.send_and_wait(request, call)).await
}

/// The server's TDE protector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionProtector {
    /// The server key in use (`ServiceManaged` for the built-in one).
    pub server_key_name: String,
    /// `ServiceManaged` or `AzureKeyVault`.
    pub server_key_type: String,
    /// The Key Vault key URI in use.
    pub uri: Option<String>,
    /// The key's thumbprint.
    pub thumbprint: Option<String>,
    /// Whether SQL follows new key versions by itself.
    pub auto_rotation_enabled: Option<bool>,
}

#[derive(Deserialize)]
struct WireProtector {
    #[serde(default)]
    properties: WireProtectorProperties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireProtectorProperties {
    #[serde(default)]
    server_key_name: String,
    #[serde(default)]
    server_key_type: String,
    uri: Option<String>,
    thumbprint: Option<String>,
    auto_rotation_enabled: Option<bool>,
}

impl From<WireProtector> for EncryptionProtector {
    fn from(wire: WireProtector) -> Self {
        let properties = wire.properties;
        Self {
            server_key_name: properties.server_key_name,
            server_key_type: properties.server_key_type,
            uri: properties.uri,
            thumbprint: properties.thumbprint,
            auto_rotation_enabled: properties.auto_rotation_enabled,
        }
    }
}

fn protector_path(server: &SqlServerId) -> String {
    // "current" is the only protector name the API knows.
    format!("{server}/encryptionProtector/current")
}

/// Reads the server's protector; `None` when the server does not exist.
pub async fn get_encryption_protector(
    client: &AzureClient,
    server: &SqlServerId,
    call: &CallContext,
) -> Result<Option<EncryptionProtector>, AzureError> {
    let path = protector_path(server);
    let operation = "reading encryption protector";
    let request = arm_request(client, Method::GET, &path, operation, &server.to_string());
    let response = optional(client.send(request, call)).await?;
    response.map(|response| Ok(response.json::<WireProtector>()?.into())).transpose()
}

/// Makes a registered Key Vault key the server's TDE protector, waiting for the operation.
pub async fn set_encryption_protector(
    client: &AzureClient,
    server: &SqlServerId,
    server_key_name: &str,
    auto_rotation_enabled: bool,
    call: &CallContext,
) -> Result<EncryptionProtector, AzureError> {
    let operation = "setting encryption protector";
    put_protector(
        client,
        server,
        AZURE_KEY_VAULT,
        server_key_name,
        Some(auto_rotation_enabled),
        operation,
        call,
    )
    .await
}

/// Switches the protector back to the service-managed key, waiting for the operation.
///
/// TDE cannot be removed, only switched; this is how a customer-managed key is let go without
/// leaving databases unreadable.
pub async fn revert_encryption_protector_to_service_managed(
    client: &AzureClient,
    server: &SqlServerId,
    call: &CallContext,
) -> Result<EncryptionProtector, AzureError> {
    let operation = "reverting encryption protector to the service-managed key";
    put_protector(client, server, SERVICE_MANAGED, SERVICE_MANAGED, None, operation, call).await
}

async fn put_protector(
    client: &AzureClient,
    server: &SqlServerId,
    server_key_type: &str,
    server_key_name: &str,
    auto_rotation_enabled: Option<bool>,
    operation: &str,
    call: &CallContext,
) -> Result<EncryptionProtector, AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties<'a> {
        server_key_type: &'a str,
        server_key_name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        auto_rotation_enabled: Option<bool>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        properties: Properties<'a>,
    }
    let properties = Properties { server_key_type, server_key_name, auto_rotation_enabled };
    let path = protector_path(server);
    let request = arm_request(client, Method::PUT, &path, operation, &server.to_string());
    let response = client.send_and_wait(request.with_json(&Body { properties })?, call).await?;
    Ok(response.json::<WireProtector>()?.into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{ServerIdentityUpdate, WireServer};
    use crate::azure::client::CallContext;
    use crate::azure::ids::{KeyVaultKeyId, SqlServerId};
    use crate::azure::testing::{FakeCredential, Reply, ScriptedServer, client_for};

    const SERVER: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Sql/servers/sql1";
    const UAMI: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/\
                        userAssignedIdentities/uami1";
    const VERSION: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn identity_types() {
        let update = |system_assigned, users: &[&str]| ServerIdentityUpdate {
            system_assigned,
            user_assigned_identity_ids: users.iter().map(|id| (*id).to_owned()).collect(),
            primary_user_assigned_identity_id: None,
            federated_client_id: None,
        };
        let cases = [
            ("both", update(true, &[UAMI]), "SystemAssigned,UserAssigned"),
            ("system only", update(true, &[]), "SystemAssigned"),
            ("user only", update(false, &[UAMI]), "UserAssigned"),
            ("none", update(false, &[]), "None"),
        ];
        for (name, update, expected) in cases {
            assert_eq!(update.identity_type(), expected, "{name}");
        }
    }

    #[test]
    fn reads_identity_in_any_spelling() {
        let cases = [
            ("no space", "SystemAssigned,UserAssigned", true),
            ("with space", "SystemAssigned, UserAssigned", true),
            ("reversed", "UserAssigned,SystemAssigned", true),
            ("user only", "UserAssigned", false),
        ];
        for (name, identity_type, system_assigned) in cases {
            let body = format!(
                r#"{{"id":"{SERVER}","name":"sql1","location":"westeurope",
                   "identity":{{"type":"{identity_type}","userAssignedIdentities":{{"{UAMI}":
                   {{"principalId":"p-1","clientId":"c-1"}}}}}},
                   "properties":{{"primaryUserAssignedIdentityId":"{UAMI}","federatedClientId":"app-1","state":"Ready"}}}}"#
            );
            let server: super::Server = serde_json::from_str::<WireServer>(&body).unwrap().into();
            let identity = server.identity.unwrap();
            assert_eq!(identity.system_assigned, system_assigned, "{name}");
            assert_eq!(identity.user_assigned[UAMI].principal_id.as_deref(), Some("p-1"), "{name}");
            assert_eq!(server.federated_client_id.as_deref(), Some("app-1"), "{name}");
        }
    }

    #[tokio::test]
    async fn identity_key_and_protector_requests() {
        let server = ScriptedServer::start().await;
        let client = client_for(&server, Arc::new(FakeCredential::default()));
        let call = CallContext::with_timeout(Duration::from_secs(10));
        let server_id = SqlServerId::parse(SERVER).unwrap();
        let key = KeyVaultKeyId::parse(&format!("https://kv1.vault.azure.net/keys/cmk/{VERSION}"))
            .unwrap();
        let key_id = super::server_key_id(&server_id, &key).unwrap();
        let server_body = format!(r#"{{"id":"{SERVER}","name":"sql1","location":"westeurope"}}"#);
        let monitor = server.url("/op");
        let protector = r#"{"name":"current","kind":"azurekeyvault","properties":{
            "serverKeyName":"kv1_cmk_0123456789abcdef0123456789abcdef","serverKeyType":"AzureKeyVault",
            "uri":"https://kv1.vault.azure.net/keys/cmk/0123456789abcdef0123456789abcdef","thumbprint":"AB"}}"#;
        server.script([
            Reply::json(202, "").with_header("Azure-AsyncOperation", &monitor),
            Reply::json(200, r#"{"status":"Succeeded"}"#),
            Reply::json(200, &server_body),
            Reply::json(201, r#"{"name":"kv1_cmk_0123456789abcdef0123456789abcdef","properties":{"serverKeyType":"AzureKeyVault"}}"#),
            Reply::json(200, protector),
            Reply::json(200, r#"{"properties":{"serverKeyName":"ServiceManaged","serverKeyType":"ServiceManaged"}}"#),
        ]);

        let update = ServerIdentityUpdate {
            system_assigned: false,
            user_assigned_identity_ids: vec![UAMI.to_owned()],
            primary_user_assigned_identity_id: Some(UAMI.to_owned()),
            federated_client_id: Some("app-1".to_owned()),
        };
        super::update_server_identity(&client, &server_id, &update, &call).await.unwrap();
        let registered = super::create_server_key(&client, &key_id, &key, &call).await.unwrap();
        assert_eq!(registered.server_key_type, "AzureKeyVault");
        let set =
            super::set_encryption_protector(&client, &server_id, &key_id.key_name, false, &call);
        assert_eq!(set.await.unwrap().thumbprint.as_deref(), Some("AB"));
        let reverted =
            super::revert_encryption_protector_to_service_managed(&client, &server_id, &call);
        assert_eq!(reverted.await.unwrap().server_key_type, "ServiceManaged");

        let requests = server.requests();
        assert_eq!(requests[0].method, "PATCH");
        assert_eq!(
            requests[0].body,
            format!(
                r#"{{"identity":{{"type":"UserAssigned","userAssignedIdentities":{{"{UAMI}":{{}}}}}},"properties":{{"primaryUserAssignedIdentityId":"{UAMI}","federatedClientId":"app-1"}}}}"#
            )
        );
        assert_eq!(requests[2].target, format!("{SERVER}?api-version=2025-01-01"));
        assert_eq!(
            requests[3].target,
            format!("{SERVER}/keys/kv1_cmk_{VERSION}?api-version=2025-01-01")
        );
        assert_eq!(
            requests[3].body,
            format!(
                r#"{{"properties":{{"serverKeyType":"AzureKeyVault","uri":"https://kv1.vault.azure.net/keys/cmk/{VERSION}"}}}}"#
            )
        );
        assert_eq!(
            requests[4].target,
            format!("{SERVER}/encryptionProtector/current?api-version=2025-01-01")
        );
        assert_eq!(
            requests[4].body,
            format!(
                r#"{{"properties":{{"serverKeyType":"AzureKeyVault","serverKeyName":"kv1_cmk_{VERSION}","autoRotationEnabled":false}}}}"#
            )
        );
        assert_eq!(
            requests[5].body,
            r#"{"properties":{"serverKeyType":"ServiceManaged","serverKeyName":"ServiceManaged"}}"#
        );
    }
}
