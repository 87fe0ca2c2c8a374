//! Microsoft.KeyVault/vaults (2025-05-01): read, create or update, patch, and the
//! `accessPolicies/{add|replace|remove}` operations.
//!
//! Vault names are global; purge protection cannot be turned off once on; `add` merges
//! permissions into the entry for the same tenant and object, `remove` takes listed permissions
//! away and drops entries left empty. Never touches keys (that is the data plane's job).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ArmContext, ArmError, ArmReply, ArmResult, group_id, method_not_allowed};
use crate::http::{field, field_bool, field_str};
use crate::state::{AccessPolicy, Vault, World};

const TYPE: &str = "Microsoft.KeyVault/vaults";

/// Routes `…/providers/Microsoft.KeyVault/{rest}`.
pub fn handle(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    rest: &[&str],
) -> ArmResult {
    let method = &context.request.method;
    match rest {
        [kind, name] if kind.eq_ignore_ascii_case("vaults") => match *method {
            Method::GET => get(world, context, group, name),
            Method::PUT => put(world, context, group, name, false),
            Method::PATCH => put(world, context, group, name, true),
            _ => Err(method_not_allowed()),
        },
        [kind, name, policies, operation]
            if kind.eq_ignore_ascii_case("vaults")
                && policies.eq_ignore_ascii_case("accessPolicies") =>
        {
            if *method != Method::PUT {
                return Err(method_not_allowed());
            }
            update_access_policies(world, context, group, name, operation)
        }
        _ => Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            "The resource type could not be found in the namespace 'Microsoft.KeyVault' for api \
                version '2025-05-01'.",
        )),
    }
}

/// `GET /subscriptions/{s}/providers/Microsoft.KeyVault/vaults`: every vault of the subscription.
pub fn list_in_subscription(world: &mut World, context: &ArmContext<'_>, kind: &str) -> ArmResult {
    if !kind.eq_ignore_ascii_case("vaults") {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The resource type '{kind}' could not be found in the namespace 'Microsoft.KeyVault'."
            ),
        ));
    }
    if context.request.method != Method::GET {
        return Err(method_not_allowed());
    }
    let prefix = format!("/subscriptions/{}/", context.subscription).to_ascii_lowercase();
    let vaults: Vec<Value> = world
        .vaults
        .values()
        .filter(|vault| vault.id.to_ascii_lowercase().starts_with(&prefix))
        .map(vault_json)
        .collect();
    Ok(ArmReply::ok(json!({ "value": vaults })))
}

fn policy_json(policy: &AccessPolicy) -> Value {
    let mut entry = json!({
        "tenantId": policy.tenant_id,
        "objectId": policy.object_id,
        "permissions": {
            "keys": policy.keys,
            "secrets": policy.secrets,
            "certificates": policy.certificates,
        },
    });
    if !policy.storage.is_empty() {
        entry["permissions"]["storage"] = json!(policy.storage);
    }
    if let Some(application) = policy.application_id {
        entry["applicationId"] = json!(application);
    }
    entry
}

/// The vault's ARM JSON, as in the spec's getVault example.
pub fn vault_json(vault: &Vault) -> Value {
    let policies: Vec<Value> = vault.access_policies.iter().map(policy_json).collect();
    json!({
        "id": vault.id,
        "name": vault.name,
        "type": TYPE,
        "location": vault.location,
        "tags": vault.tags,
        "properties": {
            "sku": {"family": "A", "name": vault.sku},
            "tenantId": vault.tenant_id,
            "accessPolicies": policies,
            "enabledForDeployment": false,
            "enabledForDiskEncryption": false,
            "enabledForTemplateDeployment": false,
            "enableSoftDelete": vault.enable_soft_delete,
            "softDeleteRetentionInDays": vault.soft_delete_retention_days,
            "enableRbacAuthorization": vault.enable_rbac_authorization,
            "enablePurgeProtection": vault.enable_purge_protection,
            "vaultUri": vault.vault_uri(),
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
        },
    })
}

/// The vault addressed by the path, which must live in that subscription and group.
fn vault_in_group<'a>(
    world: &'a World,
    context: &ArmContext<'_>,
    group: &str,
    name: &str,
) -> Option<&'a Vault> {
    let prefix = group_id(world, context.subscription, group).to_ascii_lowercase();
    world
        .vault(name)
        .filter(|vault| vault.id.to_ascii_lowercase().starts_with(&format!("{prefix}/")))
}

fn get(world: &World, context: &ArmContext<'_>, group: &str, name: &str) -> ArmResult {
    let vault = vault_in_group(world, context, group, name)
        .ok_or_else(|| ArmError::resource_not_found(TYPE, name, group))?;
    Ok(ArmReply::ok(vault_json(vault)))
}

