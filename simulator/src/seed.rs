//! The seed format (tenants, deployers, subscriptions, servers, vaults) and how it enters the
//! world.
//!
//! A deployer is an application with a client secret and optional federated credentials, plus
//! its service principal; it owns its tenant's subscriptions, holds Graph
//! `Application.ReadWrite.All`, and gets full key permissions on its tenant's vaults. This module
//! never serves requests and never logs a client secret.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Map;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::{
    AccessPolicy, Application, FederatedCredential, PrincipalType, ResourceGroup, RoleAssignment,
    Secret, ServerIdentity, ServicePrincipal, SqlServer, Subscription, Tenant, Vault, World,
    resource_group_key,
};

/// Role definition id of the built-in Owner role.
pub const OWNER_ROLE: &str = "8e3af657-a8ff-443b-a75c-2fe8c4bcb635";
/// Role definition id of the built-in Key Vault Administrator role.
pub const KEY_VAULT_ADMINISTRATOR_ROLE: &str = "00482a5a-887f-4fb3-b363-3b7fe8e74483";
/// The Graph application permission every deployer holds.
pub const APPLICATION_READ_WRITE_ALL: &str = "Application.ReadWrite.All";

/// Every key permission an access policy can grant.
pub const ALL_KEY_PERMISSIONS: &[&str] = &[
    "get",
    "list",
    "update",
    "create",
    "import",
    "delete",
    "recover",
    "backup",
    "restore",
    "decrypt",
    "encrypt",
    "unwrapKey",
    "wrapKey",
    "verify",
    "sign",
    "purge",
    "release",
    "rotate",
    "getrotationpolicy",
    "setrotationpolicy",
];

/// A whole seed document.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Tenants and their deployers.
    #[serde(default)]
    pub tenants: Vec<SeedTenant>,
    /// Subscriptions and resource groups.
    #[serde(default)]
    pub subscriptions: Vec<SeedSubscription>,
    /// SQL servers.
    #[serde(default)]
    pub sql_servers: Vec<SeedSqlServer>,
    /// Key vaults.
    #[serde(default)]
    pub key_vaults: Vec<SeedKeyVault>,
}

/// A tenant in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTenant {
    /// Tenant id.
    pub id: Uuid,
    /// Display name.
    pub display_name: String,
    /// Deployer principals.
    #[serde(default)]
    pub deployers: Vec<SeedDeployer>,
}

/// A deployer (application + service principal) in the seed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDeployer {
    /// Display name of application and principal.
    pub display_name: String,
    /// Client id.
    pub client_id: Uuid,
    /// Service principal object id.
    pub object_id: Uuid,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Federated credentials on the application.
    #[serde(default)]
    pub federated_credentials: Vec<SeedFederatedCredential>,
}

impl fmt::Debug for SeedDeployer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SeedDeployer")
            .field("display_name", &self.display_name)
            .field("client_id", &self.client_id)
            .field("object_id", &self.object_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("federated_credentials", &self.federated_credentials)
            .finish()
    }
}

/// A federated credential in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFederatedCredential {
    /// Name; defaults to a derived one.
    #[serde(default)]
    pub name: Option<String>,
    /// Issuer.
    pub issuer: String,
    /// Subject.
    pub subject: String,
    /// Audience.
    pub audience: String,
}

/// A subscription in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSubscription {
    /// Subscription id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Resource groups.
    #[serde(default)]
    pub resource_groups: Vec<SeedResourceGroup>,
}

/// A resource group in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedResourceGroup {
    /// Name.
    pub name: String,
    /// Location.
    pub location: String,
}

/// A SQL server in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSqlServer {
    /// Subscription id.
    pub subscription_id: Uuid,
    /// Resource group name.
    pub resource_group: String,
    /// Server name.
    pub name: String,
    /// Location.
    pub location: String,
    /// Administrator login.
    #[serde(default)]
    pub administrator_login: Option<String>,
}

/// A key vault in the seed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKeyVault {
    /// Subscription id.
    pub subscription_id: Uuid,
    /// Resource group name.
    pub resource_group: String,
    /// Vault name.
    pub name: String,
    /// Location.
    pub location: String,
    /// Tenant of the vault.
    pub tenant_id: Uuid,
    /// Soft delete on.
    #[serde(default = "yes")]
    pub enable_soft_delete: bool,
    /// Purge protection on.
    #[serde(default)]
    pub enable_purge_protection: bool,
    /// RBAC permission model.
    #[serde(default)]
    pub enable_rbac_authorization: bool,
}

