//! The Key Vault data plane (`https://{vault}.vault.azure.net`, api-version 7.5): keys, their
//! versions, soft delete, wrap and unwrap; and the permission model shared with the SQL key
//! chain check (access policies, or RBAC roles at vault or key scope).
//!
//! Key material is fake: random bytes of the right length as the RSA modulus, and a reversible
//! envelope for wrap/unwrap, so nothing here needs real cryptography. Callers outside the
//! vault's tenant get the 401 challenge naming the right tenant, as Key Vault does. Never logs
//! key material, wrapped values or tokens.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Shared;
use crate::entra::{Audience, Caller, authenticate};
use crate::http::{ApiRequest, field, field_str, json_response, request_id, unix_now};
use crate::state::{
    KeyVersion, ReplicatedKind, Vault, VaultKey, World, new_key_version, random_bytes,
};

/// The data-plane api-version served.
const API_VERSION: &str = "7.5";
/// Key Vault Administrator.
const ADMINISTRATOR: &str = "00482a5a-887f-4fb3-b363-3b7fe8e74483";
/// Key Vault Crypto Officer.
const CRYPTO_OFFICER: &str = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603";
/// Key Vault Crypto User.
const CRYPTO_USER: &str = "12338af0-0e69-4776-bea7-57ae8d297424";
/// Key Vault Crypto Service Encryption User.
const CRYPTO_SERVICE_ENCRYPTION_USER: &str = "e147488a-f6f5-4113-8e2d-b22465e65bf6";
/// Key Vault Reader.
const READER: &str = "21090545-7ca7-4776-b22c-e363652d74d2";
/// Marks our fake wrapped keys.
const WRAP_PREFIX: &[u8] = b"azure-sim-wrap:";

/// A parsed Key Vault key identifier, `https://{vault}.vault.azure.net/keys/{name}[/{version}]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIdentifier {
    /// Vault name (first DNS label).
    pub vault: String,
    /// Key name.
    pub name: String,
    /// Version; empty when versionless.
    pub version: String,
}

impl KeyIdentifier {
    /// Parses a key identifier in any cloud's vault DNS suffix.
    pub fn parse(kid: &str) -> Option<Self> {
        let rest = kid.strip_prefix("https://")?;
        let (host, path) = rest.split_once('/')?;
        let host = host.split(':').next()?.to_ascii_lowercase();
        let vault = [".vault.azure.net", ".vault.usgovcloudapi.net", ".vault.azure.cn"]
            .iter()
            .find_map(|suffix| host.strip_suffix(suffix))?;
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (name, version) = match segments.as_slice() {
            ["keys", name] => (*name, ""),
            ["keys", name, version] => (*name, *version),
            _ => return None,
        };
        let valid_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let valid_version = version.is_empty() || version.chars().all(|c| c.is_ascii_hexdigit());
        (valid_name && valid_version && !vault.is_empty()).then(|| Self {
            vault: vault.to_string(),
            name: name.to_string(),
            version: version.to_string(),
        })
    }
}

/// A key operation checked against access policies or RBAC roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOperation {
    /// Read a key.
    Get,
    /// List keys or versions.
    List,
    /// Create a key or version.
    Create,
    /// Change attributes.
    Update,
    /// Soft-delete.
    Delete,
    /// Recover a deleted key.
    Recover,
    /// Purge a deleted key.
    Purge,
    /// Wrap a key.
    WrapKey,
    /// Unwrap a key.
    UnwrapKey,
}

impl KeyOperation {
    /// The access policy permission name.
    pub fn permission(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Recover => "recover",
            Self::Purge => "purge",
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
        }
    }

    /// The RBAC data action suffix after `Microsoft.KeyVault/vaults/keys/`.
    fn data_action(self) -> &'static str {
        match self {
            Self::Get | Self::List => "read",
            Self::Create => "create/action",
            Self::Update => "write",
            Self::Delete => "delete",
            Self::Recover => "recover/action",
            Self::Purge => "purge/action",
            Self::WrapKey => "wrap/action",
            Self::UnwrapKey => "unwrap/action",
        }
    }
}