/// Key Vault's naming rule: 3–24 characters, letters, digits and dashes, starting with a letter.
fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn put(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    name: &str,
    patch: bool,
) -> ArmResult {
    let body = context.body()?;
    let properties = field(&body, "properties").cloned().unwrap_or_else(|| json!({}));
    let existing = vault_in_group(world, context, group, name).cloned();
    if existing.is_none() && world.vault(name).is_some() {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "VaultAlreadyExists",
            format!(
                "The vault name '{name}' is already in use. Vault names are globally unique so it \
                    is possible that the name is already taken."
            ),
        ));
    }
    if existing.is_none() && patch {
        return Err(ArmError::resource_not_found(TYPE, name, group));
    }
    let mut vault = match existing {
        Some(vault) => vault,
        None => new_vault(world, context, group, name, &body, &properties)?,
    };
    let created = !world.vaults.contains_key(&name.to_ascii_lowercase());
    apply_properties(&mut vault, &body, &properties)?;

    let reply = vault_json(&vault);
    world.vaults.insert(name.to_ascii_lowercase(), vault);
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(ArmReply::Json(status, reply, Vec::new()))
}

fn new_vault(
    world: &World,
    context: &ArmContext<'_>,
    group: &str,
    name: &str,
    body: &Value,
    properties: &Value,
) -> Result<Vault, ArmError> {
    if !valid_vault_name(name) {
        return Err(ArmError::bad_request(
            "VaultNameNotValid",
            format!(
                "The vault name '{name}' is invalid. A vault's name must be between 3-24 \
                    alphanumeric characters. The name must begin with a letter, end with a letter \
                    or digit, and not contain consecutive hyphens."
            ),
        ));
    }
    let location = field_str(body, "location").ok_or_else(|| {
        ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )
    })?;
    let tenant = field_str(properties, "tenantId")
        .and_then(|tenant| Uuid::parse_str(tenant).ok())
        .ok_or_else(|| {
            ArmError::bad_request(
                "BadRequest",
                "The parameter properties.tenantId is required and must be a GUID.",
            )
        })?;
    if field(properties, "sku").is_none() {
        return Err(ArmError::bad_request(
            "BadRequest",
            "The parameter properties.sku is required.",
        ));
    }
    Ok(Vault {
        id: format!("{}/providers/{TYPE}/{name}", group_id(world, context.subscription, group)),
        resource_group: group.to_string(),
        name: name.to_string(),
        location: location.to_string(),
        tags: Map::new(),
        tenant_id: tenant,
        sku: "standard".into(),
        access_policies: Vec::new(),
        enable_soft_delete: true,
        enable_purge_protection: false,
        enable_rbac_authorization: false,
        soft_delete_retention_days: 90,
        keys: BTreeMap::new(),
    })
}

