//! The simulated world: tenants, directory objects, ARM resources, Key Vault keys, operations.
//!
//! Everything lives in one [`World`] behind one mutex, so every request sees a consistent
//! snapshot and handlers stay plain synchronous functions. This module owns the data and the
//! lookups that several APIs share; it never builds HTTP responses and never decides what a
//! caller may do (that is each API module's job).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// A secret value (client secret) that never shows in `Debug`, `Display` or admin state.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for comparisons only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

/// Kinds of object whose creation can be made to replicate slowly (`POST /admin/replication`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicatedKind {
    /// Graph service principals (and managed identities' principals).
    ServicePrincipal,
    /// Graph applications.
    Application,
    /// Federated identity credentials on applications.
    FederatedCredential,
    /// ARM role assignments.
    RoleAssignment,
    /// Key Vault access policy entries.
    AccessPolicy,
}

/// An Entra tenant.
#[derive(Clone, Debug, Serialize)]
pub struct Tenant {
    /// Tenant id.
    pub id: Uuid,
    /// Display name, for humans.
    pub display_name: String,
}

/// A Graph application object, living in its home tenant.
#[derive(Clone, Debug, Serialize)]
pub struct Application {
    /// Object id (`id` in Graph).
    pub object_id: Uuid,
    /// Client id (`appId` in Graph).
    pub app_id: Uuid,
    /// Home tenant.
    pub tenant_id: Uuid,
    /// `displayName`.
    pub display_name: String,
    /// `signInAudience`.
    pub sign_in_audience: String,
    /// `description`.
    pub description: Option<String>,
    /// `identifierUris`.
    pub identifier_uris: Vec<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// Client secrets accepted by the token endpoint.
    #[serde(skip)]
    pub secrets: Vec<Secret>,
    /// Creation time, for replication delay.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl Application {
    /// Whether the application may have service principals in other tenants.
    pub fn is_multi_tenant(&self) -> bool {
        matches!(
            self.sign_in_audience.as_str(),
            "AzureADMultipleOrgs" | "AzureADandPersonalMicrosoftAccount"
        )
    }
}

/// A federated identity credential on an application.
#[derive(Clone, Debug, Serialize)]
pub struct FederatedCredential {
    /// Credential id.
    pub id: Uuid,
    /// Object id of the owning application.
    pub application_object_id: Uuid,
    /// Tenant of the owning application.
    pub tenant_id: Uuid,
    /// `name`.
    pub name: String,
    /// `issuer`.
    pub issuer: String,
    /// `subject`.
    pub subject: String,
    /// `audiences` (exactly one).
    pub audiences: Vec<String>,
    /// `description`.
    pub description: Option<String>,
    /// Creation or last change time, for replication delay.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// What a service principal stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PrincipalType {
    /// An application's instance in a tenant.
    Application,
    /// A managed identity's principal.
    ManagedIdentity,
}

/// A Graph service principal.
#[derive(Clone, Debug, Serialize)]
pub struct ServicePrincipal {
    /// Object id.
    pub object_id: Uuid,
    /// Client id of the application (or managed identity).
    pub app_id: Uuid,
    /// Tenant the principal lives in.
    pub tenant_id: Uuid,
    /// `displayName`.
    pub display_name: String,
    /// `appOwnerOrganizationId`: the application's home tenant.
    pub app_owner_tenant_id: Option<Uuid>,
    /// `servicePrincipalType`.
    pub principal_type: PrincipalType,
    /// ARM id of the managed identity, for managed identity principals.
    pub managed_identity_id: Option<String>,
    /// Graph application permissions granted to this principal (app roles).
    pub graph_roles: Vec<String>,
    /// Creation time, for replication delay.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// An Azure subscription, owned by one tenant.
#[derive(Clone, Debug, Serialize)]
pub struct Subscription {
    /// Subscription id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
}

/// A resource group.
#[derive(Clone, Debug, Serialize)]
pub struct ResourceGroup {
    /// Subscription id.
    pub subscription_id: Uuid,
    /// Name as created.
    pub name: String,
    /// Location.
    pub location: String,
}

/// A user-assigned managed identity.
#[derive(Clone, Debug, Serialize)]
pub struct UserAssignedIdentity {
    /// ARM id as created.
    pub id: String,
    /// Name.
    pub name: String,
    /// Location.
    pub location: String,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Tenant of the subscription.
    pub tenant_id: Uuid,
    /// Object id of its service principal.
    pub principal_id: Uuid,
    /// Client id.
    pub client_id: Uuid,
}

/// Identity configuration of a SQL server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerIdentity {
    /// System-assigned identity enabled.
    pub system_assigned: bool,
    /// Principal id of the system-assigned identity.
    pub system_principal_id: Option<Uuid>,
    /// ARM ids of the attached user-assigned identities, as sent.
    pub user_assigned: Vec<String>,
}