/// Whether a built-in role allows a key operation.
fn role_allows(role: &str, operation: KeyOperation) -> bool {
    use KeyOperation::*;
    match role {
        ADMINISTRATOR | CRYPTO_OFFICER => true,
        CRYPTO_USER => matches!(operation, Get | List | Update | WrapKey | UnwrapKey),
        CRYPTO_SERVICE_ENCRYPTION_USER => matches!(operation, Get | List | WrapKey | UnwrapKey),
        READER => matches!(operation, Get | List),
        _ => false,
    }
}

/// Whether `principal` may perform `operation` on key `key_name` (or the vault when empty).
pub fn may(
    world: &World,
    vault: &Vault,
    principal: Uuid,
    key_name: &str,
    operation: KeyOperation,
) -> bool {
    if vault.enable_rbac_authorization {
        let scope = if key_name.is_empty() {
            vault.id.clone()
        } else {
            format!("{}/keys/{key_name}", vault.id)
        };
        return world
            .roles_covering(principal, &scope)
            .iter()
            .any(|assignment| role_allows(&assignment.role_guid(), operation));
    }
    vault
        .access_policies
        .iter()
        .filter(|policy| policy.tenant_id == vault.tenant_id && policy.object_id == principal)
        .filter(|policy| world.replicated(ReplicatedKind::AccessPolicy, policy.granted))
        .flat_map(|policy| policy.keys.iter())
        .any(|granted| {
            granted.eq_ignore_ascii_case(operation.permission())
                || granted.eq_ignore_ascii_case("all")
        })
}

/// A data-plane error answer.
struct VaultError {
    status: StatusCode,
    code: &'static str,
    message: String,
    inner: Option<&'static str>,
    challenge_tenant: Option<Uuid>,
}

impl VaultError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), inner: None, challenge_tenant: None }
    }

    fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }

    fn with_inner(mut self, inner: &'static str) -> Self {
        self.inner = Some(inner);
        self
    }

    fn unauthorized(tenant: Uuid, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message);
        error.challenge_tenant = Some(tenant);
        error
    }

    fn key_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            format!(
                "A key with (name/id) {name} was not found in this key vault. If you recently \
                    deleted this key you may be able to recover it using the correct recovery \
                    command. For help resolving this issue, please see \
                    https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
        )
    }
}

type VaultResult = Result<Value, VaultError>;

/// Serves one data-plane request.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request = match ApiRequest::collect(request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let vault_name = request.host.split('.').next().unwrap_or_default().to_string();
    let result = {
        let mut world = shared.world();
        serve(&shared, &mut world, &vault_name, &request)
    };
    let mut headers = vec![
        ("x-ms-request-id", request_id()),
        ("x-ms-keyvault-service-version", "1.9.0.0".to_string()),
    ];
    match result {
        Ok(body) => json_response(StatusCode::OK, &body, &headers),
        Err(error) => {
            if let Some(tenant) = error.challenge_tenant {
                headers.push((
                    "www-authenticate",
                    format!(
                        "Bearer authorization=\"https://login.windows.net/{tenant}\", \
                        resource=\"https://vault.azure.net\""
                    ),
                ));
            }
            let mut body = json!({"error": {"code": error.code, "message": error.message}});
            if let Some(inner) = error.inner {
                body["error"]["innererror"] = json!({"code": inner});
            }
            json_response(error.status, &body, &headers)
        }
    }
}

fn serve(
    shared: &Shared,
    world: &mut World,
    vault_name: &str,
    request: &ApiRequest,
) -> VaultResult {
    let vault = world.vault(vault_name).ok_or_else(|| {
        VaultError::new(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            format!("The vault '{vault_name}' was not found."),
        )
    })?;
    let tenant = vault.tenant_id;
    match request.query_param("api-version") {
        Some(API_VERSION) => {}
        other => {
            return Err(VaultError::bad_parameter(format!(
                "The specified version ({}) is not recognized. Consider using the latest supported \
                    version ({API_VERSION}).",
                other.unwrap_or_default()
            )));
        }
    }
    let caller = authenticate_vault(shared, request, tenant)?;
    let segments = request.segments();
    let method = &request.method;
    let (operation, key_name) = classify(method, &segments)?;
    check_permission(world, vault_name, &caller, key_name, operation)?;

    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["keys"]) => list_keys(world.vault(vault_name).expect("checked")),
        (Method::POST, ["keys", name, "create"]) => create_key(world, vault_name, name, request),
        (Method::GET, ["keys", name]) => get_key(world, vault_name, name, ""),
        (Method::GET, ["keys", name, "versions"]) => list_versions(world, vault_name, name),
        (Method::GET, ["keys", name, version]) => get_key(world, vault_name, name, version),
        (Method::PATCH, ["keys", name]) => update_key(world, vault_name, name, "", request),
        (Method::PATCH, ["keys", name, version]) => {
            update_key(world, vault_name, name, version, request)
        }
        (Method::DELETE, ["keys", name]) => delete_key(world, vault_name, name),
        (Method::POST, ["keys", name, version, "wrapkey"]) => {
            wrap(world, vault_name, name, version, request)
        }
        (Method::POST, ["keys", name, version, "unwrapkey"]) => {
            unwrap(world, vault_name, name, version, request)
        }
        (Method::GET, ["deletedkeys", name]) => get_deleted(world, vault_name, name),
        (Method::DELETE, ["deletedkeys", name]) => purge(world, vault_name, name),
        (Method::POST, ["deletedkeys", name, "recover"]) => recover(world, vault_name, name),
        _ => Err(VaultError::bad_parameter("The request URI is not supported.")),
    }
}

