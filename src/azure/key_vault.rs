//! Key Vault: the ARM vault (permission model, soft delete, access policies) and the data
//! plane's keys.
//!
//! This module owns both wire shapes. It must never send a token to a host outside the
//! cloud's Key Vault DNS suffix (a key id is user input, and a Key Vault token opens the
//! customer's vaults), and never read or log key material beyond the public modulus size.

use std::collections::BTreeMap;

use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::azure::client::{
    ApiRequest, Audience, AzureClient, CallContext, ignore_not_found, optional,
};
use crate::azure::error::AzureError;
use crate::azure::ids::{KeyVaultId, KeyVaultKeyId};

/// The ARM api-version for Microsoft.KeyVault.
pub const ARM_API_VERSION: &str = "2025-05-01";

/// The data plane api-version.
pub const DATA_PLANE_API_VERSION: &str = "7.5";

/// The key permissions Azure SQL needs on a TDE protector (camelCase, as Key Vault spells them).
pub const TDE_KEY_PERMISSIONS: [&str; 3] = ["get", "wrapKey", "unwrapKey"];

/// A vault as ARM reports it: what decides whether it can hold a TDE protector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vault {
    /// The ARM id.
    pub id: String,
    /// The vault's name.
    pub name: String,
    /// The Azure region.
    pub location: String,
    /// The tenant whose identities the vault trusts.
    pub tenant_id: String,
    /// The data plane URI, e.g. `https://contoso.vault.azure.net/`.
    pub vault_uri: String,
    /// Soft delete; `None` when ARM omits it (current api-versions always enable it).
    pub enable_soft_delete: Option<bool>,
    /// Purge protection; `None` when never enabled.
    pub enable_purge_protection: Option<bool>,
    /// `true` when the vault uses Azure RBAC instead of access policies.
    pub enable_rbac_authorization: Option<bool>,
    /// The access policies (ignored by Key Vault when RBAC is on).
    pub access_policies: Vec<AccessPolicy>,
}

/// One access policy entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    /// The vault's tenant.
    pub tenant_id: String,
    /// The object id granted (here: a service principal's).
    pub object_id: String,
    /// Only for compound identities; not used here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The permissions granted.
    #[serde(default)]
    pub permissions: Permissions,
}

/// Permissions of an access policy, per object type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// Key permissions, e.g. `get`, `wrapKey`, `unwrapKey`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Secret permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Certificate permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    /// Storage permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireVault {
    id: String,
    name: String,
    #[serde(default)]
    location: String,
    properties: WireVaultProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireVaultProperties {
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    vault_uri: Option<String>,
    enable_soft_delete: Option<bool>,
    enable_purge_protection: Option<bool>,
    enable_rbac_authorization: Option<bool>,
    #[serde(default)]
    access_policies: Option<Vec<AccessPolicy>>,
}

impl From<WireVault> for Vault {
    fn from(wire: WireVault) -> Self {
        let properties = wire.properties;
        Self {
            id: wire.id,
            name: wire.name,
            location: wire.location,
            tenant_id: properties.tenant_id,
            vault_uri: properties.vault_uri.unwrap_or_default(),
            enable_soft_delete: properties.enable_soft_delete,
            enable_purge_protection: properties.enable_purge_protection,
            enable_rbac_authorization: properties.enable_rbac_authorization,
            access_policies: properties.access_policies.unwrap_or_default(),
        }
    }
}

/// Reads a vault; `None` when it does not exist.
pub async fn get_vault(
    client: &AzureClient,
    id: &KeyVaultId,
    call: &CallContext,
) -> Result<Option<Vault>, AzureError> {
    let url = client.arm_url(&id.to_string(), ARM_API_VERSION);
    let request = ApiRequest::new(
        Audience::ResourceManager,
        Method::GET,
        url,
        "reading key vault",
        id.to_string(),
    );
    let response = optional(client.send(request, call)).await?;
    response.map(|response| Ok(response.json::<WireVault>()?.into())).transpose()
}

