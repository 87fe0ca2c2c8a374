//! The cross-tenant customer-managed key chain that Azure SQL walks before it accepts a Key
//! Vault key as a server key or TDE protector.
//!
//! Link by link: the server's primary user-assigned identity → the federated client id's
//! multi-tenant application in the identity's tenant → a federated credential trusting that
//! identity → the application's service principal in the vault's tenant → get, wrapKey and
//! unwrapKey on the key → the key exists, is enabled, current, RSA 2048/3072 → the vault has
//! soft delete and purge protection. The first broken link is reported with Azure SQL's error
//! code and a message naming what is missing. This module only reads the world.

use axum::http::StatusCode;
use uuid::Uuid;

use crate::http::unix_now;
use crate::state::{ReplicatedKind, ServerIdentity, UserAssignedIdentity, Vault, World};
use crate::vault::{KeyIdentifier, KeyOperation, may};

/// The audience a managed identity's token carries in a federated exchange.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A broken link: the status and Azure error the operation fails with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFailure {
    /// HTTP status of the failure.
    pub status: StatusCode,
    /// Azure SQL error code.
    pub code: &'static str,
    /// What is missing, with ids.
    pub message: String,
}

impl ChainFailure {
    fn new(code: &'static str, message: String) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message }
    }
}

/// The server configuration the chain is checked against (current or proposed).
#[derive(Clone, Copy, Debug)]
pub struct ServerConfiguration<'a> {
    /// Server name, for messages.
    pub server_name: &'a str,
    /// Identities.
    pub identity: &'a ServerIdentity,
    /// `primaryUserAssignedIdentityId`.
    pub primary: Option<&'a str>,
    /// `federatedClientId`.
    pub federated_client_id: Option<Uuid>,
}

/// Checks every link between the server and the key `key_uri`.
pub fn check(
    world: &World,
    server: ServerConfiguration<'_>,
    key_uri: &str,
) -> Result<(), ChainFailure> {
    let identity = primary_identity(world, server)?;
    let kid = KeyIdentifier::parse(key_uri).ok_or_else(|| {
        ChainFailure::new(
            "AzureKeyVaultInvalidUri",
            format!("The provided Key Vault uri '{key_uri}' is not valid."),
        )
    })?;
    let vault = world.vault(&kid.vault).ok_or_else(|| {
        ChainFailure::new(
            "AkvHostNotResolvingFromNode",
            format!(
                "The Azure Key Vault host '{}.vault.azure.net' could not be resolved.",
                kid.vault
            ),
        )
    })?;

    let principal = accessing_principal(world, server, identity, vault)?;
    check_permissions(world, vault, principal, &kid)?;
    check_key(vault, &kid)?;
    if !(vault.enable_soft_delete && vault.enable_purge_protection) {
        return Err(ChainFailure::new(
            "SecurityInvalidAzureKeyVaultRecoveryLevel",
            format!(
                "The provided Key Vault uri is not valid. Vault '{}' must have soft delete and \
                    purge protection enabled (soft delete: {}, purge protection: {}).",
                vault.name, vault.enable_soft_delete, vault.enable_purge_protection
            ),
        ));
    }
    Ok(())
}

fn primary_identity<'w>(
    world: &'w World,
    server: ServerConfiguration<'_>,
) -> Result<&'w UserAssignedIdentity, ChainFailure> {
    if server.identity.user_assigned.is_empty() {
        if server.identity.system_assigned {
            return Err(ChainFailure::new(
                "InvalidIdentityTypeForKeyId",
                format!(
                    "Server '{}' identity type is '{}', not 'UserAssigned'; a user-assigned \
                        primary identity is required to use a key in another tenant.",
                    server.server_name,
                    server.identity.type_name()
                ),
            ));
        }
        return Err(ChainFailure::new(
            "AzureKeyVaultNoServerIdentity",
            format!(
                "Server '{}' has no identity; assign a user-assigned identity and set \
                    primaryUserAssignedIdentityId.",
                server.server_name
            ),
        ));
    }
    let Some(primary) = server.primary else {
        return Err(ChainFailure::new(
            "AzureKeyVaultNoServerIdentity",
            format!(
                "Server '{}' has user-assigned identities but no primaryUserAssignedIdentityId.",
                server.server_name
            ),
        ));
    };
    world.identity(primary).ok_or_else(|| {
        ChainFailure::new(
            "AzureKeyVaultNoServerIdentity",
            format!(
                "The primary user assigned identity '{primary}' of server '{}' does not exist.",
                server.server_name
            ),
        )
    })
}