fn authenticate_vault(
    shared: &Shared,
    request: &ApiRequest,
    tenant: Uuid,
) -> Result<Caller, VaultError> {
    let Some(token) = request.bearer_token() else {
        return Err(VaultError::unauthorized(
            tenant,
            "AKV10000: Request is missing a Bearer or PoP token.",
        ));
    };
    let caller = authenticate(shared, Some(token)).map_err(|error| {
        VaultError::unauthorized(tenant, format!("AKV10022: Invalid token: {error}."))
    })?;
    if caller.audience != Some(Audience::KeyVault) {
        return Err(VaultError::unauthorized(
            tenant,
            "AKV10022: Invalid audience. Expected https://vault.azure.net, found a token for \
                another resource.",
        ));
    }
    if caller.tenant_id != tenant {
        return Err(VaultError::unauthorized(
            tenant,
            format!(
                "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant}/, \
                    https://login.microsoftonline.com/{tenant}/v2.0, found \
                    https://sts.windows.net/{}/.",
                caller.tenant_id
            ),
        ));
    }
    Ok(caller)
}

/// The operation a request needs and the key it touches.
fn classify<'a>(
    method: &Method,
    segments: &[&'a str],
) -> Result<(KeyOperation, &'a str), VaultError> {
    use KeyOperation::*;
    let operation = match (method.clone(), segments) {
        (Method::GET, ["keys"]) => return Ok((List, "")),
        (Method::POST, ["keys", name, "create"]) => return Ok((Create, name)),
        (Method::GET, ["keys", name, "versions"]) => return Ok((List, name)),
        (Method::GET, ["keys", name, ..]) => (Get, *name),
        (Method::PATCH, ["keys", name, ..]) => (Update, *name),
        (Method::DELETE, ["keys", name]) => (Delete, *name),
        (Method::POST, ["keys", name, _, "wrapkey"]) => (WrapKey, *name),
        (Method::POST, ["keys", name, _, "unwrapkey"]) => (UnwrapKey, *name),
        (Method::GET, ["deletedkeys", name]) => (Get, *name),
        (Method::DELETE, ["deletedkeys", name]) => (Purge, *name),
        (Method::POST, ["deletedkeys", name, "recover"]) => (Recover, *name),
        _ => return Err(VaultError::bad_parameter("The request URI is not supported.")),
    };
    Ok(operation)
}

fn check_permission(
    world: &World,
    vault_name: &str,
    caller: &Caller,
    key_name: &str,
    operation: KeyOperation,
) -> Result<(), VaultError> {
    let vault = world.vault(vault_name).expect("checked");
    if may(world, vault, caller.object_id, key_name, operation) {
        return Ok(());
    }
    let who = format!(
        "appid={};oid={};iss=https://sts.windows.net/{}/",
        caller.app_id, caller.object_id, caller.tenant_id
    );
    if vault.enable_rbac_authorization {
        return Err(VaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, \
                    deny assignments or role definitions were changed recently, please observe \
                    propagation time.\r\nCaller: {who}\r\nAction: \
                    'Microsoft.KeyVault/vaults/keys/{}'\r\nResource: \
                    '{}/keys/{key_name}'\r\nAssignment: (not found)\r\nVault: {};location={}\r\n",
                operation.data_action(),
                vault.id.to_ascii_lowercase(),
                vault.name,
                vault.location
            ),
        )
        .with_inner("ForbiddenByRbac"));
    }
    Err(VaultError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "The user, group or application '{who}' does not have keys {} permission on key vault \
                '{};location={}'. For help resolving this issue, please see \
                https://go.microsoft.com/fwlink/?linkid=2125287",
            operation.permission(),
            vault.name,
            vault.location
        ),
    )
    .with_inner("AccessDenied"))
}