impl ServerIdentity {
    /// The wire value of `identity.type`.
    pub fn type_name(&self) -> &'static str {
        match (self.system_assigned, !self.user_assigned.is_empty()) {
            (true, true) => "SystemAssigned,UserAssigned",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (false, false) => "None",
        }
    }

    /// Whether the given identity id is attached (ARM ids compare case-insensitively).
    pub fn has_user_assigned(&self, id: &str) -> bool {
        self.user_assigned.iter().any(|attached| attached.eq_ignore_ascii_case(id))
    }
}

/// A key registered on a SQL server (`Microsoft.Sql/servers/keys`).
#[derive(Clone, Debug, Serialize)]
pub struct ServerKey {
    /// Key name, `{vault}_{key}_{version}`.
    pub name: String,
    /// Key Vault key identifier.
    pub uri: String,
    /// Thumbprint (fake, stable per uri).
    pub thumbprint: String,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub creation_date: OffsetDateTime,
}

/// A SQL logical server.
#[derive(Clone, Debug, Serialize)]
pub struct SqlServer {
    /// ARM id as created.
    pub id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Name.
    pub name: String,
    /// Location.
    pub location: String,
    /// Tags.
    pub tags: Map<String, Value>,
    /// `administratorLogin`.
    pub administrator_login: Option<String>,
    /// Identities.
    pub identity: ServerIdentity,
    /// `primaryUserAssignedIdentityId`.
    pub primary_user_assigned_identity_id: Option<String>,
    /// `federatedClientId`.
    pub federated_client_id: Option<Uuid>,
    /// `publicNetworkAccess`.
    pub public_network_access: String,
    /// `minimalTlsVersion`.
    pub minimal_tls_version: String,
    /// Registered Key Vault keys, by lower-cased name.
    pub keys: BTreeMap<String, ServerKey>,
    /// Name of the server key protecting the server; `None` means service-managed.
    pub protector_key_name: Option<String>,
    /// `autoRotationEnabled` of the protector.
    pub protector_auto_rotation: bool,
    /// Whether the protector's key was reachable at the last check.
    pub key_accessible: bool,
    /// Why the key was unreachable at the last check.
    pub key_problem: Option<String>,
    /// When the protector's key was last checked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_validated: Option<OffsetDateTime>,
}

impl SqlServer {
    /// The registered key currently protecting the server, if it is a Key Vault key.
    pub fn protector_key(&self) -> Option<&ServerKey> {
        let name = self.protector_key_name.as_ref()?;
        self.keys.get(&name.to_ascii_lowercase())
    }
}

/// One access policy entry of a vault.
#[derive(Clone, Debug, Serialize)]
pub struct AccessPolicy {
    /// Tenant of the principal.
    pub tenant_id: Uuid,
    /// Object id of the principal.
    pub object_id: Uuid,
    /// Compound identity application id (rare).
    pub application_id: Option<Uuid>,
    /// Key permissions, as sent.
    pub keys: Vec<String>,
    /// Secret permissions, as sent.
    pub secrets: Vec<String>,
    /// Certificate permissions, as sent.
    pub certificates: Vec<String>,
    /// Storage permissions, as sent.
    pub storage: Vec<String>,
    /// When the entry was last granted more permissions, for replication delay.
    #[serde(with = "time::serde::rfc3339")]
    pub granted: OffsetDateTime,
}

