//! The provider block's arguments, their `ARM_*` fallbacks and their precedence.
//!
//! A value in the block beats the environment; among environment variables the first set wins,
//! in the order the azurerm provider reads them, so existing CI setups work unchanged.

use std::path::PathBuf;

use crate::azure::cloud::CloudEnvironment;
use crate::azure::credentials::{CredentialError, CredentialOptions};
use crate::azure::secret::Secret;
use crate::framework::{Attribute, Block, Diagnostic, Diagnostics, Schema, Validator, Value};
use crate::resources::validators;

/// One argument: its name and the environment variables it falls back to, in order.
struct Argument {
    name: &'static str,
    environment: &'static [&'static str],
}

const ARGUMENTS: &[Argument] = &[
    Argument { name: "tenant_id", environment: &["ARM_TENANT_ID"] },
    Argument { name: "subscription_id", environment: &["ARM_SUBSCRIPTION_ID"] },
    Argument { name: "client_id", environment: &["ARM_CLIENT_ID"] },
    Argument { name: "client_id_file_path", environment: &["ARM_CLIENT_ID_FILE_PATH"] },
    Argument { name: "client_secret", environment: &["ARM_CLIENT_SECRET"] },
    Argument { name: "client_secret_file_path", environment: &["ARM_CLIENT_SECRET_FILE_PATH"] },
    Argument { name: "client_certificate", environment: &["ARM_CLIENT_CERTIFICATE"] },
    Argument { name: "client_certificate_path", environment: &["ARM_CLIENT_CERTIFICATE_PATH"] },
    Argument {
        name: "client_certificate_password",
        environment: &["ARM_CLIENT_CERTIFICATE_PASSWORD"],
    },
    Argument { name: "use_oidc", environment: &["ARM_USE_OIDC"] },
    Argument { name: "oidc_token", environment: &["ARM_OIDC_TOKEN"] },
    Argument { name: "oidc_token_file_path", environment: &["ARM_OIDC_TOKEN_FILE_PATH"] },
    Argument {
        name: "oidc_request_url",
        environment: &[
            "ARM_OIDC_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "SYSTEM_OIDCREQUESTURI",
        ],
    },
    Argument {
        name: "oidc_request_token",
        environment: &[
            "ARM_OIDC_REQUEST_TOKEN",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "SYSTEM_ACCESSTOKEN",
        ],
    },
    Argument { name: "use_msi", environment: &["ARM_USE_MSI"] },
    Argument { name: "msi_endpoint", environment: &["ARM_MSI_ENDPOINT"] },
    Argument { name: "use_cli", environment: &["ARM_USE_CLI"] },
    Argument { name: "environment", environment: &["ARM_ENVIRONMENT"] },
];