/// A key's identifier: versioned, or versionless when `version` is empty.
pub fn key_url(vault: &Vault, name: &str, version: &str) -> String {
    if version.is_empty() {
        return format!("{}keys/{name}", vault.vault_uri());
    }
    format!("{}keys/{name}/{version}", vault.vault_uri())
}

/// The KeyBundle JSON of one version.
pub fn key_bundle(vault: &Vault, key: &VaultKey, version: &KeyVersion) -> Value {
    let kid = key_url(vault, &key.name, &version.version);
    let mut material = json!({"kid": kid, "kty": version.kty, "key_ops": version.key_ops});
    match &version.curve {
        Some(curve) => {
            material["crv"] = json!(curve);
            material["x"] = json!(version.modulus);
            material["y"] = json!(version.modulus);
        }
        None => {
            material["n"] = json!(version.modulus);
            material["e"] = json!("AQAB");
        }
    }
    let mut bundle = json!({"key": material, "attributes": attributes(vault, version)});
    if !version.tags.is_empty() {
        bundle["tags"] = json!(version.tags);
    }
    bundle
}

fn attributes(vault: &Vault, version: &KeyVersion) -> Value {
    let mut attributes = json!({
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": vault.recovery_level(),
        "exportable": false,
    });
    if vault.enable_soft_delete {
        attributes["recoverableDays"] = json!(vault.soft_delete_retention_days);
    }
    if let Some(nbf) = version.not_before {
        attributes["nbf"] = json!(nbf);
    }
    if let Some(exp) = version.expires {
        attributes["exp"] = json!(exp);
    }
    attributes
}

fn live_key<'a>(vault: &'a Vault, name: &str) -> Result<&'a VaultKey, VaultError> {
    vault.live_key(name).ok_or_else(|| VaultError::key_not_found(name))
}

fn list_keys(vault: &Vault) -> VaultResult {
    let values: Vec<Value> = vault
        .keys
        .values()
        .filter(|key| key.deleted.is_none())
        .filter_map(|key| key.latest().map(|latest| (key, latest)))
        .map(|(key, latest)| {
            json!({"kid": key_url(vault, &key.name, ""), "attributes": attributes(vault, latest)})
        })
        .collect();
    Ok(json!({"value": values, "nextLink": null}))
}

fn get_key(world: &World, vault_name: &str, name: &str, version: &str) -> VaultResult {
    let vault = world.vault(vault_name).expect("checked");
    let key = live_key(vault, name)?;
    let found = key
        .version(version)
        .ok_or_else(|| VaultError::key_not_found(&format!("{name}/{version}")))?;
    Ok(key_bundle(vault, key, found))
}

fn list_versions(world: &World, vault_name: &str, name: &str) -> VaultResult {
    let vault = world.vault(vault_name).expect("checked");
    let key = live_key(vault, name)?;
    let values: Vec<Value> = key
        .versions
        .iter()
        .map(|version| {
            let kid = key_url(vault, &key.name, &version.version);
            json!({"kid": kid, "attributes": attributes(vault, version)})
        })
        .collect();
    Ok(json!({"value": values, "nextLink": null}))
}

fn optional_time(attributes: Option<&Value>, name: &str) -> Option<Option<i64>> {
    let value = attributes.and_then(|a| field(a, name))?;
    Some(value.as_i64())
}