fn yes() -> bool {
    true
}

/// Why a seed could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The JSON did not match the format.
    #[error("parsing seed: {0}")]
    Parse(#[from] serde_json::Error),
    /// A subscription names a tenant the seed and world lack.
    #[error("subscription {subscription} names unknown tenant {tenant}")]
    UnknownTenant {
        /// Subscription id.
        subscription: Uuid,
        /// Tenant id.
        tenant: Uuid,
    },
    /// A resource names a resource group that does not exist.
    #[error("{resource} names unknown resource group {subscription}/{resource_group}")]
    UnknownResourceGroup {
        /// Resource name.
        resource: String,
        /// Subscription id.
        subscription: Uuid,
        /// Resource group name.
        resource_group: String,
    },
    /// An object with the same identity already exists.
    #[error("{0} already exists")]
    Duplicate(String),
}

impl Seed {
    /// Parses a seed document.
    pub fn from_json(text: &str) -> Result<Self, SeedError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Adds the seed's objects to `world`, with the deployers' grants.
    pub(crate) fn apply(self, world: &mut World) -> Result<(), SeedError> {
        // Past creation times: seeded objects are fully replicated from the start.
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(1);
        let mut grants = Grants::default();

        for tenant in self.tenants {
            add_tenant(world, tenant, long_ago, &mut grants)?;
        }
        for subscription in self.subscriptions {
            add_subscription(world, subscription, &mut grants)?;
        }
        for server in self.sql_servers {
            add_server(world, server)?;
        }
        for vault in self.key_vaults {
            add_vault(world, vault, &mut grants)?;
        }
        grants.apply(world, long_ago);
        Ok(())
    }
}

/// Objects new in this seed, so deployer grants are made only where one side is new.
#[derive(Default)]
struct Grants {
    deployers: Vec<Uuid>,
    subscriptions: Vec<Uuid>,
    vaults: Vec<String>,
}

impl Grants {
    fn apply(self, world: &mut World, granted: OffsetDateTime) {
        let deployers: Vec<(Uuid, Uuid)> = world
            .service_principals
            .values()
            .filter(|principal| {
                principal.graph_roles.iter().any(|r| r == APPLICATION_READ_WRITE_ALL)
            })
            .map(|principal| (principal.object_id, principal.tenant_id))
            .collect();
        let subscriptions: Vec<(Uuid, Uuid)> =
            world.subscriptions.values().map(|s| (s.id, s.tenant_id)).collect();
        let vaults: Vec<String> = world.vaults.keys().cloned().collect();

        for (principal, tenant) in &deployers {
            let new_deployer = self.deployers.contains(principal);
            for (subscription, owner) in &subscriptions {
                if owner == tenant && (new_deployer || self.subscriptions.contains(subscription)) {
                    grant_owner(world, *principal, *subscription, *tenant, granted);
                }
            }
            for vault in &vaults {
                if new_deployer || self.vaults.contains(vault) {
                    grant_vault(world, *principal, *tenant, vault, granted);
                }
            }
        }
    }
}

fn add_tenant(
    world: &mut World,
    tenant: SeedTenant,
    created: OffsetDateTime,
    grants: &mut Grants,
) -> Result<(), SeedError> {
    if world.tenants.contains_key(&tenant.id) {
        return Err(SeedError::Duplicate(format!("tenant {}", tenant.id)));
    }
    world.tenants.insert(tenant.id, Tenant { id: tenant.id, display_name: tenant.display_name });
    for deployer in tenant.deployers {
        let principal = add_deployer(world, tenant.id, deployer, created)?;
        grants.deployers.push(principal);
    }
    Ok(())
}

