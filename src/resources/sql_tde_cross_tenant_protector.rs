//! `azurecmk_sql_tde_cross_tenant_protector`: the ISV's SQL server protected by the customer's key
//! (steps 7 to 9).
//!
//! Create attaches the managed identity without dropping the server's other identities, makes it
//! the primary identity and sets the federated client id in one request (Azure checks the primary
//! against the identity list of the same request), registers the key version on the server, then
//! makes it the TDE protector. Destroy switches the protector back to the service-managed key
//! before anything else, so no database is ever left without a usable key.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::error::AzureError;
use crate::azure::ids::{KeyVaultKeyId, ServerKeyId, SqlServerId, UserAssignedIdentityId};
use crate::azure::sql::{self, EncryptionProtector, Server, ServerIdentityUpdate};
use crate::azure::{AzureClient, CallContext};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, TimeoutDefaults, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, Block, Context, Diagnostic, Diagnostics, ReadResult, Resource, Schema,
    Validator, Value,
};
use crate::provider::Clients;

use super::chain::missing_step;
use super::common::{azure_diagnostic, call_context};
use super::validators;

/// SQL's long-running operations on a server take minutes in Azure.
const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(30 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(30 * 60),
    delete: Duration::from_secs(30 * 60),
};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    server_id: String,
    user_assigned_identity_id: Option<String>,
    federated_client_id: Option<String>,
    key_id: Option<String>,
    auto_rotation_enabled: Option<bool>,
    server_key_name: Option<String>,
    key_version_in_use: Option<String>,
    thumbprint: Option<String>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct SqlTdeCrossTenantProtector {
    schema: Schema,
}

impl SqlTdeCrossTenantProtector {
    /// The resource with its schema.
    pub fn new() -> SqlTdeCrossTenantProtector {
        SqlTdeCrossTenantProtector { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id")
            .computed()
            .describe("The protector's ARM id: `<server_id>/encryptionProtector/current`."),
        Attribute::string("server_id")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::sql_server_id))
            .describe("The ARM id of the ISV's SQL logical server."),
        Attribute::string("user_assigned_identity_id")
            .required()
            .validate(Validator::String(validators::user_assigned_identity_id))
            .describe(
                "The ARM id of the user-assigned identity the server reaches the key as; it \
                 becomes the server's primary identity. Other identities stay attached.",
            ),
        Attribute::string("federated_client_id")
            .required()
            .validate(Validator::String(validators::uuid))
            .describe("The multi-tenant application's client id (`client_id`, not `object_id`)."),
        Attribute::string("key_id")
            .required()
            .validate(Validator::String(validators::key_identifier))
            .describe(
                "The customer's key identifier, with its version \
                 (`https://<vault>.vault.azure.net/keys/<name>/<version>`). Changing it moves \
                 the protector to that key in place; old versions are never touched.",
            ),
        Attribute::bool("auto_rotation_enabled")
            .default(Value::Bool(false))
            .describe("Let Azure SQL follow new versions of the key by itself. Default `false`."),
        Attribute::string("server_key_name")
            .computed()
            .unknown_on_update()
            .describe("The key as registered on the server: `<vault>_<key>_<version>`."),
        Attribute::string("key_version_in_use")
            .computed()
            .unknown_on_update()
            .describe("The key version currently protecting the server."),
        Attribute::string("thumbprint")
            .computed()
            .unknown_on_update()
            .describe("The thumbprint of the key in use."),
    ];
    let description = "Protects an Azure SQL logical server's data with a customer-managed key \
                       held in another Entra tenant: sets the server's primary user-assigned \
                       identity and federated client id, registers the key and makes it the TDE \
                       protector. Destroying it switches the server back to a service-managed \
                       key first.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(TIMEOUTS)),
    }
}

