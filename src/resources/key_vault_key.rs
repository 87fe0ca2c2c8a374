//! `azurecmk_key_vault_key`: the customer's RSA key that Azure SQL wraps its database encryption
//! keys with (step 5).
//!
//! Create refuses a vault that lacks soft delete or purge protection: Azure SQL rejects keys in
//! such vaults as TDE protectors, and without purge protection one deleted key destroys the
//! customer's data for good. Create also refuses a name that already holds a key, because
//! creating over it would silently rotate a key that may already protect databases. Only the
//! expiry changes in place; everything else replaces the key. Destroy soft-deletes: a
//! purge-protected vault keeps the key recoverable for its retention period.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::azure::error::AzureError;
use crate::azure::ids::{KeyVaultId, KeyVaultKeyId};
use crate::azure::key_vault::{self, CreateKey, Key, KeyAttributesUpdate, Vault};
use crate::azure::{AzureClient, CallContext};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, AttributePath, Block, Change, Context, Diagnostic, Diagnostics, Plan,
    ReadResult, Resource, Schema, Validator, Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context};
use super::validators;

/// The key types Azure SQL accepts as a TDE protector.
const KEY_TYPES: &[&str] = &["RSA", "RSA-HSM"];

/// The RSA sizes Azure SQL accepts as a TDE protector.
const KEY_SIZES: &[i64] = &[2048, 3072];

/// The operations the key allows: Azure SQL only wraps and unwraps with it.
const KEY_OPERATIONS: [&str; 2] = ["wrapKey", "unwrapKey"];

/// The resource's state and configuration.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    key_vault_id: String,
    name: String,
    key_type: String,
    key_size: i64,
    expiration_date: Option<String>,
    versionless_id: Option<String>,
    version: Option<String>,
    vault_uri: Option<String>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct KeyVaultKey {
    schema: Schema,
}

impl KeyVaultKey {
    /// The resource with its schema.
    pub fn new() -> KeyVaultKey {
        KeyVaultKey { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().describe(
            "The versioned key identifier, \
             `https://<vault>.vault.azure.net/keys/<name>/<version>`: what the ISV's TDE \
             protector names. A rotation in the vault shows as a new value.",
        ),
        Attribute::string("key_vault_id")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::key_vault_id))
            .describe(
                "The ARM id of the vault. It must have soft delete and purge protection enabled.",
            ),
        Attribute::string("name")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::key_name))
            .describe("The key's name in the vault: 1-127 letters, digits and dashes."),
        Attribute::string("key_type")
            .required()
            .requires_replace()
            .validate(Validator::OneOf(KEY_TYPES))
            .describe("`RSA`, or `RSA-HSM` for a key held in an HSM (premium vaults)."),
        Attribute::number("key_size")
            .required()
            .requires_replace()
            .validate(Validator::OneOfNumbers(KEY_SIZES))
            .describe("The RSA modulus size: `2048` or `3072`, the sizes Azure SQL accepts."),
        Attribute::string("expiration_date")
            .optional()
            .validate(Validator::String(rfc3339))
            .describe(
                "When the key expires, in RFC 3339 (`2030-01-01T00:00:00Z`). Changes in place. \
                 Azure SQL cannot use an expired key, so databases become inaccessible after it. \
                 Key Vault cannot clear an expiry once set; move it later instead.",
            ),
        Attribute::string("versionless_id").computed().describe(
            "The key identifier without a version, for protectors with automatic rotation.",
        ),
        Attribute::string("version").computed().describe("The current version of the key."),
        Attribute::string("vault_uri")
            .computed()
            .describe("The vault's data plane URI, such as `https://contoso.vault.azure.net/`."),
    ];
    let description = "An RSA key in the customer's key vault for Azure SQL transparent data \
                       encryption. The vault must have soft delete and purge protection. Destroy \
                       soft-deletes the key. Import by its `id`, the key identifier (the vault is \
                       looked up in the provider block's subscription), or by \
                       `<key_vault_id>/keys/<name>`.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(QUICK_TIMEOUTS)),
    }
}