/// Every vault of a subscription, for finding a vault from its data-plane URI.
pub async fn list_vaults(
    client: &AzureClient,
    subscription_id: &str,
    call: &CallContext,
) -> Result<Vec<Vault>, AzureError> {
    let path = format!("/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/vaults");
    let url = client.arm_url(&path, ARM_API_VERSION);
    let request =
        ApiRequest::new(Audience::ResourceManager, Method::GET, url, "listing key vaults", path);
    let vaults: Vec<WireVault> = client.list_all(request, call).await?;
    Ok(vaults.into_iter().map(Vault::from).collect())
}

/// Adds (merges) one access policy entry to a vault.
pub async fn add_access_policy(
    client: &AzureClient,
    id: &KeyVaultId,
    policy: &AccessPolicy,
    call: &CallContext,
) -> Result<(), AzureError> {
    change_access_policy(client, id, "add", policy, "adding key vault access policy", call).await
}

/// Removes the given permissions of one access policy entry from a vault.
pub async fn remove_access_policy(
    client: &AzureClient,
    id: &KeyVaultId,
    policy: &AccessPolicy,
    call: &CallContext,
) -> Result<(), AzureError> {
    let operation = "removing key vault access policy";
    change_access_policy(client, id, "remove", policy, operation, call).await
}

async fn change_access_policy(
    client: &AzureClient,
    id: &KeyVaultId,
    operation_kind: &str,
    policy: &AccessPolicy,
    operation: &str,
    call: &CallContext,
) -> Result<(), AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties<'a> {
        access_policies: [&'a AccessPolicy; 1],
    }
    #[derive(Serialize)]
    struct Body<'a> {
        properties: Properties<'a>,
    }
    let path = format!("{id}/accessPolicies/{operation_kind}");
    let url = client.arm_url(&path, ARM_API_VERSION);
    let body = Body { properties: Properties { access_policies: [policy] } };
    let request =
        ApiRequest::new(Audience::ResourceManager, Method::PUT, url, operation, id.to_string());
    client.send(request.with_json(&body)?, call).await?;
    Ok(())
}

/// A key as the data plane reports it (public parts only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The versioned key identifier.
    pub id: KeyVaultKeyId,
    /// `RSA`, `RSA-HSM`, `EC`, ...
    pub key_type: String,
    /// RSA modulus size in bits, computed from the public modulus.
    pub key_size: Option<u32>,
    /// Permitted operations.
    pub key_ops: Vec<String>,
    /// Whether the key can be used.
    pub enabled: bool,
    /// Not valid before (unix seconds).
    pub not_before: Option<i64>,
    /// Expiry (unix seconds).
    pub expires: Option<i64>,
    /// Creation time (unix seconds).
    pub created: Option<i64>,
    /// The vault's recovery level, e.g. `Recoverable` (purge protection on).
    pub recovery_level: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A key version in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    /// The versioned key identifier.
    pub id: KeyVaultKeyId,
    /// Whether the version can be used.
    pub enabled: bool,
    /// Expiry (unix seconds).
    pub expires: Option<i64>,
    /// Creation time (unix seconds).
    pub created: Option<i64>,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateKey {
    /// `RSA` or `RSA-HSM`.
    #[serde(rename = "kty")]
    pub key_type: String,
    /// 2048 or 3072 for TDE.
    pub key_size: u32,
    /// Permitted operations; `None` lets Key Vault allow all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// Attributes.
    pub attributes: KeyAttributesUpdate,
}

/// Attributes to set on create or update; `None` fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyAttributesUpdate {
    /// Enable or disable the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Expiry (unix seconds).
    #[serde(rename = "exp", skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