/// The principal whose token reaches the vault: the identity itself in its own tenant, or the
/// federated application's service principal in the vault's tenant.
fn accessing_principal(
    world: &World,
    server: ServerConfiguration<'_>,
    identity: &UserAssignedIdentity,
    vault: &Vault,
) -> Result<Uuid, ChainFailure> {
    let Some(app_id) = server.federated_client_id else {
        if vault.tenant_id == identity.tenant_id {
            return Ok(identity.principal_id);
        }
        return Err(ChainFailure::new(
            "UmiMissingAkvPermissions",
            format!(
                "Vault '{}' is in tenant {} but identity '{}' is in tenant {}; set \
                    federatedClientId to a multi-tenant application that trusts the identity to \
                    use a key in another tenant.",
                vault.name, vault.tenant_id, identity.id, identity.tenant_id
            ),
        ));
    };

    let application = world
        .application_by_app_id(identity.tenant_id, app_id)
        .filter(|app| world.replicated(ReplicatedKind::Application, app.created))
        .ok_or_else(|| {
            ChainFailure::new(
                "AdalGenericError",
                format!(
                    "AADSTS700016: Application with identifier '{app_id}' was not found in the \
                    directory '{}' (the tenant of identity '{}').",
                    identity.tenant_id, identity.id
                ),
            )
        })?;
    if vault.tenant_id != identity.tenant_id && !application.is_multi_tenant() {
        return Err(ChainFailure::new(
            "AdalGenericError",
            format!(
                "AADSTS700016: Application with identifier '{app_id}' was not found in the \
                    directory '{}'. Its signInAudience is '{}'; a key in another tenant needs \
                    'AzureADMultipleOrgs'.",
                vault.tenant_id, application.sign_in_audience
            ),
        ));
    }

    let issuer = format!("https://login.microsoftonline.com/{}/v2.0", identity.tenant_id);
    let subject = identity.principal_id.to_string();
    let trusted = world.credentials_of(application.object_id).iter().any(|credential| {
        world.replicated(ReplicatedKind::FederatedCredential, credential.created)
            && credential.issuer == issuer
            && credential.subject == subject
            && credential.audiences.iter().any(|audience| audience == TOKEN_EXCHANGE_AUDIENCE)
    });
    if !trusted {
        return Err(ChainFailure::new(
            "AdalGenericError",
            format!(
                "AADSTS70021: No matching federated identity record found for presented assertion. \
                    Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion \
                    Audience: '{TOKEN_EXCHANGE_AUDIENCE}'. Application {app_id} (object {}) has no \
                    federated identity credential for identity '{}'.",
                application.object_id, identity.id
            ),
        ));
    }

    let principal =
        world.visible_principal_by_app_id(vault.tenant_id, app_id).ok_or_else(|| {
            ChainFailure::new(
                "AdalServicePrincipalNotFound",
                format!(
                    "AADSTS700016: Application with identifier '{app_id}' was not found in the \
                    directory '{}'. This can happen if the application has not been installed by \
                    the administrator of the tenant: create its service principal in the vault's \
                    tenant.",
                    vault.tenant_id
                ),
            )
        })?;
    Ok(principal.object_id)
}

fn check_permissions(
    world: &World,
    vault: &Vault,
    principal: Uuid,
    kid: &KeyIdentifier,
) -> Result<(), ChainFailure> {
    let needed = [KeyOperation::Get, KeyOperation::WrapKey, KeyOperation::UnwrapKey];
    let missing: Vec<&str> = needed
        .iter()
        .filter(|operation| !may(world, vault, principal, &kid.name, **operation))
        .map(|operation| operation.permission())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let model = if vault.enable_rbac_authorization {
        "a role assignment of Key Vault Crypto Service Encryption User at the vault or key scope"
    } else {
        "an access policy entry"
    };
    Err(ChainFailure::new(
        "AzureKeyVaultMissingPermissions",
        format!(
            "The server is missing required permissions on the Azure Key Vault '{}': principal \
                {principal} lacks {} on key '{}'; grant it with {model}.",
            vault.name,
            missing.join(", "),
            kid.name
        ),
    ))
}

fn check_key(vault: &Vault, kid: &KeyIdentifier) -> Result<(), ChainFailure> {
    let version = vault.live_key(&kid.name).and_then(|key| key.version(&kid.version)).ok_or_else(
        || ChainFailure {
            status: StatusCode::CONFLICT,
            code: "AzureKeyVaultKeyNameNotFound",
            message: format!(
                "The Azure Key Vault Key name '{}' (version '{}') does not exist in vault '{}'.",
                kid.name, kid.version, vault.name
            ),
        },
    )?;
    if !version.enabled {
        return Err(ChainFailure::new(
            "AzureKeyVaultKeyDisabled",
            format!(
                "The key '{}' version '{}' in vault '{}' is disabled.",
                kid.name, version.version, vault.name
            ),
        ));
    }
    if !version.usable_at(unix_now()) {
        return Err(ChainFailure::new(
            "AzureKeyVaultInvalidExpirationDate",
            format!(
                "The key '{}' version '{}' in vault '{}' is expired or not yet active.",
                kid.name, version.version, vault.name
            ),
        ));
    }
    let rsa = matches!(version.kty.as_str(), "RSA" | "RSA-HSM");
    let size = version.key_size.unwrap_or_default();
    if !rsa || !matches!(size, 2048 | 3072) {
        return Err(ChainFailure::new(
            "AzureKeyVaultRsaKeyNotSupported",
            format!(
                "The provided key is not supported: key '{}' is {} {size}; the supported RSA key \
                    size is 2048 or 3072 and Key Type is RSA or RSA-HSM.",
                kid.name, version.kty
            ),
        ));
    }
    Ok(())
}