/// The provider block's schema.
pub fn provider_schema() -> Schema {
    let env = |name: &str| -> String {
        let argument = ARGUMENTS.iter().find(|argument| argument.name == name);
        let variables = argument.map(|argument| argument.environment).unwrap_or_default();
        let names: Vec<String> = variables.iter().map(|v| format!("`{v}`")).collect();
        format!(" Falls back to {}.", names.join(", then "))
    };
    let attributes = vec![
        Attribute::string("tenant_id")
            .optional()
            .validate(Validator::String(validators::uuid))
            .describe(format!(
                "The Entra tenant this provider block works in.{}",
                env("tenant_id")
            )),
        Attribute::string("subscription_id")
            .optional()
            .validate(Validator::String(validators::uuid))
            .describe(format!(
                "The subscription for resources that do not name their own.{}",
                env("subscription_id")
            )),
        Attribute::string("client_id")
            .optional()
            .validate(Validator::String(validators::uuid))
            .describe(format!(
                "The client id of the application to sign in as.{}",
                env("client_id")
            )),
        Attribute::string("client_id_file_path").optional().describe(format!(
            "A file holding the client id, as HCP Terraform writes for each tagged dynamic \
             credential.{}",
            env("client_id_file_path")
        )),
        Attribute::string("client_secret")
            .optional()
            .sensitive()
            .describe(format!("A client secret of that application.{}", env("client_secret"))),
        Attribute::string("client_secret_file_path").optional().describe(format!(
            "A file holding the client secret.{}",
            env("client_secret_file_path")
        )),
        Attribute::string("client_certificate").optional().sensitive().describe(format!(
            "A base64-encoded PKCS#12 client certificate.{}",
            env("client_certificate")
        )),
        Attribute::string("client_certificate_path").optional().describe(format!(
            "A PKCS#12 client certificate file.{}",
            env("client_certificate_path")
        )),
        Attribute::string("client_certificate_password").optional().sensitive().describe(format!(
            "The client certificate's password.{}",
            env("client_certificate_password")
        )),
        Attribute::bool("use_oidc").optional().describe(format!(
            "Sign in with an OpenID Connect token (workload identity federation).{}",
            env("use_oidc")
        )),
        Attribute::string("oidc_token")
            .optional()
            .sensitive()
            .describe(format!("An OIDC token to exchange for Azure tokens.{}", env("oidc_token"))),
        Attribute::string("oidc_token_file_path").optional().describe(format!(
            "A file holding the OIDC token, read again for every token request.{}",
            env("oidc_token_file_path")
        )),
        Attribute::string("oidc_request_url").optional().describe(format!(
            "The URL to request an OIDC token from (GitHub Actions, Azure DevOps).{}",
            env("oidc_request_url")
        )),
        Attribute::string("oidc_request_token").optional().sensitive().describe(format!(
            "The bearer token for `oidc_request_url`.{}",
            env("oidc_request_token")
        )),
        Attribute::bool("use_msi")
            .optional()
            .describe(format!("Sign in with a managed identity.{}", env("use_msi"))),
        Attribute::string("msi_endpoint")
            .optional()
            .describe(format!("A custom managed identity endpoint.{}", env("msi_endpoint"))),
        Attribute::bool("use_cli").optional().describe(format!(
            "Sign in with the Azure CLI's login when nothing else is configured (default \
             true).{}",
            env("use_cli")
        )),
        Attribute::string("environment")
            .optional()
            .validate(Validator::OneOf(&["public", "usgovernment", "china"]))
            .describe(format!(
                "The Azure cloud: `public` (default), `usgovernment` or `china`.{}",
                env("environment")
            )),
    ];
    let description = "Sets up Azure SQL transparent data encryption with a customer-managed key \
                       held in another Entra tenant. Use one provider block per tenant, with \
                       `alias` when one configuration works in both.";
    Schema { version: 0, block: Block::new(description, attributes) }
}

/// The provider block resolved against the environment.
#[derive(Debug)]
pub struct ProviderConfig {
    /// How to authenticate.
    pub credentials: CredentialOptions,
    /// The default subscription.
    pub subscription_id: Option<String>,
}

