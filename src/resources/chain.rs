//! Which of the nine cross-tenant steps an Azure SQL refusal points at.
//!
//! When SQL cannot use the customer's key it answers with one of a few error codes, some of which
//! wrap an Entra (AADSTS) error. The ISV's provider block cannot see the customer's tenant, so the
//! most useful thing it can do is name the step that is missing and who must fix it.

/// A step of the chain that SQL found missing, and what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingStep {
    /// The resource that performs the step.
    pub resource: &'static str,
    /// What is missing and what to do, in a sentence.
    pub advice: &'static str,
}

/// The missing step behind an Azure SQL error code and message, if it is a known one.
pub fn missing_step(code: &str, message: &str) -> Option<MissingStep> {
    let step = |resource, advice| Some(MissingStep { resource, advice });
    // Entra's codes are more precise than SQL's wrapper codes, so look at them first.
    if message.contains("AADSTS70021") || message.contains("AADSTS700213") {
        return step(
            "azurecmk_federated_app_credential",
            "The application has no federated credential trusting the server's managed identity \
             (issuer, subject or audience differ, or it was created moments ago). Create the \
             credential for this identity on this application.",
        );
    }
    if message.contains("AADSTS700016") {
        // Entra gives this one answer for three causes it does not tell apart.
        return step(
            "azurecmk_application_installation",
            "Entra does not know the application in the tenant it was asked about. Either the \
             application is not installed in the key's tenant (the customer must create its \
             service principal there), or federated_client_id is not the application's client \
             id (an object id, say), or the application is no longer multi-tenant \
             (AzureADMultipleOrgs).",
        );
    }
    match code {
        "AdalServicePrincipalNotFound" => step(
            "azurecmk_application_installation",
            "The application is not installed in the key's tenant: the customer must create its \
             service principal there.",
        ),
        "AzureKeyVaultMissingPermissions" | "UmiMissingAkvPermissions" => step(
            "azurecmk_cross_tenant_key_grant",
            "The application's service principal in the key's tenant lacks get, wrapKey and \
             unwrapKey on the key: the customer must grant them.",
        ),
        "AzureKeyVaultKeyDisabled" => step(
            "azurecmk_key_vault_key",
            "The key is disabled: the customer must enable it again.",
        ),
        "AzureKeyVaultInvalidExpirationDate" => step(
            "azurecmk_key_vault_key",
            "The key has expired or is not active yet: the customer must extend its expiry date \
             or use another key.",
        ),
        "AzureKeyVaultKeyNameNotFound" | "KeyMaterialNotFoundOnRemoteServer" => step(
            "azurecmk_key_vault_key",
            "The key does not exist in the vault: check key_id, or ask the customer whether it \
             was deleted.",
        ),
        "AzureKeyVaultRsaKeyNotSupported" => step(
            "azurecmk_key_vault_key",
            "Only RSA or RSA-HSM keys of 2048 or 3072 bits can protect a SQL server.",
        ),
        "SecurityInvalidAzureKeyVaultRecoveryLevel" => step(
            "azurecmk_key_vault_key",
            "The key's vault must have soft delete and purge protection enabled; purge \
             protection cannot be turned off once on.",
        ),
        "InvalidIdentityTypeForKeyId"
        | "AzureKeyVaultNoServerIdentity"
        | "MissingPrimaryIdentity"
        | "InvalidPrimaryIdentityId" => step(
            "azurecmk_sql_tde_cross_tenant_protector",
            "The server has no user-assigned primary identity for reaching the key.",
        ),
        "AdalGenericError" => step(
            "azurecmk_federated_app_credential",
            "Entra refused the server's identity when it asked for a token in the key's tenant; \
             check the application's federated credential and its installation in that tenant.",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_broken_link_names_its_resource() {
        let cases = [
            (
                "no credential",
                "AdalGenericError",
                "AADSTS70021: No matching federated identity record",
                "azurecmk_federated_app_credential",
            ),
            (
                "no service principal",
                "AdalServicePrincipalNotFound",
                "AADSTS700016: Application not found",
                "azurecmk_application_installation",
            ),
            (
                "no grant",
                "AzureKeyVaultMissingPermissions",
                "missing permissions",
                "azurecmk_cross_tenant_key_grant",
            ),
            ("disabled key", "AzureKeyVaultKeyDisabled", "", "azurecmk_key_vault_key"),
            (
                "no purge protection",
                "SecurityInvalidAzureKeyVaultRecoveryLevel",
                "",
                "azurecmk_key_vault_key",
            ),
            (
                "aadsts beats the wrapper code",
                "AzureKeyVaultMissingPermissions",
                "AADSTS700016",
                "azurecmk_application_installation",
            ),
        ];
        for (name, code, message, resource) in cases {
            let step = missing_step(code, message).unwrap_or_else(|| panic!("{name}: no step"));
            assert_eq!(step.resource, resource, "{name}");
        }
    }

    #[test]
    fn unrelated_errors_name_no_step() {
        assert_eq!(missing_step("ServerNotInSubscriptionResourceGroup", "not found"), None);
    }
}