#[async_trait]
impl Resource<Clients> for KeyVaultKey {
    fn type_name(&self) -> &'static str {
        "azurecmk_key_vault_key"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn modify_plan(
        &self,
        _context: &Context<'_, Clients>,
        prior: &Value,
        config: &Value,
        plan: &mut Plan,
    ) -> Diagnostics {
        if Change::between(prior, &plan.planned_state) != Change::Update {
            return Diagnostics::new();
        }
        // Another spelling of the same vault or key name is not a new key.
        let same_vault = same_key_vault(
            prior.attribute("key_vault_id").as_str(),
            plan.planned_state.attribute("key_vault_id").as_str(),
        );
        let same_name = same_text_ignoring_case(
            prior.attribute("name").as_str(),
            plan.planned_state.attribute("name").as_str(),
        );
        plan.requires_replace.retain(|path| {
            !(same_vault && *path == AttributePath::root("key_vault_id")
                || same_name && *path == AttributePath::root("name"))
        });

        let mut diagnostics = Diagnostics::new();
        let expiry_removed = !prior.attribute("expiration_date").is_null()
            && config.attribute("expiration_date").is_null();
        if expiry_removed {
            diagnostics.push(expiry_cannot_be_cleared());
        }
        diagnostics
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.create_key(context, planned).await.into()
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        match self.read_key(context, state).await {
            Ok(Some((state, warnings))) => ReadResult::Found(state, warnings),
            Ok(None) => ReadResult::Gone(gone_warning(state)),
            Err(diagnostics) => ReadResult::Failed(diagnostics),
        }
    }

    async fn update(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        self.update_expiry(context, prior, planned).await.into()
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.delete_key(context, prior).await.err().unwrap_or_default()
    }

    async fn import(&self, context: &Context<'_, Clients>, id: &str) -> Result<Value, Diagnostics> {
        let (vault_id, name) = match KeyVaultKeyId::parse(id) {
            Ok(key) => (find_vault_of(context, &key).await?, key.name),
            Err(_) => parse_import_id(id).map_err(|problem| {
                Diagnostics::from(Diagnostic::error(
                    "Invalid import id",
                    format!(
                        "{problem}. Import a key by its `id` (the key identifier URL), or by \
                         `<key_vault_id>/keys/<name>`."
                    ),
                ))
            })?,
        };
        let model = Model { key_vault_id: vault_id, name, ..Model::default() };
        Ok(to_value(&model, &self.schema))
    }
}

/// The ARM id of the vault a key identifier points at, found among the vaults of the provider
/// block's subscription (a key identifier names only the vault's host).
async fn find_vault_of(
    context: &Context<'_, Clients>,
    key: &KeyVaultKeyId,
) -> Result<String, Diagnostics> {
    let subscription = context.provider.subscription_id.as_deref().ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Missing subscription_id",
            "Importing a key by its identifier looks for its vault in the provider block's \
             subscription: set subscription_id there, or import by `<key_vault_id>/keys/<name>`.",
        ))
    })?;
    let call = CallContext::with_timeout(QUICK_TIMEOUTS.read);
    let call = CallContext { cancel: context.cancel.clone(), ..call };
    let vaults = key_vault::list_vaults(&context.provider.azure, subscription, &call)
        .await
        .map_err(|error| azure_diagnostic("listing key vaults to import the key", &error))?;
    let host = key.host.as_str();
    let found = vaults.into_iter().find(|vault| {
        vault.vault_uri.trim_end_matches('/').to_ascii_lowercase() == format!("https://{host}")
    });
    found.map(|vault| vault.id).ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Vault not found",
            format!(
                "No vault with URI https://{host}/ is in subscription {subscription}. Import by \
                 `<key_vault_id>/keys/<name>` when the vault is in another subscription."
            ),
        ))
    })
}