fn create_key(
    world: &mut World,
    vault_name: &str,
    name: &str,
    request: &ApiRequest,
) -> VaultResult {
    let valid_name = (1..=127).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_name {
        return Err(VaultError::bad_parameter(format!(
            "The request URI contains an invalid name: {name}"
        )));
    }
    let body = request
        .json_body()
        .map_err(|_| VaultError::bad_parameter("The request body is not valid JSON."))?;
    let kty = field_str(&body, "kty")
        .ok_or_else(|| VaultError::bad_parameter("Property kty is required."))?
        .to_string();
    let (key_size, curve, material_length) = match kty.as_str() {
        "RSA" | "RSA-HSM" => {
            let size = field(&body, "key_size").and_then(Value::as_u64).unwrap_or(2048) as u32;
            if ![2048, 3072, 4096].contains(&size) {
                return Err(VaultError::bad_parameter(format!(
                    "The specified key size {size} is not supported for key type {kty}."
                )));
            }
            (Some(size), None, size as usize / 8)
        }
        "EC" | "EC-HSM" => {
            let curve = field_str(&body, "crv").unwrap_or("P-256").to_string();
            (None, Some(curve), 32)
        }
        "oct" | "oct-HSM" => (Some(256), None, 32),
        other => {
            return Err(VaultError::bad_parameter(format!(
                "The specified key type '{other}' is not valid."
            )));
        }
    };
    let key_ops = match field(&body, "key_ops").and_then(Value::as_array) {
        Some(ops) => ops.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        None => ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let attributes = field(&body, "attributes");
    let now = unix_now();
    let version = KeyVersion {
        version: new_key_version(),
        kty,
        key_size,
        curve,
        key_ops,
        modulus: URL_SAFE_NO_PAD.encode(fake_modulus(material_length)),
        enabled: attributes
            .and_then(|a| field(a, "enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        not_before: optional_time(attributes, "nbf").flatten(),
        expires: optional_time(attributes, "exp").flatten(),
        created: now,
        updated: now,
        tags: field(&body, "tags").and_then(Value::as_object).cloned().unwrap_or_default(),
    };

    let vault = world.vaults.get_mut(&vault_name.to_ascii_lowercase()).expect("checked");
    let key = vault.keys.entry(name.to_ascii_lowercase()).or_insert_with(|| VaultKey {
        name: name.to_string(),
        versions: Vec::new(),
        deleted: None,
    });
    if key.deleted.is_some() {
        return Err(VaultError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Key {name} is currently in a deleted but recoverable state, and its name \
                cannot be reused; in this state, the key can only be recovered or purged."
            ),
        )
        .with_inner("ObjectIsDeletedButRecoverable"));
    }
    key.versions.push(version);
    let vault = world.vault(vault_name).expect("checked");
    let key = vault.live_key(name).expect("just created");
    Ok(key_bundle(vault, key, key.latest().expect("just created")))
}

fn update_key(
    world: &mut World,
    vault_name: &str,
    name: &str,
    version: &str,
    request: &ApiRequest,
) -> VaultResult {
    let body = request
        .json_body()
        .map_err(|_| VaultError::bad_parameter("The request body is not valid JSON."))?;
    let attributes = field(&body, "attributes");
    let vault = world.vaults.get_mut(&vault_name.to_ascii_lowercase()).expect("checked");
    let key = vault
        .keys
        .get_mut(&name.to_ascii_lowercase())
        .filter(|key| key.deleted.is_none())
        .ok_or_else(|| VaultError::key_not_found(name))?;
    let target = if version.is_empty() {
        key.versions.last_mut()
    } else {
        key.versions.iter_mut().find(|candidate| candidate.version.eq_ignore_ascii_case(version))
    }
    .ok_or_else(|| VaultError::key_not_found(&format!("{name}/{version}")))?;

    if let Some(enabled) = attributes.and_then(|a| field(a, "enabled")).and_then(Value::as_bool) {
        target.enabled = enabled;
    }
    if let Some(nbf) = optional_time(attributes, "nbf") {
        target.not_before = nbf;
    }
    if let Some(exp) = optional_time(attributes, "exp") {
        target.expires = exp;
    }
    if let Some(ops) = field(&body, "key_ops").and_then(Value::as_array) {
        target.key_ops = ops.iter().filter_map(Value::as_str).map(str::to_string).collect();
    }
    if let Some(tags) = field(&body, "tags").and_then(Value::as_object) {
        target.tags = tags.clone();
    }
    target.updated = unix_now();
    let updated_version = target.version.clone();

    let vault = world.vault(vault_name).expect("checked");
    let key = vault.live_key(name).expect("checked");
    Ok(key_bundle(vault, key, key.version(&updated_version).expect("checked")))
}

fn deleted_bundle(vault: &Vault, key: &VaultKey) -> Value {
    let Some(latest) = key.latest() else { return json!({}) };
    let mut bundle = key_bundle(vault, key, latest);
    let deleted = key.deleted.unwrap_or_else(unix_now);
    bundle["recoveryId"] = json!(format!("{}deletedkeys/{}", vault.vault_uri(), key.name));
    bundle["deletedDate"] = json!(deleted);
    bundle["scheduledPurgeDate"] =
        json!(deleted + i64::from(vault.soft_delete_retention_days) * 86_400);
    bundle
}

fn delete_key(world: &mut World, vault_name: &str, name: &str) -> VaultResult {
    let vault = world.vaults.get_mut(&vault_name.to_ascii_lowercase()).expect("checked");
    let lowered = name.to_ascii_lowercase();
    if vault.live_key(name).is_none() {
        return Err(VaultError::key_not_found(name));
    }
    if !vault.enable_soft_delete {
        let key = vault.keys.remove(&lowered).expect("checked");
        return Ok(key_bundle(vault, &key, key.latest().expect("versions")));
    }
    let key = vault.keys.get_mut(&lowered).expect("checked");
    key.deleted = Some(unix_now());
    let vault = world.vault(vault_name).expect("checked");
    Ok(deleted_bundle(vault, &vault.keys[&lowered]))
}

fn deleted_key<'a>(vault: &'a Vault, name: &str) -> Result<&'a VaultKey, VaultError> {
    vault.keys.get(&name.to_ascii_lowercase()).filter(|key| key.deleted.is_some()).ok_or_else(
        || {
            VaultError::new(
                StatusCode::NOT_FOUND,
                "KeyNotFound",
                format!("Deleted Key not found: {name}"),
            )
        },
    )
}