/// One version of a Key Vault key.
#[derive(Clone, Debug, Serialize)]
pub struct KeyVersion {
    /// 32 hex digits.
    pub version: String,
    /// `kty`.
    pub kty: String,
    /// Key size in bits (RSA).
    pub key_size: Option<u32>,
    /// Curve (EC).
    pub curve: Option<String>,
    /// `key_ops`.
    pub key_ops: Vec<String>,
    /// Public modulus, base64url (fake material).
    #[serde(skip)]
    pub modulus: String,
    /// `attributes.enabled`.
    pub enabled: bool,
    /// `attributes.nbf` (unix seconds).
    pub not_before: Option<i64>,
    /// `attributes.exp` (unix seconds).
    pub expires: Option<i64>,
    /// `attributes.created`.
    pub created: i64,
    /// `attributes.updated`.
    pub updated: i64,
    /// Tags.
    pub tags: Map<String, Value>,
}

impl KeyVersion {
    /// Whether the key can be used now: enabled, activated and not expired.
    pub fn usable_at(&self, now: i64) -> bool {
        self.enabled
            && self.not_before.is_none_or(|nbf| nbf <= now)
            && self.expires.is_none_or(|exp| exp > now)
    }
}

/// A Key Vault key with all its versions (oldest first).
#[derive(Clone, Debug, Serialize)]
pub struct VaultKey {
    /// Key name.
    pub name: String,
    /// Versions, oldest first.
    pub versions: Vec<KeyVersion>,
    /// Soft-deletion time, when deleted.
    pub deleted: Option<i64>,
}

impl VaultKey {
    /// The newest version.
    pub fn latest(&self) -> Option<&KeyVersion> {
        self.versions.last()
    }

    /// A version by its id (case-insensitive), or the latest when `version` is empty.
    pub fn version(&self, version: &str) -> Option<&KeyVersion> {
        if version.is_empty() {
            return self.latest();
        }
        self.versions.iter().find(|candidate| candidate.version.eq_ignore_ascii_case(version))
    }
}

/// A Key Vault.
#[derive(Clone, Debug, Serialize)]
pub struct Vault {
    /// ARM id as created.
    pub id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Vault name (globally unique).
    pub name: String,
    /// Location.
    pub location: String,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Tenant whose principals may use the vault.
    pub tenant_id: Uuid,
    /// `sku.name`.
    pub sku: String,
    /// Access policies (ignored when RBAC is on).
    pub access_policies: Vec<AccessPolicy>,
    /// `enableSoftDelete`.
    pub enable_soft_delete: bool,
    /// `enablePurgeProtection`.
    pub enable_purge_protection: bool,
    /// `enableRbacAuthorization`.
    pub enable_rbac_authorization: bool,
    /// `softDeleteRetentionInDays`.
    pub soft_delete_retention_days: u32,
    /// Keys by lower-cased name.
    pub keys: BTreeMap<String, VaultKey>,
}

impl Vault {
    /// The vault's data-plane URI with its trailing slash.
    pub fn vault_uri(&self) -> String {
        format!("https://{}.vault.azure.net/", self.name)
    }

    /// The `recoveryLevel` reported for keys, derived from the vault settings.
    pub fn recovery_level(&self) -> &'static str {
        let customized = self.soft_delete_retention_days < 90;
        match (self.enable_soft_delete, self.enable_purge_protection, customized) {
            (false, _, _) => "Purgeable",
            (true, true, false) => "Recoverable",
            (true, true, true) => "CustomizedRecoverable",
            (true, false, false) => "Recoverable+Purgeable",
            (true, false, true) => "CustomizedRecoverable+Purgeable",
        }
    }

    /// A live (not soft-deleted) key by name.
    pub fn live_key(&self, name: &str) -> Option<&VaultKey> {
        self.keys.get(&name.to_ascii_lowercase()).filter(|key| key.deleted.is_none())
    }
}

/// An ARM role assignment.
#[derive(Clone, Debug, Serialize)]
pub struct RoleAssignment {
    /// Full ARM id.
    pub id: String,
    /// Assignment name (a GUID).
    pub name: String,
    /// Scope, as sent.
    pub scope: String,
    /// Role definition id, as sent.
    pub role_definition_id: String,
    /// Principal object id.
    pub principal_id: Uuid,
    /// `principalType`.
    pub principal_type: String,
    /// Tenant of the scope.
    pub tenant_id: Uuid,
    /// Creation time, for replication delay.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl RoleAssignment {
    /// The role definition GUID at the end of the role definition id, lower-cased.
    pub fn role_guid(&self) -> String {
        self.role_definition_id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase()
    }
}