#[derive(Deserialize)]
struct WireKeyBundle {
    key: WireJsonWebKey,
    #[serde(default)]
    attributes: WireKeyAttributes,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct WireJsonWebKey {
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    key_ops: Vec<String>,
    #[serde(default)]
    n: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireKeyAttributes {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: Option<i64>,
    recovery_level: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Deserialize)]
struct WireKeyItem {
    kid: String,
    #[serde(default)]
    attributes: WireKeyAttributes,
}

/// The data plane base URL of a vault host, refused unless it is a Key Vault of our cloud.
fn data_plane_url(
    client: &AzureClient,
    host: &str,
    path: &str,
    operation: &str,
) -> Result<Url, AzureError> {
    let suffix = &client.endpoints().key_vault_dns_suffix;
    let host_name = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let is_vault_host = host_name.ends_with(&format!(".{suffix}"));
    let url = Url::parse(&format!("https://{host}{path}")).ok().filter(|_| is_vault_host);
    let mut url = url.ok_or_else(|| AzureError::InvalidRequest {
        operation: operation.to_owned(),
        resource: host.to_owned(),
        detail: format!(
            "{host} is not a Key Vault host of the {} cloud (*.{suffix}); not sending a Key \
             Vault token there",
            client.cloud()
        ),
    })?;
    url.query_pairs_mut().append_pair("api-version", DATA_PLANE_API_VERSION);
    Ok(url)
}

/// The host of a vault URI such as `https://contoso.vault.azure.net/`.
fn vault_host(vault_uri: &str) -> String {
    let parsed = Url::parse(vault_uri.trim()).ok();
    let host = parsed.as_ref().and_then(|url| url.host_str().map(str::to_owned));
    match (host, parsed.and_then(|url| url.port())) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host,
        (None, _) => vault_uri.trim().trim_end_matches('/').to_owned(),
    }
}

fn key_request(
    client: &AzureClient,
    method: Method,
    host: &str,
    path: &str,
    operation: &str,
) -> Result<ApiRequest, AzureError> {
    let url = data_plane_url(client, host, path, operation)?;
    let resource = format!("https://{host}{path}");
    Ok(ApiRequest::new(Audience::KeyVault, method, url, operation, resource))
}

/// Creates a key, or a new version of it if the name exists.
pub async fn create_key(
    client: &AzureClient,
    vault_uri: &str,
    name: &str,
    parameters: &CreateKey,
    call: &CallContext,
) -> Result<Key, AzureError> {
    let host = vault_host(vault_uri);
    let path = format!("/keys/{name}/create");
    let request = key_request(client, Method::POST, &host, &path, "creating key")?;
    let response = client.send(request.with_json(parameters)?, call).await?;
    key_from_bundle(response.json()?, "creating key")
}

/// Reads a key: the given version, or the latest for a versionless id. `None` when absent.
pub async fn get_key(
    client: &AzureClient,
    key: &KeyVaultKeyId,
    call: &CallContext,
) -> Result<Option<Key>, AzureError> {
    let path = key_path(key);
    let request = key_request(client, Method::GET, &key.host, &path, "reading key")?;
    let Some(response) = optional(client.send(request, call)).await? else {
        return Ok(None);
    };
    key_from_bundle(response.json()?, "reading key").map(Some)
}

/// Updates attributes of a key version (or the latest version for a versionless id).
pub async fn update_key(
    client: &AzureClient,
    key: &KeyVaultKeyId,
    attributes: &KeyAttributesUpdate,
    call: &CallContext,
) -> Result<Key, AzureError> {
    #[derive(Serialize)]
    struct Body<'a> {
        attributes: &'a KeyAttributesUpdate,
    }
    let path = key_path(key);
    let request = key_request(client, Method::PATCH, &key.host, &path, "updating key")?;
    let response = client.send(request.with_json(&Body { attributes })?, call).await?;
    key_from_bundle(response.json()?, "updating key")
}

/// Deletes a key with all its versions (soft delete); one already gone counts as deleted.
pub async fn delete_key(
    client: &AzureClient,
    key: &KeyVaultKeyId,
    call: &CallContext,
) -> Result<(), AzureError> {
    let path = format!("/keys/{}", key.name);
    let request = key_request(client, Method::DELETE, &key.host, &path, "deleting key")?;
    ignore_not_found(client.send(request, call)).await
}

/// Lists every version of a key.
pub async fn list_key_versions(
    client: &AzureClient,
    key: &KeyVaultKeyId,
    call: &CallContext,
) -> Result<Vec<KeyVersion>, AzureError> {
    let operation = "listing key versions";
    let path = format!("/keys/{}/versions", key.name);
    let mut request = key_request(client, Method::GET, &key.host, &path, operation)?;
    request = request.with_query("maxresults", "25");
    let items: Vec<WireKeyItem> = client.list_all(request, call).await?;
    items
        .into_iter()
        .map(|item| {
            let id = parse_kid(&item.kid, operation)?;
            let attributes = item.attributes;
            let (enabled, expires, created) =
                (attributes.enabled, attributes.exp, attributes.created);
            Ok(KeyVersion { id, enabled, expires, created })
        })
        .collect()
}