fn apply_properties(vault: &mut Vault, body: &Value, properties: &Value) -> Result<(), ArmError> {
    if let Some(tags) = field(body, "tags").and_then(Value::as_object) {
        vault.tags = tags.clone();
    }
    if let Some(sku) = field(properties, "sku").and_then(|sku| field_str(sku, "name")) {
        vault.sku = sku.to_ascii_lowercase();
    }
    if let Some(tenant) = field_str(properties, "tenantId").and_then(|t| Uuid::parse_str(t).ok()) {
        vault.tenant_id = tenant;
    }
    if field_bool(properties, "enableSoftDelete") == Some(false) && vault.enable_soft_delete {
        return Err(ArmError::bad_request(
            "BadRequest",
            "The property \"enableSoftDelete\" cannot be set to false. Enabling the soft delete \
                for a vault is an irreversible action.",
        ));
    }
    match field_bool(properties, "enablePurgeProtection") {
        Some(false) if vault.enable_purge_protection => {
            return Err(ArmError::bad_request(
                "BadRequest",
                "The property \"enablePurgeProtection\" cannot be set to false. Enabling the purge \
                    protection for a vault is an irreversible action.",
            ));
        }
        Some(value) => vault.enable_purge_protection = value,
        None => {}
    }
    if let Some(rbac) = field_bool(properties, "enableRbacAuthorization") {
        vault.enable_rbac_authorization = rbac;
    }
    if let Some(days) = field(properties, "softDeleteRetentionInDays").and_then(Value::as_u64) {
        if !(7..=90).contains(&days) {
            return Err(ArmError::bad_request(
                "BadRequest",
                "softDeleteRetentionInDays must be between 7 and 90.",
            ));
        }
        vault.soft_delete_retention_days = days as u32;
    }
    if let Some(entries) = field(properties, "accessPolicies") {
        vault.access_policies = parse_policies(entries)?;
    }
    Ok(())
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn parse_policies(entries: &Value) -> Result<Vec<AccessPolicy>, ArmError> {
    let Some(entries) = entries.as_array() else {
        return Err(ArmError::bad_request("BadRequest", "accessPolicies must be an array."));
    };
    entries
        .iter()
        .map(|entry| {
            let id = |name: &str| {
                field_str(entry, name).and_then(|value| Uuid::parse_str(value).ok()).ok_or_else(
                    || {
                        ArmError::bad_request(
                            "BadRequest",
                            format!("Each access policy needs a valid '{name}' GUID."),
                        )
                    },
                )
            };
            let permissions = field(entry, "permissions").cloned().unwrap_or_else(|| json!({}));
            Ok(AccessPolicy {
                tenant_id: id("tenantId")?,
                object_id: id("objectId")?,
                application_id: field_str(entry, "applicationId")
                    .and_then(|value| Uuid::parse_str(value).ok()),
                keys: string_list(field(&permissions, "keys")),
                secrets: string_list(field(&permissions, "secrets")),
                certificates: string_list(field(&permissions, "certificates")),
                storage: string_list(field(&permissions, "storage")),
                granted: OffsetDateTime::now_utc(),
            })
        })
        .collect()
}

/// Adds permissions not yet in `existing` (case-insensitive).
fn merge(existing: &mut Vec<String>, added: &[String]) {
    for permission in added {
        if !existing.iter().any(|held| held.eq_ignore_ascii_case(permission)) {
            existing.push(permission.clone());
        }
    }
}

/// Removes listed permissions (case-insensitive).
fn subtract(existing: &mut Vec<String>, removed: &[String]) {
    existing.retain(|held| !removed.iter().any(|permission| permission.eq_ignore_ascii_case(held)));
}

fn update_access_policies(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    name: &str,
    operation: &str,
) -> ArmResult {
    let body = context.body()?;
    let entries =
        field(&body, "properties").and_then(|p| field(p, "accessPolicies")).ok_or_else(|| {
            ArmError::bad_request(
                "BadRequest",
                "The request must contain properties.accessPolicies.",
            )
        })?;
    let changes = parse_policies(entries)?;
    let vault_id = vault_in_group(world, context, group, name)
        .map(|v| v.id.clone())
        .ok_or_else(|| ArmError::resource_not_found(TYPE, name, group))?;
    let vault = world.vaults.get_mut(&name.to_ascii_lowercase()).expect("checked");

    for change in &changes {
        let position = vault.access_policies.iter().position(|policy| {
            policy.tenant_id == change.tenant_id
                && policy.object_id == change.object_id
                && policy.application_id == change.application_id
        });
        match (operation.to_ascii_lowercase().as_str(), position) {
            ("add", Some(index)) => {
                let policy = &mut vault.access_policies[index];
                merge(&mut policy.keys, &change.keys);
                merge(&mut policy.secrets, &change.secrets);
                merge(&mut policy.certificates, &change.certificates);
                merge(&mut policy.storage, &change.storage);
                policy.granted = change.granted;
            }
            ("add" | "replace", None) => vault.access_policies.push(change.clone()),
            ("replace", Some(index)) => vault.access_policies[index] = change.clone(),
            ("remove", Some(index)) => {
                let policy = &mut vault.access_policies[index];
                subtract(&mut policy.keys, &change.keys);
                subtract(&mut policy.secrets, &change.secrets);
                subtract(&mut policy.certificates, &change.certificates);
                subtract(&mut policy.storage, &change.storage);
                let empty = policy.keys.is_empty()
                    && policy.secrets.is_empty()
                    && policy.certificates.is_empty()
                    && policy.storage.is_empty();
                if empty {
                    vault.access_policies.remove(index);
                }
            }
            ("remove", None) => {}
            (other, _) => {
                return Err(ArmError::bad_request(
                    "BadRequest",
                    format!(
                        "The access policy operation '{other}' is invalid. Valid operations are \
                            add, replace and remove."
                    ),
                ));
            }
        }
    }
    let echoed: Vec<Value> = changes.iter().map(policy_json).collect();
    Ok(ArmReply::ok(json!({
        "id": format!("{vault_id}/accessPolicies/{operation}"),
        "type": "Microsoft.KeyVault/vaults/accessPolicies",
        "properties": {"accessPolicies": echoed},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_name_cases() {
        let cases = [
            ("ok", "contoso-cmk-kv", true),
            ("too short", "ab", false),
            ("digit first", "1abc", false),
            ("double dash", "a--b", false),
            ("dash last", "abc-", false),
            ("too long", "abcdefghijklmnopqrstuvwxy", false),
        ];
        for (name, input, expected) in cases {
            assert_eq!(valid_vault_name(input), expected, "{name}");
        }
    }

    #[test]
    fn permission_arithmetic_cases() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut held = list(&["get", "wrapKey"]);
        merge(&mut held, &list(&["WRAPKEY", "unwrapKey"]));
        assert_eq!(held, list(&["get", "wrapKey", "unwrapKey"]), "merge ignores case");
        subtract(&mut held, &list(&["wrapkey"]));
        assert_eq!(held, list(&["get", "unwrapKey"]), "subtract ignores case");
    }
}