/// What a long-running operation ended with.
#[derive(Clone, Debug, Serialize)]
pub enum OperationOutcome {
    /// The final resource body, returned by the Location URL.
    Succeeded(Value),
    /// The ARM error the operation failed with.
    Failed {
        /// HTTP status the Location URL answers with.
        status: u16,
        /// Azure error code.
        code: String,
        /// Azure error message.
        message: String,
    },
}

/// A Microsoft.Sql long-running operation.
#[derive(Clone, Debug, Serialize)]
pub struct Operation {
    /// Operation id.
    pub id: Uuid,
    /// Polls of the status URL still answered with `InProgress`.
    pub polls_left: u32,
    /// Start time.
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// Outcome once done.
    pub outcome: OperationOutcome,
}

/// Run-time settings changed through the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Status polls answered `InProgress` before an operation completes.
    pub polls_before_done: u32,
    /// Replication delay per kind.
    #[serde(skip)]
    pub replication: HashMap<ReplicatedKind, Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { polls_before_done: 1, replication: HashMap::new() }
    }
}

/// Everything the simulator knows.
#[derive(Debug, Default)]
pub struct World {
    /// Tenants by id.
    pub tenants: BTreeMap<Uuid, Tenant>,
    /// Applications by object id.
    pub applications: BTreeMap<Uuid, Application>,
    /// Federated credentials by id.
    pub federated_credentials: BTreeMap<Uuid, FederatedCredential>,
    /// Service principals by object id.
    pub service_principals: BTreeMap<Uuid, ServicePrincipal>,
    /// Subscriptions by id.
    pub subscriptions: BTreeMap<Uuid, Subscription>,
    /// Resource groups by lower-cased `{subscription}/{name}`.
    pub resource_groups: BTreeMap<String, ResourceGroup>,
    /// Managed identities by lower-cased ARM id.
    pub identities: BTreeMap<String, UserAssignedIdentity>,
    /// SQL servers by lower-cased ARM id.
    pub servers: BTreeMap<String, SqlServer>,
    /// Vaults by lower-cased name.
    pub vaults: BTreeMap<String, Vault>,
    /// Role assignments by lower-cased ARM id.
    pub role_assignments: BTreeMap<String, RoleAssignment>,
    /// Long-running operations by id.
    pub operations: HashMap<Uuid, Operation>,
    /// Admin settings.
    pub settings: Settings,
}

/// The lookup key of a resource group.
pub fn resource_group_key(subscription_id: Uuid, name: &str) -> String {
    format!("{subscription_id}/{}", name.to_ascii_lowercase())
}

impl World {
    /// Whether an object of `kind` created at `created` has replicated by now.
    pub fn replicated(&self, kind: ReplicatedKind, created: OffsetDateTime) -> bool {
        match self.settings.replication.get(&kind) {
            None => true,
            Some(delay) => OffsetDateTime::now_utc() - created >= *delay,
        }
    }

    /// The tenant owning a subscription.
    pub fn subscription_tenant(&self, subscription_id: Uuid) -> Option<Uuid> {
        self.subscriptions.get(&subscription_id).map(|subscription| subscription.tenant_id)
    }

    /// A resource group by subscription and name (case-insensitive).
    pub fn resource_group(&self, subscription_id: Uuid, name: &str) -> Option<&ResourceGroup> {
        self.resource_groups.get(&resource_group_key(subscription_id, name))
    }

    /// A managed identity by ARM id (case-insensitive).
    pub fn identity(&self, id: &str) -> Option<&UserAssignedIdentity> {
        self.identities.get(&id.to_ascii_lowercase())
    }

    /// An application of `tenant_id` by client id, ignoring replication.
    pub fn application_by_app_id(&self, tenant_id: Uuid, app_id: Uuid) -> Option<&Application> {
        self.applications.values().find(|app| app.tenant_id == tenant_id && app.app_id == app_id)
    }