impl KeyVaultKey {
    async fn create_key(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let vault_id = parse_vault_id(&model.key_vault_id)?;
        let call = call_context(context, planned, Operation::Create, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let vault = read_vault(azure, &vault_id, &call).await?;
        check_vault_protects_keys(&vault)?;
        let versionless = versionless_key_id(&vault, &model.name)?;
        refuse_existing_key(azure, &versionless, &model, &call).await?;

        let parameters = create_parameters(&model)?;
        let key = key_vault::create_key(azure, &vault.vault_uri, &model.name, &parameters, &call)
            .await
            .map_err(|error| create_failure(&versionless, &error))?;

        flatten(&mut model, &key);
        Ok(to_value(&model, &self.schema))
    }

    /// Reads the key's latest version; `None` when the key (or its vault) is gone.
    async fn read_key(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Option<(Value, Diagnostics)>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let call = call_context(context, state, Operation::Read, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let Some(versionless) = self.versionless_id_of(azure, &model, &call).await? else {
            return Ok(None);
        };
        let key = key_vault::get_key(azure, &versionless, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("reading key {versionless}"), &error))?;

        Ok(key.map(|key| {
            flatten(&mut model, &key);
            let warnings = unusable_key_warnings(&key);
            (to_value(&model, &self.schema), warnings)
        }))
    }

    /// The versionless key id from state, or, right after import, from the vault's ARM record.
    /// `None` when the vault no longer exists.
    async fn versionless_id_of(
        &self,
        azure: &AzureClient,
        model: &Model,
        call: &CallContext,
    ) -> Result<Option<KeyVaultKeyId>, Diagnostics> {
        let recorded = model.versionless_id.as_deref().or(model.id.as_deref());
        if let Some(parsed) = recorded.and_then(|text| KeyVaultKeyId::parse(text).ok()) {
            return Ok(Some(parsed.versionless()));
        }
        let vault_id = parse_vault_id(&model.key_vault_id)?;
        let vault = key_vault::get_vault(azure, &vault_id, call)
            .await
            .map_err(|error| azure_diagnostic(&format!("reading key vault {vault_id}"), &error))?;
        vault.map(|vault| versionless_key_id(&vault, &model.name)).transpose()
    }

    /// Only the expiry changes in place; the other changes planned as updates are respellings.
    async fn update_expiry(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let prior_model: Model = from_value(prior)?;
        let planned_expiry = parse_expiry(model.expiration_date.as_deref())?;
        if planned_expiry == parse_expiry(prior_model.expiration_date.as_deref())? {
            return Ok(planned.clone());
        }
        let Some(expires) = planned_expiry else {
            return Err(expiry_cannot_be_cleared().into());
        };
        let call = call_context(context, planned, Operation::Update, QUICK_TIMEOUTS)?;

        // The latest version is the one protectors resolve and the one read reports.
        let versionless = parse_state_key_id(&model)?.versionless();
        let attributes = KeyAttributesUpdate { enabled: None, expires: Some(expires) };
        let key = key_vault::update_key(&context.provider.azure, &versionless, &attributes, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("updating key {versionless}"), &error))?;

        flatten(&mut model, &key);
        Ok(to_value(&model, &self.schema))
    }

    async fn delete_key(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        let versionless = parse_state_key_id(&model)?.versionless();
        let call = call_context(context, prior, Operation::Delete, QUICK_TIMEOUTS)?;

        key_vault::delete_key(&context.provider.azure, &versionless, &call).await.map_err(|error| {
            azure_diagnostic(&format!("deleting key {versionless}"), &error).into()
        })
    }
}

