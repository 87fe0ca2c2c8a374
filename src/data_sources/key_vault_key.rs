//! Data source `azurecmk_key_vault_key`: reads an existing key, for customers who keep their keys
//! outside Terraform or in another configuration, and hands its identifier to the ISV.
//!
//! The vault is named by its ARM id (one more ARM read, to learn its URI) or directly by its URI.
//! This data source only reads; it must never create, rotate or change a key.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::azure::ids::{KeyVaultId, KeyVaultKeyId};
use crate::azure::key_vault::{self, Key};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::Operation;
use crate::framework::{
    Attribute, Block, Context, DataSource, Diagnostic, Diagnostics, Schema, Validator, Value,
};
use crate::provider::Clients;
use crate::resources::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context};
use crate::resources::key_vault_key::{format_expiry, read_vault};
use crate::resources::validators;

/// The data source's configuration and result.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    key_vault_id: Option<String>,
    vault_uri: Option<String>,
    name: String,
    version: Option<String>,
    versionless_id: Option<String>,
    key_type: Option<String>,
    key_size: Option<i64>,
    enabled: Option<bool>,
    expiration_date: Option<String>,
}

/// The data source.
pub struct KeyVaultKeyData {
    schema: Schema,
}

impl KeyVaultKeyData {
    /// The data source with its schema.
    pub fn new() -> KeyVaultKeyData {
        KeyVaultKeyData { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().describe(
            "The versioned key identifier, \
             `https://<vault>.vault.azure.net/keys/<name>/<version>`.",
        ),
        Attribute::string("key_vault_id")
            .optional()
            .validate(Validator::String(validators::key_vault_id))
            .describe("The vault's ARM id. Set this or `vault_uri`, not both."),
        Attribute::string("vault_uri")
            .optional_computed()
            .validate(Validator::String(vault_uri))
            .describe(
                "The vault's URI, such as `https://contoso.vault.azure.net/`. Set this or \
                 `key_vault_id`, not both; with `key_vault_id` it is read from the vault.",
            ),
        Attribute::string("name")
            .required()
            .validate(Validator::String(validators::key_name))
            .describe("The key's name."),
        Attribute::string("version")
            .optional_computed()
            .validate(Validator::String(key_version))
            .describe("A specific version (32 hex digits); the latest when omitted."),
        Attribute::string("versionless_id")
            .computed()
            .describe("The key identifier without a version."),
        Attribute::string("key_type").computed().describe("`RSA`, `RSA-HSM`, `EC`, ..."),
        Attribute::number("key_size").computed().describe("The RSA modulus size in bits."),
        Attribute::bool("enabled")
            .computed()
            .describe("Whether the version can be used; Azure SQL needs it enabled."),
        Attribute::string("expiration_date")
            .computed()
            .describe("When the version expires (RFC 3339), if it does."),
    ];
    let description = "Reads a key in a key vault: its identifier for the ISV's TDE protector \
                       and what decides whether Azure SQL can use it.";
    Schema { version: 0, block: Block::new(description, attributes) }
}

#[async_trait]
impl DataSource<Clients> for KeyVaultKeyData {
    fn type_name(&self) -> &'static str {
        "azurecmk_key_vault_key"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        exactly_one_vault(config).map(Diagnostics::from).unwrap_or_default()
    }

    async fn read(
        &self,
        context: &Context<'_, Clients>,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        let mut model: Model = from_value(config)?;
        let call = call_context(context, config, Operation::Read, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let (vault_uri, attribute) = match &model.key_vault_id {
            Some(text) => {
                let vault_id = KeyVaultId::parse(text).map_err(|error| {
                    Diagnostic::error("Invalid key_vault_id", format!("{error}."))
                        .at_attribute("key_vault_id")
                })?;
                (read_vault(azure, &vault_id, &call).await?.vault_uri, "key_vault_id")
            }
            None => (model.vault_uri.clone().unwrap_or_default(), "vault_uri"),
        };
        let key_id = key_id(&vault_uri, &model.name, model.version.as_deref())
            .map_err(|problem| Diagnostic::error("Invalid key", problem).at_attribute(attribute))?;

        let key = key_vault::get_key(azure, &key_id, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("reading key {key_id}"), &error))?
            .ok_or_else(|| key_not_found(&key_id, model.version.is_some()))?;

        flatten(&mut model, &key);
        Ok(to_value(&model, &self.schema))
    }
}

/// The key's id in the vault at `vault_uri`: versioned when a version is given.
fn key_id(vault_uri: &str, name: &str, version: Option<&str>) -> Result<KeyVaultKeyId, String> {
    let base = vault_uri.trim().trim_end_matches('/');
    let text = match version {
        Some(version) => format!("{base}/keys/{name}/{version}"),
        None => format!("{base}/keys/{name}"),
    };
    KeyVaultKeyId::parse(&text).map_err(|error| format!("{error}."))
}