    /// An application anywhere by client id, ignoring replication.
    pub fn application_anywhere(&self, app_id: Uuid) -> Option<&Application> {
        self.applications.values().find(|app| app.app_id == app_id)
    }

    /// The service principal of `app_id` in `tenant_id`, ignoring replication.
    pub fn principal_by_app_id(&self, tenant_id: Uuid, app_id: Uuid) -> Option<&ServicePrincipal> {
        self.service_principals
            .values()
            .find(|principal| principal.tenant_id == tenant_id && principal.app_id == app_id)
    }

    /// The replicated service principal of `app_id` in `tenant_id`.
    pub fn visible_principal_by_app_id(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
    ) -> Option<&ServicePrincipal> {
        self.principal_by_app_id(tenant_id, app_id).filter(|principal| {
            self.replicated(ReplicatedKind::ServicePrincipal, principal.created)
        })
    }

    /// Federated credentials of one application, oldest first.
    pub fn credentials_of(&self, application_object_id: Uuid) -> Vec<&FederatedCredential> {
        let mut credentials: Vec<&FederatedCredential> = self
            .federated_credentials
            .values()
            .filter(|credential| credential.application_object_id == application_object_id)
            .collect();
        credentials.sort_by_key(|credential| credential.created);
        credentials
    }

    /// The vault named `name` (case-insensitive).
    pub fn vault(&self, name: &str) -> Option<&Vault> {
        self.vaults.get(&name.to_ascii_lowercase())
    }

    /// Replicated role assignments of a principal whose scope covers `resource_id`.
    pub fn roles_covering(&self, principal_id: Uuid, resource_id: &str) -> Vec<&RoleAssignment> {
        self.role_assignments
            .values()
            .filter(|assignment| assignment.principal_id == principal_id)
            .filter(|assignment| scope_covers(&assignment.scope, resource_id))
            .filter(|assignment| {
                self.replicated(ReplicatedKind::RoleAssignment, assignment.created)
            })
            .collect()
    }
}

/// Whether an ARM scope is `resource_id` itself or one of its ancestors.
pub fn scope_covers(scope: &str, resource_id: &str) -> bool {
    let scope = scope.trim_end_matches('/').to_ascii_lowercase();
    let resource = resource_id.trim_end_matches('/').to_ascii_lowercase();
    scope.is_empty() || resource == scope || resource.starts_with(&format!("{scope}/"))
}

/// Fresh random bytes.
pub fn random_bytes(length: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(length + 32);
    while bytes.len() < length {
        bytes.extend_from_slice(&rand::random::<[u8; 32]>());
    }
    bytes.truncate(length);
    bytes
}

/// A fresh 32-hex-digit Key Vault version id.
pub fn new_key_version() -> String {
    Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_covers_cases() {
        let key = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/keys/k";
        let cases = [
            ("same resource", key, key, true),
            (
                "vault scope",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v",
                key,
                true,
            ),
            ("case differs", "/SUBSCRIPTIONS/s/resourcegroups/RG", key, true),
            (
                "sibling vault prefix",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v2",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v",
                false,
            ),
            ("other subscription", "/subscriptions/t", key, false),
        ];
        for (name, scope, resource, expected) in cases {
            assert_eq!(scope_covers(scope, resource), expected, "{name}");
        }
    }

    #[test]
    fn recovery_level_cases() {
        let cases = [
            ("no soft delete", false, false, 90, "Purgeable"),
            ("soft delete only", true, false, 90, "Recoverable+Purgeable"),
            ("purge protected", true, true, 90, "Recoverable"),
            ("short retention", true, true, 7, "CustomizedRecoverable"),
        ];
        for (name, soft_delete, purge_protection, days, expected) in cases {
            let vault = Vault {
                id: String::new(),
                resource_group: String::new(),
                name: "v".into(),
                location: String::new(),
                tags: Map::new(),
                tenant_id: Uuid::nil(),
                sku: "standard".into(),
                access_policies: Vec::new(),
                enable_soft_delete: soft_delete,
                enable_purge_protection: purge_protection,
                enable_rbac_authorization: false,
                soft_delete_retention_days: days,
                keys: BTreeMap::new(),
            };
            assert_eq!(vault.recovery_level(), expected, "{name}");
        }
    }
}