fn get_deleted(world: &World, vault_name: &str, name: &str) -> VaultResult {
    let vault = world.vault(vault_name).expect("checked");
    Ok(deleted_bundle(vault, deleted_key(vault, name)?))
}

fn purge(world: &mut World, vault_name: &str, name: &str) -> VaultResult {
    let vault = world.vaults.get_mut(&vault_name.to_ascii_lowercase()).expect("checked");
    deleted_key(vault, name)?;
    if vault.enable_purge_protection {
        return Err(VaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation \"purge\" is not allowed because purge protection is enabled for this \
                vault. Key Vault service will automatically purge it after the retention period \
                has passed.",
        ));
    }
    vault.keys.remove(&name.to_ascii_lowercase());
    Ok(Value::Null)
}

fn recover(world: &mut World, vault_name: &str, name: &str) -> VaultResult {
    let vault = world.vaults.get_mut(&vault_name.to_ascii_lowercase()).expect("checked");
    deleted_key(vault, name)?;
    let key = vault.keys.get_mut(&name.to_ascii_lowercase()).expect("checked");
    key.deleted = None;
    let vault = world.vault(vault_name).expect("checked");
    let key = vault.live_key(name).expect("recovered");
    Ok(key_bundle(vault, key, key.latest().expect("versions")))
}

/// Finds a usable version for wrap/unwrap, or the Key Vault error for it.
fn crypto_version<'a>(
    vault: &'a Vault,
    name: &str,
    version: &str,
    operation: &str,
) -> Result<(&'a VaultKey, &'a KeyVersion), VaultError> {
    let key = live_key(vault, name)?;
    let found = key
        .version(version)
        .ok_or_else(|| VaultError::key_not_found(&format!("{name}/{version}")))?;
    if !found.enabled {
        return Err(VaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("Operation {operation} is not allowed on a disabled key."),
        )
        .with_inner("KeyDisabled"));
    }
    if !found.usable_at(unix_now()) {
        return Err(VaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("Operation {operation} is not allowed on an expired or not yet active key."),
        )
        .with_inner("KeyExpiredOrNotYetValid"));
    }
    if !found.key_ops.iter().any(|op| op.eq_ignore_ascii_case(operation)) {
        return Err(VaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("Operation {operation} is not permitted on this key."),
        )
        .with_inner("KeyOperationForbidden"));
    }
    Ok((key, found))
}

fn crypto_input(request: &ApiRequest) -> Result<Vec<u8>, VaultError> {
    let body = request
        .json_body()
        .map_err(|_| VaultError::bad_parameter("The request body is not valid JSON."))?;
    let algorithm = field_str(&body, "alg").unwrap_or_default();
    if !["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"].contains(&algorithm) {
        return Err(VaultError::bad_parameter(format!("Invalid algorithm '{algorithm}'.")));
    }
    let value = field_str(&body, "value")
        .ok_or_else(|| VaultError::bad_parameter("Property value is required."))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| VaultError::bad_parameter("Property value is not base64url."))
}