/// Fills the computed attributes; what the user set stays as written.
fn flatten(model: &mut Model, key: &Key) {
    model.id = Some(key.id.to_string());
    model.versionless_id = Some(key.id.versionless().to_string());
    model.version.get_or_insert_with(|| key.id.version.clone().unwrap_or_default());
    model.vault_uri.get_or_insert_with(|| key.id.vault_uri());
    model.key_type = Some(key.key_type.clone());
    model.key_size = key.key_size.map(i64::from);
    model.enabled = Some(key.enabled);
    model.expiration_date = key.expires.and_then(format_expiry);
}

/// The vault is named one way or the other; both or neither is ambiguous.
fn exactly_one_vault(config: &Value) -> Option<Diagnostic> {
    let by_id = !config.attribute("key_vault_id").is_null();
    let by_uri = !config.attribute("vault_uri").is_null();
    let problem = match (by_id, by_uri) {
        (true, false) | (false, true) => return None,
        (true, true) => "Set key_vault_id or vault_uri, not both.",
        (false, false) => "Set key_vault_id (the vault's ARM id) or vault_uri to name the vault.",
    };
    Some(Diagnostic::error("Vault named ambiguously", problem).at_attribute("vault_uri"))
}

/// Key Vault data plane URIs are https URLs with nothing after the host.
fn vault_uri(text: &str) -> Result<(), String> {
    let parsed = Url::parse(text.trim()).ok();
    let valid = parsed.is_some_and(|url| {
        url.scheme() == "https"
            && url.host_str().is_some_and(|host| !host.is_empty())
            && url.path().trim_matches('/').is_empty()
            && url.query().is_none()
    });
    if valid {
        Ok(())
    } else {
        Err(format!("{text:?} is not a vault URI such as \"https://contoso.vault.azure.net/\""))
    }
}

/// Key versions are 32 hexadecimal digits.
fn key_version(text: &str) -> Result<(), String> {
    if text.len() == 32 && text.chars().all(|character| character.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{text:?} is not a key version (32 hexadecimal digits)"))
    }
}

fn key_not_found(key_id: &KeyVaultKeyId, versioned: bool) -> Diagnostics {
    let attribute = if versioned { "version" } else { "name" };
    Diagnostic::error(
        "Key not found",
        format!(
            "Key {key_id} does not exist (or is soft-deleted). Check the name{}, and that the \
             provider block signs in to the vault's tenant with permission to read keys.",
            if versioned { " and version" } else { "" }
        ),
    )
    .at_attribute(attribute)
    .into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const VERSION: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn key_ids_from_vault_uris() {
        let cases = [
            (
                "trailing slash",
                "https://kv.vault.azure.net/",
                None,
                Ok("https://kv.vault.azure.net/keys/tde"),
            ),
            (
                "no slash, upper case",
                "https://KV.vault.azure.net",
                None,
                Ok("https://kv.vault.azure.net/keys/tde"),
            ),
            (
                "versioned",
                "https://kv.vault.azure.net/",
                Some(VERSION),
                Ok(&*format!("https://kv.vault.azure.net/keys/tde/{VERSION}")),
            ),
            ("plain http", "http://kv.vault.azure.net/", None, Err("https")),
            ("bad version", "https://kv.vault.azure.net/", Some("v1"), Err("32 hexadecimal")),
        ];
        for (name, uri, version, expected) in cases {
            match (key_id(uri, "tde", version), expected) {
                (Ok(id), Ok(text)) => assert_eq!(id.to_string(), text, "{name}"),
                (Err(problem), Err(text)) => assert!(problem.contains(text), "{name}: {problem}"),
                (result, _) => panic!("{name}: unexpected {result:?}"),
            }
        }
    }

    #[test]
    fn the_vault_is_named_exactly_once() {
        let text = |value: &str| Value::String(value.to_string());
        let config = |id: Value, uri: Value| {
            Value::Object(BTreeMap::from([
                ("key_vault_id".to_string(), id),
                ("vault_uri".to_string(), uri),
            ]))
        };
        let cases = [
            ("by id", config(text("/subscriptions/s"), Value::Null), true),
            ("by uri", config(Value::Null, text("https://kv.vault.azure.net/")), true),
            ("by unknown id", config(Value::Unknown, Value::Null), true),
            ("both", config(text("/subscriptions/s"), text("https://kv.vault.azure.net/")), false),
            ("neither", config(Value::Null, Value::Null), false),
        ];
        for (name, config, valid) in cases {
            assert_eq!(exactly_one_vault(&config).is_none(), valid, "{name}");
        }
    }

    #[test]
    fn vault_uri_and_version_rules() {
        type Check = fn(&str) -> Result<(), String>;
        let cases: [(&str, Check, &str, bool); 6] = [
            ("uri", vault_uri, "https://kv.vault.azure.net/", true),
            ("uri without slash", vault_uri, "https://kv.vault.azure.net", true),
            ("uri with a path", vault_uri, "https://kv.vault.azure.net/keys/k", false),
            ("uri over http", vault_uri, "http://kv.vault.azure.net/", false),
            ("version", key_version, VERSION, true),
            ("short version", key_version, "abc", false),
        ];
        for (name, check, input, valid) in cases {
            assert_eq!(check(input).is_ok(), valid, "{name}");
        }
    }
}