#[async_trait]
impl Resource<Clients> for SqlTdeCrossTenantProtector {
    fn type_name(&self) -> &'static str {
        "azurecmk_sql_tde_cross_tenant_protector"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let versionless = config
            .attribute("key_id")
            .as_str()
            .and_then(|text| KeyVaultKeyId::parse(text).ok())
            .is_some_and(|key| key.version.is_none());
        if !versionless {
            return Diagnostics::new();
        }
        // FIXME(versionless-keys): the ISV cannot read the customer's vault to learn the current
        // version, so a versionless key_id (meant for auto-rotation) is refused for now.
        Diagnostic::error(
            "Versioned key_id required",
            "Azure SQL registers one specific key version. Use the versioned key identifier \
             (the key resource's or data source's `id`); with auto_rotation_enabled = true SQL \
             then follows newer versions by itself.",
        )
        .at_attribute("key_id")
        .into()
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.protect(context, planned, Operation::Create, true).await
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        let found = self.read_protector(context, state).await;
        ReadResult::from_lookup(found, || gone_warning(state))
    }

    async fn update(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        let identity_changed = ["user_assigned_identity_id", "federated_client_id"]
            .iter()
            .any(|name| !prior.attribute(name).same_as(planned.attribute(name)));
        if identity_changed {
            // Azure refuses to switch the federated identity while the customer's key protects
            // the server, so the documented order is: service-managed key, identity, key.
            if let Err(diagnostics) = self.revert(context, prior, Operation::Update).await {
                return ApplyResult::failed(diagnostics);
            }
        }
        self.protect(context, planned, Operation::Update, identity_changed).await
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.revert(context, prior, Operation::Delete).await.err().unwrap_or_default()
    }

    async fn import(
        &self,
        _context: &Context<'_, Clients>,
        id: &str,
    ) -> Result<Value, Diagnostics> {
        let server_text = strip_suffix_ignore_case(id.trim(), "/encryptionProtector/current");
        let server = SqlServerId::parse(server_text).map_err(|error| {
            Diagnostics::from(Diagnostic::error(
                "Invalid import id",
                format!("{error}. Import the protector by its server's ARM id."),
            ))
        })?;
        let model = Model {
            id: Some(protector_id(&server)),
            server_id: server.to_string(),
            auto_rotation_enabled: Some(false),
            ..Model::default()
        };
        Ok(to_value(&model, &self.schema))
    }
}

impl SqlTdeCrossTenantProtector {
    /// Steps 7 to 9, each idempotent, so a failed apply converges when run again.
    ///
    /// Once the server carries the identity, a failure still records the protector (Terraform
    /// then taints it): a destroy takes the identity off again, and the next apply finishes.
    async fn protect(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
        operation: Operation,
        set_identity: bool,
    ) -> ApplyResult {
        let prepared = from_value::<Model>(planned).and_then(|model| {
            let inputs = Inputs::parse(&model)?;
            let call = call_context(context, planned, operation, TIMEOUTS)?;
            Ok((model, inputs, call))
        });
        let (mut model, inputs, call) = match prepared {
            Ok(prepared) => prepared,
            Err(diagnostics) => return ApplyResult::failed(diagnostics),
        };
        let azure = &context.provider.azure;

        if set_identity
            && let Err(diagnostics) = set_server_identity(azure, &inputs, &model, &call).await
        {
            return ApplyResult::failed(diagnostics);
        }
        model.id = Some(protector_id(&inputs.server));

        let auto_rotation = model.auto_rotation_enabled.unwrap_or(false);
        match protect_with_key(azure, &inputs, auto_rotation, &call).await {
            Ok(protector) => {
                flatten_protector(&mut model, &protector);
                ApplyResult::done(to_value(&model, &self.schema))
            }
            Err(diagnostics) => {
                // Named even if registering failed, so a destroy removes whatever got registered.
                let registered = sql::server_key_id(&inputs.server, &inputs.key);
                model.server_key_name = registered.map(|id| id.key_name);
                model.key_version_in_use = None;
                model.thumbprint = None;
                ApplyResult::partial(to_value(&model, &self.schema), diagnostics)
            }
        }
    }