/// Reads the vault the key belongs in; a missing vault is the configuration's fault.
pub(crate) async fn read_vault(
    azure: &AzureClient,
    vault_id: &KeyVaultId,
    call: &CallContext,
) -> Result<Vault, Diagnostics> {
    let vault = key_vault::get_vault(azure, vault_id, call)
        .await
        .map_err(|error| azure_diagnostic(&format!("reading key vault {vault_id}"), &error))?;
    vault.ok_or_else(|| {
        Diagnostic::error(
            "Key vault not found",
            format!(
                "No key vault {vault_id} is visible to this provider block. Check the id, and \
                 that the provider block signs in to the vault's tenant and subscription."
            ),
        )
        .at_attribute("key_vault_id")
        .into()
    })
}

/// Soft delete and purge protection are what Azure SQL checks before it accepts a key.
fn check_vault_protects_keys(vault: &Vault) -> Result<(), Diagnostic> {
    // Current api-versions omit soft delete only where it cannot be turned off.
    let soft_delete = vault.enable_soft_delete != Some(false);
    let purge_protection = vault.enable_purge_protection == Some(true);
    let missing = match (soft_delete, purge_protection) {
        (true, true) => return Ok(()),
        (false, false) => "soft delete and purge protection",
        (false, true) => "soft delete",
        (true, false) => "purge protection",
    };
    Err(Diagnostic::error(
        "Key vault not protected against purge",
        format!(
            "Key vault {} does not have {missing} enabled. Azure SQL refuses keys from such a \
             vault as TDE protectors, and without purge protection a deleted key (and with it \
             every database it protects) can be destroyed for good. Enable soft delete and \
             purge protection on the vault (purge protection cannot be turned off again), or \
             use another vault.",
            vault.name
        ),
    )
    .at_attribute("key_vault_id"))
}

/// Refuses to create over an existing key: that would add a version, silently rotating a key
/// that may already protect databases.
async fn refuse_existing_key(
    azure: &AzureClient,
    versionless: &KeyVaultKeyId,
    model: &Model,
    call: &CallContext,
) -> Result<(), Diagnostics> {
    let existing = key_vault::get_key(azure, versionless, call)
        .await
        .map_err(|error| azure_diagnostic(&format!("reading key {versionless}"), &error))?;
    if existing.is_none() {
        return Ok(());
    }
    Err(Diagnostic::error(
        "Key already exists",
        format!(
            "The vault already holds a key named {name}. Creating it again would add a version \
             and rotate a key that may be protecting databases. Import it instead: terraform \
             import <address> {vault}/keys/{name}",
            name = model.name,
            vault = model.key_vault_id.trim_end_matches('/'),
        ),
    )
    .at_attribute("name")
    .into())
}

/// A refused create; a conflict means the name belongs to a soft-deleted key, which purge
/// protection keeps for the vault's whole retention period.
fn create_failure(versionless: &KeyVaultKeyId, error: &AzureError) -> Diagnostics {
    let mut diagnostic = azure_diagnostic(&format!("creating key {versionless}"), error);
    if error.is_conflict() {
        diagnostic.detail.push_str(
            " A deleted key keeps its name until its retention period ends. If databases may \
             still need it, recover it (`az keyvault key recover`) and import it; otherwise \
             choose another name.",
        );
        diagnostic = diagnostic.at_attribute("name");
    }
    diagnostic.into()
}

fn create_parameters(model: &Model) -> Result<CreateKey, Diagnostics> {
    let key_size = u32::try_from(model.key_size).map_err(|_| {
        Diagnostic::error("Invalid key_size", "The key size must be 2048 or 3072.")
            .at_attribute("key_size")
    })?;
    Ok(CreateKey {
        key_type: model.key_type.clone(),
        key_size,
        key_ops: Some(KEY_OPERATIONS.iter().map(|operation| operation.to_string()).collect()),
        attributes: KeyAttributesUpdate {
            enabled: Some(true),
            expires: parse_expiry(model.expiration_date.as_deref())?,
        },
    })
}