fn add_deployer(
    world: &mut World,
    tenant_id: Uuid,
    deployer: SeedDeployer,
    created: OffsetDateTime,
) -> Result<Uuid, SeedError> {
    if world.application_anywhere(deployer.client_id).is_some() {
        return Err(SeedError::Duplicate(format!("application {}", deployer.client_id)));
    }
    let application = Application {
        object_id: Uuid::new_v4(),
        app_id: deployer.client_id,
        tenant_id,
        display_name: deployer.display_name.clone(),
        sign_in_audience: "AzureADMyOrg".into(),
        description: None,
        identifier_uris: Vec::new(),
        tags: Vec::new(),
        secrets: deployer.client_secret.into_iter().map(Secret::new).collect(),
        created,
    };
    for (index, credential) in deployer.federated_credentials.into_iter().enumerate() {
        let id = Uuid::new_v4();
        world.federated_credentials.insert(
            id,
            FederatedCredential {
                id,
                application_object_id: application.object_id,
                tenant_id,
                name: credential.name.unwrap_or_else(|| format!("seeded-{index}")),
                issuer: credential.issuer,
                subject: credential.subject,
                audiences: vec![credential.audience],
                description: None,
                created,
            },
        );
    }
    world.service_principals.insert(
        deployer.object_id,
        ServicePrincipal {
            object_id: deployer.object_id,
            app_id: deployer.client_id,
            tenant_id,
            display_name: deployer.display_name,
            app_owner_tenant_id: Some(tenant_id),
            principal_type: PrincipalType::Application,
            managed_identity_id: None,
            graph_roles: vec![APPLICATION_READ_WRITE_ALL.to_string()],
            created,
        },
    );
    world.applications.insert(application.object_id, application);
    Ok(deployer.object_id)
}

fn add_subscription(
    world: &mut World,
    subscription: SeedSubscription,
    grants: &mut Grants,
) -> Result<(), SeedError> {
    if !world.tenants.contains_key(&subscription.tenant_id) {
        return Err(SeedError::UnknownTenant {
            subscription: subscription.id,
            tenant: subscription.tenant_id,
        });
    }
    if world.subscriptions.contains_key(&subscription.id) {
        return Err(SeedError::Duplicate(format!("subscription {}", subscription.id)));
    }
    world.subscriptions.insert(
        subscription.id,
        Subscription { id: subscription.id, tenant_id: subscription.tenant_id },
    );
    for group in subscription.resource_groups {
        world.resource_groups.insert(
            resource_group_key(subscription.id, &group.name),
            ResourceGroup {
                subscription_id: subscription.id,
                name: group.name,
                location: group.location,
            },
        );
    }
    grants.subscriptions.push(subscription.id);
    Ok(())
}

fn resource_group_name(
    world: &World,
    resource: &str,
    subscription: Uuid,
    group: &str,
) -> Result<String, SeedError> {
    world.resource_group(subscription, group).map(|group| group.name.clone()).ok_or_else(|| {
        SeedError::UnknownResourceGroup {
            resource: resource.to_string(),
            subscription,
            resource_group: group.to_string(),
        }
    })
}

fn add_server(world: &mut World, server: SeedSqlServer) -> Result<(), SeedError> {
    let group =
        resource_group_name(world, &server.name, server.subscription_id, &server.resource_group)?;
    let id = format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.Sql/servers/{}",
        server.subscription_id, server.name
    );
    if world.servers.contains_key(&id.to_ascii_lowercase()) {
        return Err(SeedError::Duplicate(format!("server {id}")));
    }
    world.servers.insert(
        id.to_ascii_lowercase(),
        SqlServer {
            id,
            resource_group: group,
            name: server.name,
            location: server.location,
            tags: Map::new(),
            administrator_login: server.administrator_login,
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
        },
    );
    Ok(())
}

fn add_vault(world: &mut World, vault: SeedKeyVault, grants: &mut Grants) -> Result<(), SeedError> {
    let group =
        resource_group_name(world, &vault.name, vault.subscription_id, &vault.resource_group)?;
    if world.vault(&vault.name).is_some() {
        return Err(SeedError::Duplicate(format!("vault {}", vault.name)));
    }
    let id = format!(
        "/subscriptions/{}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{}",
        vault.subscription_id, vault.name
    );
    grants.vaults.push(vault.name.to_ascii_lowercase());
    world.vaults.insert(
        vault.name.to_ascii_lowercase(),
        Vault {
            id,
            resource_group: group,
            name: vault.name,
            location: vault.location,
            tags: Map::new(),
            tenant_id: vault.tenant_id,
            sku: "standard".into(),
            access_policies: Vec::new(),
            enable_soft_delete: vault.enable_soft_delete,
            enable_purge_protection: vault.enable_purge_protection,
            enable_rbac_authorization: vault.enable_rbac_authorization,
            soft_delete_retention_days: 90,
            keys: BTreeMap::new(),
        },
    );
    Ok(())
}