    async fn read_protector(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Option<Value>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let server_id = SqlServerId::parse(&model.server_id).map_err(corrupt_state)?;
        let call = call_context(context, state, Operation::Read, TIMEOUTS)?;
        let azure = &context.provider.azure;

        let Some(server) = sql::get_server(azure, &server_id, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("reading {server_id}"), &error))?
        else {
            return Ok(None);
        };
        let protector = sql::get_encryption_protector(azure, &server_id, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("reading {server_id}"), &error))?;

        model.id = Some(protector_id(&server_id));
        flatten_server(&mut model, &server);
        match protector {
            Some(protector) => flatten_protector(&mut model, &protector),
            None => return Ok(None),
        }
        Ok(Some(to_value(&model, &self.schema)))
    }

    /// Switches the server back to the service-managed key, then forgets the registered key.
    async fn revert(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
        operation: Operation,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        let server = SqlServerId::parse(&model.server_id).map_err(corrupt_state)?;
        let call = call_context(context, prior, operation, TIMEOUTS)?;
        let azure = &context.provider.azure;

        let reverted = sql::revert_encryption_protector_to_service_managed(azure, &server, &call);
        match reverted.await {
            Ok(_) => {}
            Err(error) if error.is_not_found() => return Ok(()),
            Err(error) => {
                let action = "switching the server back to a service-managed key";
                return Err(azure_diagnostic(action, &error).into());
            }
        }

        let registered =
            model.server_key_name.as_deref().filter(|name| *name != sql::SERVICE_MANAGED);
        if let Some(key_name) = registered {
            let id = ServerKeyId { server: server.clone(), key_name: key_name.to_string() };
            if let Err(error) = sql::delete_server_key(azure, &id, &call).await {
                // The server is already safe on its own key; a leftover registration harms nothing.
                tracing::warn!(server_key = %id, error = %error, "could not remove server key");
            }
        }
        if operation == Operation::Delete {
            detach_our_identity(azure, &server, &model, &call).await;
        }
        Ok(())
    }
}

/// Takes the identity this resource attached off the server again, with the federated client id
/// that depended on it, so nothing on the server points at objects the same destroy deletes.
/// Best effort: the server is already safe on a service-managed key.
async fn detach_our_identity(
    azure: &AzureClient,
    server_id: &SqlServerId,
    model: &Model,
    call: &CallContext,
) {
    let Some(ours) = model.user_assigned_identity_id.as_deref() else { return };
    let server = match sql::get_server(azure, server_id, call).await {
        Ok(Some(server)) => server,
        _ => return,
    };
    let is_primary = server
        .primary_user_assigned_identity_id
        .as_deref()
        .is_some_and(|primary| primary.eq_ignore_ascii_case(ours));
    if !is_primary {
        // Someone pointed the server elsewhere since: leave their configuration alone.
        return;
    }
    let identity = server.identity.clone().unwrap_or_default();
    let attached = identity.user_assigned.keys().find(|id| id.eq_ignore_ascii_case(ours));
    let attached = attached.cloned().unwrap_or_else(|| ours.to_string());
    let remaining = ServerIdentityUpdate {
        system_assigned: identity.system_assigned,
        user_assigned_identity_ids: identity
            .user_assigned
            .keys()
            .filter(|id| !id.eq_ignore_ascii_case(ours))
            .cloned()
            .collect(),
        primary_user_assigned_identity_id: None,
        federated_client_id: None,
    };
    if let Err(error) = sql::detach_identity(azure, server_id, &attached, &remaining, call).await {
        tracing::warn!(server = %server_id, error = %error, "could not detach the server identity");
    }
}

/// Step 7 and 8: our identity attached and primary, and the federated client id, in one PATCH.
async fn set_server_identity(
    azure: &AzureClient,
    inputs: &Inputs,
    model: &Model,
    call: &CallContext,
) -> Result<(), Diagnostics> {
    let server = read_server(azure, &inputs.server, call).await?;
    let update = identity_update(&server, inputs, model);
    sql::update_server_identity(azure, &inputs.server, &update, call)
        .await
        .map_err(|error| chain_diagnostic("setting the server's identity", &error))?;
    Ok(())
}

/// Step 9: the key registered on the server, then made its TDE protector.
async fn protect_with_key(
    azure: &AzureClient,
    inputs: &Inputs,
    auto_rotation: bool,
    call: &CallContext,
) -> Result<EncryptionProtector, Diagnostics> {
    let server_key = register_key(azure, inputs, call).await?;
    sql::set_encryption_protector(azure, &inputs.server, &server_key.key_name, auto_rotation, call)
        .await
        .map_err(|error| chain_diagnostic("making the customer's key the TDE protector", &error))
}

