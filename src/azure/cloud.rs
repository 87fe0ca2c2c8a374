//! Azure clouds and their endpoints: public, US Government and China.
//!
//! This module owns the endpoint table and nothing else. It must never read the environment or
//! the provider configuration; callers pass the parsed [`CloudEnvironment`].

use std::fmt;
use std::str::FromStr;

use url::Url;

/// One of the national clouds the provider can talk to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CloudEnvironment {
    /// Azure public cloud (`public`).
    #[default]
    Public,
    /// Azure US Government (`usgovernment`).
    UsGovernment,
    /// Azure operated by 21Vianet (`china`).
    China,
}

/// The `environment` value was not one of the allowed names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Azure environment {given:?}: allowed values are public, usgovernment, china")]
pub struct UnknownCloudError {
    /// What the user wrote.
    pub given: String,
}

impl FromStr for CloudEnvironment {
    type Err = UnknownCloudError;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        match given.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "usgovernment" => Ok(Self::UsGovernment),
            "china" => Ok(Self::China),
            _ => Err(UnknownCloudError { given: given.to_owned() }),
        }
    }
}

impl fmt::Display for CloudEnvironment {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Public => "public",
            Self::UsGovernment => "usgovernment",
            Self::China => "china",
        })
    }
}

impl CloudEnvironment {
    /// The endpoints of this cloud.
    pub fn endpoints(self) -> CloudEndpoints {
        match self {
            Self::Public => CloudEndpoints::from_parts(
                "https://login.microsoftonline.com",
                "https://management.azure.com",
                "https://graph.microsoft.com",
                "vault.azure.net",
                "api://AzureADTokenExchange",
            ),
            Self::UsGovernment => CloudEndpoints::from_parts(
                "https://login.microsoftonline.us",
                "https://management.usgovcloudapi.net",
                "https://graph.microsoft.us",
                "vault.usgovcloudapi.net",
                "api://AzureADTokenExchangeUSGov",
            ),
            Self::China => CloudEndpoints::from_parts(
                "https://login.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "vault.azure.cn",
                "api://AzureADTokenExchangeChina",
            ),
        }
    }
}

/// Where a cloud's services live and which token scopes they take.
///
/// Built from a [`CloudEnvironment`]; the fields are public so a custom cloud (or a test server)
/// can override single endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// Entra authority host, e.g. `https://login.microsoftonline.com`.
    pub authority_host: Url,
    /// Azure Resource Manager, e.g. `https://management.azure.com`.
    pub resource_manager: Url,
    /// Microsoft Graph, e.g. `https://graph.microsoft.com`.
    pub graph: Url,
    /// DNS suffix of Key Vault hosts, e.g. `vault.azure.net`.
    pub key_vault_dns_suffix: String,
    /// Audience of the tokens exchanged for federated credentials,
    /// e.g. `api://AzureADTokenExchange`.
    pub token_exchange_audience: String,
}

impl CloudEndpoints {
    fn from_parts(
        authority_host: &str,
        resource_manager: &str,
        graph: &str,
        key_vault_dns_suffix: &str,
        token_exchange_audience: &str,
    ) -> Self {
        // The table above holds literals that are valid URLs; a failure here is a typo in it.
        let parse = |text: &str| Url::parse(text).expect("cloud endpoint table holds valid URLs");
        Self {
            authority_host: parse(authority_host),
            resource_manager: parse(resource_manager),
            graph: parse(graph),
            key_vault_dns_suffix: key_vault_dns_suffix.to_owned(),
            token_exchange_audience: token_exchange_audience.to_owned(),
        }
    }

    /// Token scope for Azure Resource Manager, e.g. `https://management.azure.com/.default`.
    pub fn resource_manager_scope(&self) -> String {
        scope_for(&self.resource_manager)
    }

    /// Token scope for Microsoft Graph, e.g. `https://graph.microsoft.com/.default`.
    pub fn graph_scope(&self) -> String {
        scope_for(&self.graph)
    }

    /// Token scope for the Key Vault data plane, e.g. `https://vault.azure.net/.default`.
    pub fn key_vault_scope(&self) -> String {
        format!("https://{}/.default", self.key_vault_dns_suffix)
    }

    /// Issuer of the tokens a tenant's managed identities present to federated credentials.
    ///
    /// Entra issues them as `{authority}/{tenant}/v2.0`, which is what a federated identity
    /// credential must name as its issuer.
    pub fn issuer_for_tenant(&self, tenant_id: &str) -> String {
        let authority = self.authority_host.as_str().trim_end_matches('/');
        format!("{authority}/{tenant_id}/v2.0")
    }
}

/// `https://host/.default` for a service base URL, without any path the URL may carry.
fn scope_for(base: &Url) -> String {
    let origin = base.origin().ascii_serialization();
    format!("{origin}/.default")
}

#[cfg(test)]
mod tests {
    use super::{CloudEnvironment, UnknownCloudError};

    #[test]
    fn parses_allowed_names() {
        let cases = [
            ("public", "public", CloudEnvironment::Public),
            ("usgovernment", "usgovernment", CloudEnvironment::UsGovernment),
            ("china", "china", CloudEnvironment::China),
            ("upper case", "Public", CloudEnvironment::Public),
            ("surrounding spaces", " china ", CloudEnvironment::China),
        ];
        for (name, input, expected) in cases {
            assert_eq!(input.parse::<CloudEnvironment>(), Ok(expected), "{name}");
        }
    }

    #[test]
    fn rejects_unknown_names_listing_allowed_values() {
        let error: UnknownCloudError = "global".parse::<CloudEnvironment>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown Azure environment \"global\": allowed values are public, usgovernment, china"
        );
    }

    #[test]
    fn endpoints_per_cloud() {
        let cases = [
            (
                CloudEnvironment::Public,
                "https://login.microsoftonline.com/",
                "https://management.azure.com/.default",
                "https://graph.microsoft.com/.default",
                "https://vault.azure.net/.default",
                "api://AzureADTokenExchange",
            ),
            (
                CloudEnvironment::UsGovernment,
                "https://login.microsoftonline.us/",
                "https://management.usgovcloudapi.net/.default",
                "https://graph.microsoft.us/.default",
                "https://vault.usgovcloudapi.net/.default",
                "api://AzureADTokenExchangeUSGov",
            ),
            (
                CloudEnvironment::China,
                "https://login.chinacloudapi.cn/",
                "https://management.chinacloudapi.cn/.default",
                "https://microsoftgraph.chinacloudapi.cn/.default",
                "https://vault.azure.cn/.default",
                "api://AzureADTokenExchangeChina",
            ),
        ];
        for (cloud, authority, arm_scope, graph_scope, vault_scope, audience) in cases {
            let endpoints = cloud.endpoints();
            assert_eq!(endpoints.authority_host.as_str(), authority, "{cloud}");
            assert_eq!(endpoints.resource_manager_scope(), arm_scope, "{cloud}");
            assert_eq!(endpoints.graph_scope(), graph_scope, "{cloud}");
            assert_eq!(endpoints.key_vault_scope(), vault_scope, "{cloud}");
            assert_eq!(endpoints.token_exchange_audience, audience, "{cloud}");
        }
    }

    #[test]
    fn issuer_has_no_double_slash() {
        let endpoints = CloudEnvironment::Public.endpoints();
        assert_eq!(
            endpoints.issuer_for_tenant("11111111-1111-1111-1111-111111111111"),
            "https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111/v2.0"
        );
    }
}