impl ProviderConfig {
    /// Resolves the block's values, falling back to the environment through `lookup`.
    pub fn resolve(
        config: &Value,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ProviderConfig, Diagnostics> {
        let setting = |name: &str| setting(config, name, &lookup);
        let flag = |name: &str, default: bool| -> Result<bool, Diagnostics> {
            match config.attribute(name) {
                Value::Bool(value) => Ok(*value),
                _ => match setting(name) {
                    None => Ok(default),
                    Some(text) => parse_flag(name, &text),
                },
            }
        };

        let tenant_id = setting("tenant_id").ok_or_else(missing_tenant)?;
        let cloud = match setting("environment") {
            None => CloudEnvironment::Public,
            Some(name) => {
                name.parse().map_err(|error: crate::azure::cloud::UnknownCloudError| {
                    Diagnostics::from(
                        Diagnostic::error("Invalid environment", format!("{error}."))
                            .at_attribute("environment"),
                    )
                })?
            }
        };
        let client_id =
            value_or_file(setting("client_id"), setting("client_id_file_path"), "client_id")?;
        let client_secret = value_or_file(
            setting("client_secret"),
            setting("client_secret_file_path"),
            "client_secret",
        )?;

        let credentials = CredentialOptions {
            tenant_id,
            client_id,
            client_secret: client_secret.map(Secret::from),
            client_certificate: setting("client_certificate").map(Secret::from),
            client_certificate_path: setting("client_certificate_path").map(PathBuf::from),
            client_certificate_password: setting("client_certificate_password").map(Secret::from),
            use_oidc: flag("use_oidc", false)?,
            oidc_token: setting("oidc_token").map(Secret::from),
            oidc_token_file_path: setting("oidc_token_file_path").map(PathBuf::from),
            oidc_request_url: setting("oidc_request_url"),
            oidc_request_token: setting("oidc_request_token").map(Secret::from),
            use_msi: flag("use_msi", false)?,
            msi_endpoint: setting("msi_endpoint"),
            use_cli: flag("use_cli", true)?,
            cloud,
        };
        Ok(ProviderConfig { credentials, subscription_id: setting("subscription_id") })
    }
}

/// A string argument from the block, else from its environment variables; blank counts as unset.
fn setting(config: &Value, name: &str, lookup: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let from_block = config.attribute(name).as_str().map(str::to_string);
    let from_environment = || {
        let argument = ARGUMENTS.iter().find(|argument| argument.name == name)?;
        argument.environment.iter().find_map(|variable| lookup(variable))
    };
    from_block
        .or_else(from_environment)
        .map(|text| text.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn parse_flag(name: &str, text: &str) -> Result<bool, Diagnostics> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Diagnostic::error(
            format!("Invalid {name}"),
            format!("{text:?} is not a boolean; set it to true or false."),
        )
        .at_attribute(name)
        .into()),
    }
}

/// A value given directly or in a file; both must agree when both are given.
fn value_or_file(
    value: Option<String>,
    file: Option<String>,
    name: &str,
) -> Result<Option<String>, Diagnostics> {
    let Some(path) = file else { return Ok(value) };
    let file_attribute = format!("{name}_file_path");
    let from_file = std::fs::read_to_string(&path).map_err(|error| {
        Diagnostics::from(
            Diagnostic::error(
                format!("Unreadable {file_attribute}"),
                format!("The file {path:?} could not be read: {error}."),
            )
            .at_attribute(&file_attribute),
        )
    })?;
    let from_file = from_file.trim().to_string();
    match value {
        Some(value) if value != from_file => Err(Diagnostic::error(
            format!("Conflicting {name}"),
            format!(
                "{name} and the contents of {file_attribute} differ. Set only one of them, or make \
                 them agree."
            ),
        )
        .at_attribute(name)
        .into()),
        _ => Ok(Some(from_file)),
    }
}

fn missing_tenant() -> Diagnostics {
    Diagnostic::error(
        "Missing tenant_id",
        "Each provider block must know its Entra tenant. Set tenant_id in the block, or \
         ARM_TENANT_ID in the environment.",
    )
    .at_attribute("tenant_id")
    .into()
}

/// Plan-time checks of the provider block.
pub fn validate(config: &Value) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    let both_set =
        |a: &str, b: &str| !config.attribute(a).is_null() && !config.attribute(b).is_null();
    if both_set("client_certificate", "client_certificate_path") {
        diagnostics.push(
            Diagnostic::error(
                "Conflicting client certificate",
                "Set client_certificate or client_certificate_path, not both.",
            )
            .at_attribute("client_certificate_path"),
        );
    }
    diagnostics
}