/// The key's data plane id in a vault, from the vault URI ARM reports.
fn versionless_key_id(vault: &Vault, name: &str) -> Result<KeyVaultKeyId, Diagnostics> {
    let text = format!("{}/keys/{name}", vault.vault_uri.trim_end_matches('/'));
    KeyVaultKeyId::parse(&text).map_err(|error| {
        Diagnostic::error(
            "Unexpected key vault URI",
            format!("Azure reported a vault URI that does not form a key id: {error}."),
        )
        .into()
    })
}

fn parse_vault_id(text: &str) -> Result<KeyVaultId, Diagnostic> {
    KeyVaultId::parse(text).map_err(|error| {
        Diagnostic::error("Invalid key_vault_id", format!("{error}.")).at_attribute("key_vault_id")
    })
}

fn parse_state_key_id(model: &Model) -> Result<KeyVaultKeyId, Diagnostic> {
    let text = model.versionless_id.as_deref().or(model.id.as_deref()).unwrap_or_default();
    KeyVaultKeyId::parse(text).map_err(|error| {
        Diagnostic::error(
            "Corrupt state",
            format!("The key id stored in state is not a Key Vault key id: {error}."),
        )
    })
}

/// Splits `<key vault ARM id>/keys/<name>`, keeping the vault id as written.
fn parse_import_id(id: &str) -> Result<(String, String), String> {
    let trimmed = id.trim().trim_end_matches('/');
    // ASCII lowercasing keeps byte offsets, so the position found applies to the original.
    let position = trimmed
        .to_ascii_lowercase()
        .rfind("/keys/")
        .ok_or_else(|| format!("{id:?} does not end in /keys/<name>"))?;
    let (vault_id, name) = (&trimmed[..position], &trimmed[position + "/keys/".len()..]);
    validators::key_vault_id(vault_id)?;
    validators::key_name(name)?;
    Ok((vault_id.to_string(), name.to_string()))
}

/// Copies what Key Vault reports into the model, keeping the user's spelling of anything that
/// means the same.
fn flatten(model: &mut Model, key: &Key) {
    model.id = Some(key.id.to_string());
    model.versionless_id = Some(key.id.versionless().to_string());
    model.version = key.id.version.clone();
    model.vault_uri = Some(key.id.vault_uri());
    if !model.name.eq_ignore_ascii_case(&key.id.name) {
        model.name = key.id.name.clone();
    }
    if !key.key_type.is_empty() {
        model.key_type = key.key_type.clone();
    }
    if let Some(size) = key.key_size {
        model.key_size = i64::from(size);
    }
    model.expiration_date = flatten_expiry(model.expiration_date.as_deref(), key.expires);
}

/// The expiry as RFC 3339, keeping the recorded spelling when it names the same instant.
pub(crate) fn flatten_expiry(recorded: Option<&str>, expires: Option<i64>) -> Option<String> {
    let expires = expires?;
    let recorded_instant = recorded.and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    if recorded_instant.is_some_and(|instant| instant.unix_timestamp() == expires) {
        return recorded.map(str::to_string);
    }
    format_expiry(expires)
}

/// Unix seconds as RFC 3339 in UTC, such as `2030-01-01T00:00:00Z`.
pub(crate) fn format_expiry(expires: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(expires).ok()?.format(&Rfc3339).ok()
}

fn parse_expiry(text: Option<&str>) -> Result<Option<i64>, Diagnostic> {
    let Some(text) = text else { return Ok(None) };
    let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        Diagnostic::error("Invalid expiration_date", format!("{}.", rfc3339(text).unwrap_err()))
            .at_attribute("expiration_date")
    })?;
    Ok(Some(instant.unix_timestamp()))
}

/// Key Vault stores expiry in whole seconds; users write it as RFC 3339 with an offset.
fn rfc3339(text: &str) -> Result<(), String> {
    OffsetDateTime::parse(text, &Rfc3339).map(|_| ()).map_err(|_| {
        format!("{text:?} is not an RFC 3339 timestamp such as \"2030-01-01T00:00:00Z\"")
    })
}