/// The parsed ids a protector works with.
struct Inputs {
    server: SqlServerId,
    identity: UserAssignedIdentityId,
    key: KeyVaultKeyId,
}

impl Inputs {
    fn parse(model: &Model) -> Result<Inputs, Diagnostics> {
        let attribute_error = |name: &str, error: String| {
            Diagnostics::from(
                Diagnostic::error(format!("Invalid {name}"), format!("{error}."))
                    .at_attribute(name),
            )
        };
        let server = SqlServerId::parse(&model.server_id)
            .map_err(|error| attribute_error("server_id", error.to_string()))?;
        let identity_text = model.user_assigned_identity_id.as_deref().unwrap_or_default();
        let identity = UserAssignedIdentityId::parse(identity_text)
            .map_err(|error| attribute_error("user_assigned_identity_id", error.to_string()))?;
        let key = KeyVaultKeyId::parse(model.key_id.as_deref().unwrap_or_default())
            .map_err(|error| attribute_error("key_id", error.to_string()))?;
        Ok(Inputs { server, identity, key })
    }
}

async fn read_server(
    azure: &AzureClient,
    id: &SqlServerId,
    call: &CallContext,
) -> Result<Server, Diagnostics> {
    sql::get_server(azure, id, call)
        .await
        .map_err(|error| azure_diagnostic(&format!("reading {id}"), &error))?
        .ok_or_else(|| {
            Diagnostic::error(
                "SQL server not found",
                format!(
                    "{id} does not exist, or this provider block's credentials cannot see it. \
                     The server must be in the tenant of this resource's provider block."
                ),
            )
            .at_attribute("server_id")
            .into()
        })
}

/// The server's identities with ours added and made primary: the others stay, since the server
/// may use them for other things (auditing storage, for one).
fn identity_update(server: &Server, inputs: &Inputs, model: &Model) -> ServerIdentityUpdate {
    let ours = inputs.identity.to_string();
    let identity = server.identity.clone().unwrap_or_default();
    let mut ids: Vec<String> = identity
        .user_assigned
        .keys()
        .filter(|existing| !existing.eq_ignore_ascii_case(&ours))
        .cloned()
        .collect();
    ids.push(ours.clone());
    ServerIdentityUpdate {
        system_assigned: identity.system_assigned,
        user_assigned_identity_ids: ids,
        primary_user_assigned_identity_id: Some(ours),
        federated_client_id: model.federated_client_id.clone(),
    }
}

async fn register_key(
    azure: &AzureClient,
    inputs: &Inputs,
    call: &CallContext,
) -> Result<ServerKeyId, Diagnostics> {
    let id = sql::server_key_id(&inputs.server, &inputs.key).ok_or_else(|| {
        Diagnostics::from(
            Diagnostic::error("Versioned key_id required", "key_id must include the key version.")
                .at_attribute("key_id"),
        )
    })?;
    sql::create_server_key(azure, &id, &inputs.key, call).await.map_err(|error| {
        chain_diagnostic("registering the customer's key on the server", &error)
    })?;
    Ok(id)
}

/// An Azure refusal, with the missing cross-tenant step named when SQL's answer points at one.
fn chain_diagnostic(action: &str, error: &AzureError) -> Diagnostics {
    let mut diagnostic = azure_diagnostic(action, error);
    let message = match error {
        AzureError::Api(api) => api.message.as_str(),
        _ => "",
    };
    if let Some(step) = missing_step(error.code().unwrap_or_default(), message) {
        diagnostic.summary = format!("Cross-tenant key chain incomplete: check {}", step.resource);
        diagnostic.detail =
            format!("{} {}\n\n{}", step.advice, see_resource(step.resource), diagnostic.detail);
    }
    diagnostic.into()
}

fn see_resource(resource: &str) -> String {
    format!("The step is done by {resource}.")
}

fn flatten_server(model: &mut Model, server: &Server) {
    model.server_id = server_id_spelling(&model.server_id, &server.id);
    model.federated_client_id = server.federated_client_id.clone();
    let primary = server.primary_user_assigned_identity_id.clone();
    // Keep the user's spelling when Azure only changed the case of the same id.
    model.user_assigned_identity_id = match (&model.user_assigned_identity_id, primary) {
        (Some(ours), Some(primary)) if ours.eq_ignore_ascii_case(&primary) => Some(ours.clone()),
        (_, primary) => primary,
    };
}