/// A diagnostic for a credential that could not be set up, naming the method and never a secret.
pub fn credential_diagnostic(config: &ProviderConfig, error: &CredentialError) -> Diagnostics {
    Diagnostic::error(
        "Cannot authenticate to Azure",
        format!(
            "The provider block for tenant {} could not set up its credentials: {error}. Check the \
             authentication arguments of this provider block (or their ARM_* variables).",
            config.credentials.tenant_id
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const TENANT: &str = "11111111-1111-1111-1111-111111111111";

    fn block(pairs: &[(&str, Value)]) -> Value {
        let Value::Object(mut attributes) = provider_schema_nulls() else { unreachable!() };
        for (name, value) in pairs {
            attributes.insert(name.to_string(), value.clone());
        }
        Value::Object(attributes)
    }

    fn provider_schema_nulls() -> Value {
        let schema = provider_schema();
        let names = schema.block.attributes.iter().map(|a| (a.name.to_string(), Value::Null));
        Value::Object(names.collect::<BTreeMap<_, _>>())
    }

    fn text(value: &str) -> Value {
        Value::String(value.into())
    }

    #[test]
    fn block_values_beat_the_environment() {
        let environment = |name: &str| match name {
            "ARM_TENANT_ID" => Some("22222222-2222-2222-2222-222222222222".to_string()),
            "ARM_SUBSCRIPTION_ID" => Some("33333333-3333-3333-3333-333333333333".to_string()),
            _ => None,
        };
        let resolved = ProviderConfig::resolve(&block(&[("tenant_id", text(TENANT))]), environment)
            .expect("resolves");
        assert_eq!(resolved.credentials.tenant_id, TENANT);
        assert_eq!(
            resolved.subscription_id.as_deref(),
            Some("33333333-3333-3333-3333-333333333333")
        );
    }

    #[test]
    fn the_first_set_variable_wins_in_azurerm_order() {
        let environment = |name: &str| match name {
            "ACTIONS_ID_TOKEN_REQUEST_URL" => Some("https://github.example/token".to_string()),
            "SYSTEM_OIDCREQUESTURI" => Some("https://devops.example/token".to_string()),
            "ARM_TENANT_ID" => Some(TENANT.to_string()),
            _ => None,
        };
        let resolved = ProviderConfig::resolve(&block(&[]), environment).expect("resolves");
        assert_eq!(
            resolved.credentials.oidc_request_url.as_deref(),
            Some("https://github.example/token")
        );
        assert!(resolved.credentials.use_cli, "use_cli defaults to true");
    }

    #[test]
    fn missing_tenant_points_at_the_attribute() {
        let error = ProviderConfig::resolve(&block(&[]), |_| None).unwrap_err();
        let diagnostic = error.iter().next().expect("a diagnostic");
        assert_eq!(
            diagnostic.attribute.as_ref().map(ToString::to_string).as_deref(),
            Some("tenant_id")
        );
        assert!(diagnostic.detail.contains("ARM_TENANT_ID"));
    }

    #[test]
    fn secret_file_and_value_must_agree() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"from-file\n").unwrap();
        let path = file.path().to_string_lossy().to_string();

        let agreeing =
            block(&[("tenant_id", text(TENANT)), ("client_secret_file_path", text(&path))]);
        let resolved = ProviderConfig::resolve(&agreeing, |_| None).unwrap();
        assert_eq!(resolved.credentials.client_secret.unwrap().expose(), "from-file");

        let conflicting = block(&[
            ("tenant_id", text(TENANT)),
            ("client_secret", text("other")),
            ("client_secret_file_path", text(&path)),
        ]);
        let error = ProviderConfig::resolve(&conflicting, |_| None).unwrap_err();
        let detail = &error.iter().next().unwrap().detail;
        assert!(
            !detail.contains("other") && !detail.contains("from-file"),
            "no secret in {detail}"
        );
    }

    #[test]
    fn flags_from_the_environment_must_be_booleans() {
        let environment = |name: &str| match name {
            "ARM_TENANT_ID" => Some(TENANT.to_string()),
            "ARM_USE_OIDC" => Some("yes please".to_string()),
            _ => None,
        };
        let error = ProviderConfig::resolve(&block(&[]), environment).unwrap_err();
        assert_eq!(error.iter().next().unwrap().summary, "Invalid use_oidc");
    }
}