fn grant_owner(
    world: &mut World,
    principal: Uuid,
    subscription: Uuid,
    tenant: Uuid,
    created: OffsetDateTime,
) {
    let scope = format!("/subscriptions/{subscription}");
    let role = format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{OWNER_ROLE}");
    add_role_assignment(world, &scope, &role, principal, tenant, created);
}

fn grant_vault(
    world: &mut World,
    principal: Uuid,
    tenant: Uuid,
    vault_name: &str,
    granted: OffsetDateTime,
) {
    let Some(vault) = world.vaults.get_mut(vault_name) else { return };
    if vault.tenant_id != tenant {
        return;
    }
    if !vault.enable_rbac_authorization {
        vault.access_policies.push(AccessPolicy {
            tenant_id: tenant,
            object_id: principal,
            application_id: None,
            keys: ALL_KEY_PERMISSIONS.iter().map(|p| p.to_string()).collect(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            storage: Vec::new(),
            granted,
        });
        return;
    }
    let scope = vault.id.clone();
    let subscription = scope.split('/').nth(2).unwrap_or_default().to_string();
    let role = format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/\
         {KEY_VAULT_ADMINISTRATOR_ROLE}"
    );
    add_role_assignment(world, &scope, &role, principal, tenant, granted);
}

fn add_role_assignment(
    world: &mut World,
    scope: &str,
    role_definition_id: &str,
    principal: Uuid,
    tenant: Uuid,
    created: OffsetDateTime,
) {
    let name = Uuid::new_v4().to_string();
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    world.role_assignments.insert(
        id.to_ascii_lowercase(),
        RoleAssignment {
            id,
            name,
            scope: scope.to_string(),
            role_definition_id: role_definition_id.to_string(),
            principal_id: principal,
            principal_type: "ServicePrincipal".into(),
            tenant_id: tenant,
            created,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_TENANTS: &str = include_str!("../seeds/two-tenants.json");

    #[test]
    fn two_tenants_seed_applies() {
        let mut world = World::default();
        Seed::from_json(TWO_TENANTS).expect("parse").apply(&mut world).expect("apply");
        assert_eq!(world.tenants.len(), 2);
        assert_eq!(world.vaults.len(), 3);
        assert_eq!(world.servers.len(), 1);

        let rbac = world.vault("contoso-cmk-rbac").expect("rbac vault");
        assert!(rbac.access_policies.is_empty());
        let admin_assignments = world
            .role_assignments
            .values()
            .filter(|a| a.scope == rbac.id && a.role_guid() == KEY_VAULT_ADMINISTRATOR_ROLE)
            .count();
        assert_eq!(admin_assignments, 1);

        let policy_vault = world.vault("contoso-cmk-kv").expect("policy vault");
        assert_eq!(policy_vault.access_policies.len(), 1);
        let owners = world.role_assignments.values().filter(|a| a.role_guid() == OWNER_ROLE);
        assert_eq!(owners.count(), 2);
    }

    #[test]
    fn seed_error_cases() {
        let cases = [
            (
                "unknown tenant",
                r#"{"subscriptions":[{"id":"00000000-0000-0000-0000-000000000001",
                    "tenant_id":"00000000-0000-0000-0000-000000000002"}]}"#,
                "unknown tenant",
            ),
            (
                "unknown group",
                r#"{"sql_servers":[{"subscription_id":"00000000-0000-0000-0000-000000000001",
                    "resource_group":"rg","name":"s","location":"x"}]}"#,
                "unknown resource group",
            ),
            ("unknown field", r#"{"tenantz":[]}"#, "parsing seed"),
        ];
        for (name, text, expected) in cases {
            let error = Seed::from_json(text)
                .and_then(|seed| seed.apply(&mut World::default()))
                .expect_err(name);
            assert!(error.to_string().contains(expected), "{name}: {error}");
        }
    }
}
