//! Plan-time checks of Azure's rules, shared by the provider block, resources and data sources.
//!
//! Each returns the problem as a sentence fragment naming the rule, so the diagnostic tells the
//! user what Azure accepts. Parsing of ids lives in `azure::ids`; these only call it.

use crate::azure::ids;

/// Tenant, subscription, client and object ids are GUIDs in Entra ID and ARM.
pub fn uuid(text: &str) -> Result<(), String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|_| ())
        .map_err(|_| format!("{text:?} is not a UUID such as 00000000-0000-0000-0000-000000000000"))
}

/// Resource group names: 1-90 characters of letters, digits, `_`, `-`, `.`, `(`, `)`, not ending
/// in `.` (ARM's rule).
pub fn resource_group_name(text: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_alphanumeric() || "_-.()".contains(c);
    if text.is_empty() || text.len() > 90 || !text.chars().all(allowed) || text.ends_with('.') {
        return Err(format!(
            "{text:?} is not a valid resource group name: use 1-90 letters, digits, '_', '-', '.', \
             '(' or ')', not ending in '.'"
        ));
    }
    Ok(())
}

/// User-assigned identity names: 3-128 characters, starting with a letter or digit, then
/// letters, digits, `-` and `_` (Microsoft.ManagedIdentity's rule).
pub fn identity_name(text: &str) -> Result<(), String> {
    let valid_first = text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let valid_rest = text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !(3..=128).contains(&text.len()) || !valid_first || !valid_rest {
        return Err(format!(
            "{text:?} is not a valid identity name: use 3-128 letters, digits, '-' or '_', \
             starting with a letter or digit"
        ));
    }
    Ok(())
}

/// Key Vault key names: 1-127 letters, digits and `-` (the data plane's rule).
pub fn key_name(text: &str) -> Result<(), String> {
    if text.is_empty()
        || text.len() > 127
        || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!("{text:?} is not a valid key name: use 1-127 letters, digits or '-'"));
    }
    Ok(())
}

/// Federated identity credential names: 3-120 characters of letters, digits, `-` and `_`,
/// starting with a letter or digit (Microsoft Graph's rule; the name is immutable).
pub fn federated_credential_name(text: &str) -> Result<(), String> {
    let valid_first = text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let valid_rest = text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !(3..=120).contains(&text.len()) || !valid_first || !valid_rest {
        return Err(format!(
            "{text:?} is not a valid federated credential name: Microsoft Graph accepts 3-120 \
             letters, digits, '-' or '_', starting with a letter or digit"
        ));
    }
    Ok(())
}

/// An ARM id of a user-assigned managed identity.
pub fn user_assigned_identity_id(text: &str) -> Result<(), String> {
    ids::UserAssignedIdentityId::parse(text).map(|_| ()).map_err(|error| error.to_string())
}

/// An ARM id of a SQL logical server.
pub fn sql_server_id(text: &str) -> Result<(), String> {
    ids::SqlServerId::parse(text).map(|_| ()).map_err(|error| error.to_string())
}

/// An ARM id of a key vault.
pub fn key_vault_id(text: &str) -> Result<(), String> {
    ids::KeyVaultId::parse(text).map(|_| ()).map_err(|error| error.to_string())
}

/// A Key Vault key identifier, with or without a version.
pub fn key_identifier(text: &str) -> Result<(), String> {
    ids::KeyVaultKeyId::parse(text).map(|_| ()).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_by_azure_rules() {
        type Check = fn(&str) -> Result<(), String>;
        let too_long = "a".repeat(121);
        let cases: [(&str, Check, &str, bool); 12] = [
            ("uuid", uuid, "8f5c1f3e-2b1a-4c4e-9a55-0c3b1f2d9e10", true),
            ("uuid typo", uuid, "8f5c1f3e-2b1a-4c4e-9a55", false),
            ("rg", resource_group_name, "rg-isv.prod(1)", true),
            ("rg trailing dot", resource_group_name, "rg.", false),
            ("identity", identity_name, "uami-cmk_01", true),
            ("identity too short", identity_name, "ab", false),
            ("key", key_name, "tde-key-1", true),
            ("key underscore", key_name, "tde_key", false),
            ("credential", federated_credential_name, "sql-cmk-uami", true),
            ("credential leading dash", federated_credential_name, "-sql", false),
            ("credential space", federated_credential_name, "sql cmk", false),
            ("credential too long", federated_credential_name, &too_long, false),
        ];
        for (name, check, input, valid) in cases {
            assert_eq!(check(input).is_ok(), valid, "{name}: {:?}", check(input));
        }
    }
}