fn key_path(key: &KeyVaultKeyId) -> String {
    match &key.version {
        Some(version) => format!("/keys/{}/{version}", key.name),
        None => format!("/keys/{}", key.name),
    }
}

fn parse_kid(kid: &str, operation: &str) -> Result<KeyVaultKeyId, AzureError> {
    KeyVaultKeyId::parse(kid).map_err(|error| AzureError::Decode {
        operation: operation.to_owned(),
        resource: kid.to_owned(),
        detail: error.to_string(),
    })
}

fn key_from_bundle(bundle: WireKeyBundle, operation: &str) -> Result<Key, AzureError> {
    let id = parse_kid(&bundle.key.kid, operation)?;
    let attributes = bundle.attributes;
    Ok(Key {
        id,
        key_type: bundle.key.kty,
        key_size: bundle.key.n.as_deref().and_then(rsa_modulus_bits),
        key_ops: bundle.key.key_ops,
        enabled: attributes.enabled,
        not_before: attributes.nbf,
        expires: attributes.exp,
        created: attributes.created,
        recovery_level: attributes.recovery_level,
        tags: bundle.tags.unwrap_or_default(),
    })
}

/// The size in bits of a base64url RSA modulus: its bit length, leading zeros excluded.
fn rsa_modulus_bits(modulus: &str) -> Option<u32> {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine.decode(modulus.trim_end_matches('=')).ok()?;
    let significant: Vec<u8> = bytes.into_iter().skip_while(|byte| *byte == 0).collect();
    let first = significant.first()?;
    let bits = significant.len() * 8 - first.leading_zeros() as usize;
    u32::try_from(bits).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine;

    use super::{data_plane_url, key_path, rsa_modulus_bits, vault_host};
    use crate::azure::ids::KeyVaultKeyId;
    use crate::azure::testing::{FakeCredential, ScriptedServer, client_for};

    #[test]
    fn modulus_sizes() {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let cases = [
            (
                "2048 with leading zero",
                engine.encode([&[0u8][..], &[0xff; 256]].concat()),
                Some(2048),
            ),
            ("3072", engine.encode([0xc1; 384]), Some(3072)),
            ("padded", format!("{}==", engine.encode([0xff; 4])), Some(32)),
            ("not base64", "***".to_owned(), None),
        ];
        for (name, modulus, expected) in cases {
            assert_eq!(rsa_modulus_bits(&modulus), expected, "{name}");
        }
    }

    #[test]
    fn key_paths() {
        let version = "0123456789abcdef0123456789abcdef";
        let versioned =
            KeyVaultKeyId::parse(&format!("https://kv.vault.azure.net/keys/k/{version}"));
        assert_eq!(key_path(&versioned.unwrap()), format!("/keys/k/{version}"));
        let versionless = KeyVaultKeyId::parse("https://kv.vault.azure.net/keys/k").unwrap();
        assert_eq!(key_path(&versionless), "/keys/k");
        assert_eq!(vault_host("https://KV.vault.azure.net/"), "kv.vault.azure.net");
    }

    #[tokio::test]
    async fn tokens_only_go_to_key_vault_hosts_of_the_cloud() {
        let server = ScriptedServer::start().await;
        let client = client_for(&server, Arc::new(FakeCredential::default()));
        let cases = [
            ("vault", "kv.vault.azure.net", true),
            ("managed hsm elsewhere", "hsm.managedhsm.azure.net", false),
            ("look-alike", "kv.vault.azure.net.evil.example", false),
            ("other cloud", "kv.vault.azure.cn", false),
            ("suffix without label", "vault.azure.net", false),
        ];
        for (name, host, allowed) in cases {
            let url = data_plane_url(&client, host, "/keys/k", "reading key");
            assert_eq!(url.is_ok(), allowed, "{name}: {url:?}");
            if let Ok(url) = url {
                assert_eq!(url.as_str(), format!("https://{host}/keys/k?api-version=7.5"));
            }
        }
    }
}