/// Two ARM ids naming the same vault: ARM ids are case-insensitive, and a trailing slash or
/// segment-name casing does not change what they name.
fn same_key_vault(left: Option<&str>, right: Option<&str>) -> bool {
    let canonical = |text: Option<&str>| {
        text.and_then(|text| KeyVaultId::parse(text).ok())
            .map(|id| id.to_string().to_ascii_lowercase())
    };
    let left = canonical(left);
    left.is_some() && left == canonical(right)
}

/// Key Vault key names are case-insensitive.
fn same_text_ignoring_case(left: Option<&str>, right: Option<&str>) -> bool {
    matches!((left, right), (Some(left), Some(right)) if left.eq_ignore_ascii_case(right))
}

/// Warns about a key Azure SQL cannot use right now; the resource itself is fine.
fn unusable_key_warnings(key: &Key) -> Diagnostics {
    let mut warnings = Diagnostics::new();
    if !key.enabled {
        warnings.push(Diagnostic::warning(
            "Key disabled",
            format!(
                "Key {} is disabled in its vault. Azure SQL cannot wrap or unwrap with it, so \
                 databases it protects become inaccessible until it is enabled again.",
                key.id
            ),
        ));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if key.expires.is_some_and(|expires| expires <= now) {
        warnings.push(Diagnostic::warning(
            "Key expired",
            format!(
                "Key {} has expired. Azure SQL cannot use an expired key; set a later \
                 expiration_date.",
                key.id
            ),
        ));
    }
    warnings
}

fn expiry_cannot_be_cleared() -> Diagnostic {
    Diagnostic::error(
        "Expiry cannot be removed",
        "Key Vault cannot clear a key's expiry once set. Keep expiration_date and move it to a \
         later date instead.",
    )
    .at_attribute("expiration_date")
}

fn gone_warning(state: &Value) -> Diagnostics {
    let name = state.attribute("name").as_str().unwrap_or("the key");
    Diagnostic::warning(
        "Key deleted outside Terraform",
        format!(
            "Key {name} no longer exists in its vault (or the vault is gone); Terraform will plan \
             to create it again. A soft-deleted key keeps its name until it is recovered or \
             purged: recover it with `az keyvault key recover` if databases still need it."
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(soft_delete: Option<bool>, purge_protection: Option<bool>) -> Vault {
        Vault {
            id: VAULT_ID.to_string(),
            name: "kv".to_string(),
            location: "westeurope".to_string(),
            tenant_id: "t".to_string(),
            vault_uri: "https://kv.vault.azure.net/".to_string(),
            enable_soft_delete: soft_delete,
            enable_purge_protection: purge_protection,
            enable_rbac_authorization: None,
            access_policies: Vec::new(),
        }
    }

    const VAULT_ID: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv";

    #[test]
    fn vaults_without_purge_protection_are_refused() {
        let cases = [
            ("both on", Some(true), Some(true), None),
            ("soft delete implied", None, Some(true), None),
            ("no purge protection", Some(true), Some(false), Some("not have purge protection")),
            ("purge protection unset", Some(true), None, Some("not have purge protection")),
            ("no soft delete", Some(false), Some(true), Some("not have soft delete enabled")),
            ("neither", Some(false), None, Some("soft delete and purge protection")),
        ];
        for (name, soft_delete, purge_protection, expected) in cases {
            let result = check_vault_protects_keys(&vault(soft_delete, purge_protection));
            match (result, expected) {
                (Ok(()), None) => {}
                (Err(diagnostic), Some(text)) => {
                    assert!(diagnostic.detail.contains(text), "{name}: {}", diagnostic.detail);
                    assert_eq!(diagnostic.attribute, Some(AttributePath::root("key_vault_id")));
                }
                (result, _) => panic!("{name}: unexpected {result:?}"),
            }
        }
    }

    #[test]
    fn import_ids() {
        let cases = [
            ("plain", format!("{VAULT_ID}/keys/tde"), Ok((VAULT_ID.to_string(), "tde"))),
            ("trailing slash", format!("{VAULT_ID}/keys/tde/"), Ok((VAULT_ID.to_string(), "tde"))),
            (
                "lowercase segments kept",
                format!("{}/Keys/tde", VAULT_ID.to_lowercase()),
                Ok((VAULT_ID.to_lowercase(), "tde")),
            ),
            ("no key", VAULT_ID.to_string(), Err("does not end in /keys/<name>")),
            ("data plane id", "https://kv.vault.azure.net/keys/tde".into(), Err("an ARM id")),
            ("bad name", format!("{VAULT_ID}/keys/tde_1"), Err("not a valid key name")),
        ];
        for (name, input, expected) in cases {
            let result = parse_import_id(&input);
            match (result, expected) {
                (Ok((vault, key)), Ok((expected_vault, expected_key))) => {
                    assert_eq!((vault.as_str(), key.as_str()), (&*expected_vault, expected_key));
                }
                (Err(problem), Err(text)) => assert!(problem.contains(text), "{name}: {problem}"),
                (result, _) => panic!("{name}: unexpected {result:?}"),
            }
        }
    }

    #[test]
    fn expiry_keeps_equivalent_spellings() {
        let cases = [
            (
                "same instant, offset spelling",
                Some("2030-01-01T01:00:00+01:00"),
                Some(1893456000),
                Some("2030-01-01T01:00:00+01:00"),
            ),
            (
                "moved in the vault",
                Some("2030-01-01T00:00:00Z"),
                Some(1893456060),
                Some("2030-01-01T00:01:00Z"),
            ),
            ("set in the vault", None, Some(1893456000), Some("2030-01-01T00:00:00Z")),
            ("cleared in the vault", Some("2030-01-01T00:00:00Z"), None, None),
        ];
        for (name, recorded, expires, expected) in cases {
            assert_eq!(flatten_expiry(recorded, expires).as_deref(), expected, "{name}");
        }
    }

    #[test]
    fn vault_spellings() {
        let cases = [
            ("identical", Some(VAULT_ID), Some(VAULT_ID), true),
            ("trailing slash", Some(VAULT_ID), Some(&*format!("{VAULT_ID}/")), true),
            ("case", Some(VAULT_ID), Some(&*VAULT_ID.to_uppercase()), true),
            ("other vault", Some(VAULT_ID), Some(&*VAULT_ID.replace("/kv", "/kv2")), false),
            ("missing", None, Some(VAULT_ID), false),
        ];
        for (name, left, right, expected) in cases {
            assert_eq!(same_key_vault(left, right), expected, "{name}");
        }
    }

    #[test]
    fn flatten_fills_computed_attributes_from_the_latest_version() {
        let version = "0123456789abcdef0123456789abcdef";
        let kid = format!("https://KV.vault.azure.net/keys/tde/{version}");
        let key = Key {
            id: KeyVaultKeyId::parse(&kid).unwrap(),
            key_type: "RSA".to_string(),
            key_size: Some(3072),
            key_ops: vec!["wrapKey".to_string(), "unwrapKey".to_string()],
            enabled: true,
            not_before: None,
            expires: None,
            created: None,
            recovery_level: Some("Recoverable".to_string()),
            tags: Default::default(),
        };
        let mut model =
            Model { key_vault_id: VAULT_ID.into(), name: "TDE".into(), ..Model::default() };
        flatten(&mut model, &key);
        assert_eq!(
            model.id.as_deref(),
            Some(&*format!("https://kv.vault.azure.net/keys/tde/{version}"))
        );
        assert_eq!(model.versionless_id.as_deref(), Some("https://kv.vault.azure.net/keys/tde"));
        assert_eq!(model.version.as_deref(), Some(version));
        assert_eq!(model.vault_uri.as_deref(), Some("https://kv.vault.azure.net/"));
        assert_eq!(
            (model.name.as_str(), model.key_type.as_str(), model.key_size),
            ("TDE", "RSA", 3072)
        );
    }
}