fn wrap(
    world: &World,
    vault_name: &str,
    name: &str,
    version: &str,
    request: &ApiRequest,
) -> VaultResult {
    let vault = world.vault(vault_name).expect("checked");
    let (key, found) = crypto_version(vault, name, version, "wrapKey")?;
    let plain = crypto_input(request)?;
    let mut wrapped = WRAP_PREFIX.to_vec();
    wrapped.extend_from_slice(found.version.as_bytes());
    wrapped.extend(plain.iter().map(|byte| byte ^ 0x5a));
    Ok(json!({
        "kid": key_url(vault, &key.name, &found.version),
        "value": URL_SAFE_NO_PAD.encode(wrapped),
    }))
}

fn unwrap(
    world: &World,
    vault_name: &str,
    name: &str,
    version: &str,
    request: &ApiRequest,
) -> VaultResult {
    let vault = world.vault(vault_name).expect("checked");
    let (key, found) = crypto_version(vault, name, version, "unwrapKey")?;
    let wrapped = crypto_input(request)?;
    let header_length = WRAP_PREFIX.len() + found.version.len();
    let matches = wrapped.len() >= header_length
        && wrapped.starts_with(WRAP_PREFIX)
        && &wrapped[WRAP_PREFIX.len()..header_length] == found.version.as_bytes();
    if !matches {
        return Err(VaultError::bad_parameter(
            "The wrapped key was not produced by this key version.",
        ));
    }
    let plain: Vec<u8> = wrapped[header_length..].iter().map(|byte| byte ^ 0x5a).collect();
    Ok(json!({
        "kid": key_url(vault, &key.name, &found.version),
        "value": URL_SAFE_NO_PAD.encode(plain),
    }))
}

/// Random bytes shaped like an RSA modulus of `length` bytes: its top bit is set, as in every
/// real modulus of that size, so the size a client reads back is the size that was asked for.
fn fake_modulus(length: usize) -> Vec<u8> {
    let mut modulus = random_bytes(length);
    if let Some(first) = modulus.first_mut() {
        *first |= 0x80;
    }
    modulus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_identifier_cases() {
        let parsed = |vault: &str, name: &str, version: &str| {
            Some(KeyIdentifier { vault: vault.into(), name: name.into(), version: version.into() })
        };
        let cases = [
            (
                "versioned",
                "https://kv.vault.azure.net/keys/k1/0123abcd",
                parsed("kv", "k1", "0123abcd"),
            ),
            ("versionless", "https://kv.vault.azure.net/keys/k1", parsed("kv", "k1", "")),
            ("trailing slash", "https://kv.vault.azure.net/keys/k1/", parsed("kv", "k1", "")),
            ("port", "https://kv.vault.azure.net:443/keys/k1/ab", parsed("kv", "k1", "ab")),
            ("china", "https://kv.vault.azure.cn/keys/k1/ab", parsed("kv", "k1", "ab")),
            ("secret", "https://kv.vault.azure.net/secrets/k1/ab", None),
            ("http", "http://kv.vault.azure.net/keys/k1/ab", None),
            ("other host", "https://kv.example.com/keys/k1/ab", None),
            ("bad version", "https://kv.vault.azure.net/keys/k1/xyz", None),
        ];
        for (name, kid, expected) in cases {
            assert_eq!(KeyIdentifier::parse(kid), expected, "{name}");
        }
    }

    #[test]
    fn role_cases() {
        use KeyOperation::*;
        let cases = [
            ("encryption user wraps", CRYPTO_SERVICE_ENCRYPTION_USER, WrapKey, true),
            ("encryption user cannot create", CRYPTO_SERVICE_ENCRYPTION_USER, Create, false),
            ("administrator creates", ADMINISTRATOR, Create, true),
            ("reader cannot unwrap", READER, UnwrapKey, false),
            ("owner has no data access", "8e3af657-a8ff-443b-a75c-2fe8c4bcb635", Get, false),
        ];
        for (name, role, operation, expected) in cases {
            assert_eq!(role_allows(role, operation), expected, "{name}");
        }
    }
}