fn flatten_protector(model: &mut Model, protector: &EncryptionProtector) {
    model.auto_rotation_enabled = Some(protector.auto_rotation_enabled.unwrap_or(false));
    model.thumbprint = protector.thumbprint.clone();
    if protector.server_key_type != sql::AZURE_KEY_VAULT {
        // Switched back to a service-managed key outside Terraform: plan to set the key again.
        model.key_id = None;
        model.server_key_name = Some(protector.server_key_name.clone());
        model.key_version_in_use = None;
        return;
    }
    model.server_key_name = Some(protector.server_key_name.clone());
    let in_use = protector.uri.as_deref().and_then(|uri| KeyVaultKeyId::parse(uri).ok());
    model.key_version_in_use = in_use.as_ref().and_then(|key| key.version.clone());
    let configured = model.key_id.as_deref().and_then(|text| KeyVaultKeyId::parse(text).ok());
    if configured != in_use {
        model.key_id = protector.uri.clone();
    }
}

fn server_id_spelling(configured: &str, reported: &str) -> String {
    if configured.eq_ignore_ascii_case(reported) || reported.is_empty() {
        configured.to_string()
    } else {
        reported.to_string()
    }
}

fn protector_id(server: &SqlServerId) -> String {
    format!("{server}/encryptionProtector/current")
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> &'a str {
    let split = text.len().saturating_sub(suffix.len());
    match text.get(split..) {
        Some(tail) if tail.eq_ignore_ascii_case(suffix) => &text[..split],
        _ => text,
    }
}

fn corrupt_state(error: crate::azure::ids::IdParseError) -> Diagnostics {
    Diagnostic::error(
        "Corrupt state",
        format!("The server id stored in state is invalid: {error}."),
    )
    .into()
}

fn gone_warning(state: &Value) -> Diagnostics {
    let server = state.attribute("server_id").as_str().unwrap_or_default();
    Diagnostic::warning(
        "SQL server or its protector not found",
        format!(
            "{server} or its encryption protector no longer exists; Terraform will plan to set \
             the protector again."
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_accepts_the_server_or_protector_id() {
        let server = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x";
        let cases = [
            ("server id", server.to_string()),
            ("protector id", format!("{server}/encryptionProtector/current")),
            ("protector id, other case", format!("{server}/EncryptionProtector/Current")),
        ];
        for (name, id) in cases {
            assert_eq!(
                strip_suffix_ignore_case(&id, "/encryptionProtector/current"),
                server,
                "{name}"
            );
        }
    }

    #[test]
    fn the_identity_update_keeps_other_identities_and_makes_ours_primary() {
        let other = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/audit";
        let ours = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cmk";
        let mut identity = sql::ServerIdentity { system_assigned: true, ..Default::default() };
        identity.user_assigned.insert(other.to_string(), Default::default());
        identity.user_assigned.insert(ours.to_uppercase(), Default::default());
        let server = Server {
            id: String::new(),
            name: "x".into(),
            location: "westeurope".into(),
            identity: Some(identity),
            primary_user_assigned_identity_id: None,
            federated_client_id: None,
            key_id: None,
            state: None,
        };
        let inputs = Inputs {
            server: SqlServerId::parse(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x",
            )
            .unwrap(),
            identity: UserAssignedIdentityId::parse(ours).unwrap(),
            key: KeyVaultKeyId::parse(
                "https://kv.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef",
            )
            .unwrap(),
        };
        let model = Model { federated_client_id: Some("app".into()), ..Model::default() };

        let update = identity_update(&server, &inputs, &model);
        assert_eq!(update.identity_type(), "SystemAssigned,UserAssigned");
        assert_eq!(update.user_assigned_identity_ids, vec![other.to_string(), ours.to_string()]);
        assert_eq!(update.primary_user_assigned_identity_id.as_deref(), Some(ours));
        assert_eq!(update.federated_client_id.as_deref(), Some("app"));
    }
}
