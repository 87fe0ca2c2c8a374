//! `azurecmk_user_assigned_identity`: the ISV's user-assigned managed identity, the identity the SQL
//! server runs as and the one trusted as a federated credential of the multi-tenant application
//! (step 1).
//!
//! Only the tags change in place; the name, resource group, subscription and location are fixed at
//! creation by Azure, so a change to any of them replaces the identity.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::ids::UserAssignedIdentityId;
use crate::azure::managed_identity::{self, Identity};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, Block, Context, Diagnostic, Diagnostics, Plan, ReadResult, Resource,
    Schema, Type, Validator, Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context, deleted_outside_terraform};
use super::validators;

/// The resource's state and configuration.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    name: String,
    resource_group_name: String,
    location: String,
    subscription_id: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    principal_id: Option<String>,
    client_id: Option<String>,
    tenant_id: Option<String>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct UserAssignedIdentity {
    schema: Schema,
}

impl UserAssignedIdentity {
    /// The resource with its schema.
    pub fn new() -> UserAssignedIdentity {
        UserAssignedIdentity { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().describe("The identity's ARM id."),
        Attribute::string("name")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::identity_name))
            .describe("The identity's name, unique in its resource group."),
        Attribute::string("resource_group_name")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::resource_group_name))
            .describe("The existing resource group to create the identity in."),
        Attribute::string("location")
            .required()
            .requires_replace()
            .describe("The Azure region, such as `westeurope`."),
        Attribute::string("subscription_id")
            .optional_computed()
            .requires_replace()
            .validate(Validator::String(validators::uuid))
            .describe("The subscription; defaults to the provider block's `subscription_id`."),
        Attribute::of_type("tags", Type::map(Type::String))
            .optional()
            .describe("Tags to set on the identity."),
        Attribute::string("principal_id").computed().describe(
            "The identity's object id in Entra ID: the subject of the federated credential.",
        ),
        Attribute::string("client_id").computed().describe("The identity's client id."),
        Attribute::string("tenant_id").computed().describe("The tenant the identity belongs to."),
    ];
    let description = "A user-assigned managed identity in the ISV's tenant. The SQL server runs \
                       as this identity, and the multi-tenant application trusts it as a \
                       federated credential.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(QUICK_TIMEOUTS)),
    }
}

#[async_trait]
impl Resource<Clients> for UserAssignedIdentity {
    fn type_name(&self) -> &'static str {
        "azurecmk_user_assigned_identity"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn modify_plan(
        &self,
        context: &Context<'_, Clients>,
        _prior: &Value,
        config: &Value,
        plan: &mut Plan,
    ) -> Diagnostics {
        // Known at plan time, so that changing the provider's subscription shows as a replacement.
        if config.attribute("subscription_id").is_null() {
            let default = context.provider.subscription_id.clone();
            if let Some(slot) = plan.planned_state.attribute_mut("subscription_id") {
                *slot = default.map(Value::String).unwrap_or(Value::Unknown);
            }
        }
        Diagnostics::new()
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.create_identity(context, planned).await.into()
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        let found = self.read_identity(context, state).await;
        ReadResult::from_lookup(found, || {
            deleted_outside_terraform("User-assigned identity", state)
        })
    }

    async fn update(
        &self,
        context: &Context<'_, Clients>,
        _prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        self.update_tags(context, planned).await.into()
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.delete_identity(context, prior).await.err().unwrap_or_default()
    }

    async fn import(
        &self,
        _context: &Context<'_, Clients>,
        id: &str,
    ) -> Result<Value, Diagnostics> {
        let id = UserAssignedIdentityId::parse(id).map_err(|error| {
            Diagnostics::from(Diagnostic::error(
                "Invalid import id",
                format!("{error}. Import a user-assigned identity by its ARM id."),
            ))
        })?;
        let model = Model {
            id: Some(id.to_string()),
            name: id.name.clone(),
            resource_group_name: id.resource_group_name.clone(),
            subscription_id: Some(id.subscription_id.clone()),
            ..Model::default()
        };
        Ok(to_value(&model, &self.schema))
    }
}

impl UserAssignedIdentity {
    async fn create_identity(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let id = identity_id(&model, context.provider)?;
        let call = call_context(context, planned, Operation::Create, QUICK_TIMEOUTS)?;

        let tags = model.tags.clone().unwrap_or_default();
        let azure = &context.provider.azure;
        let identity =
            managed_identity::create_or_update(azure, &id, &model.location, &tags, &call)
                .await
                .map_err(|error| azure_diagnostic(&format!("creating {id}"), &error))?;

        flatten(&mut model, &id, &identity);
        Ok(to_value(&model, &self.schema))
    }

    async fn read_identity(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Option<Value>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let id = parse_state_id(&model)?;
        let call = call_context(context, state, Operation::Read, QUICK_TIMEOUTS)?;

        let identity = managed_identity::get(&context.provider.azure, &id, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("reading {id}"), &error))?;

        Ok(identity.map(|identity| {
            flatten(&mut model, &id, &identity);
            to_value(&model, &self.schema)
        }))
    }

    /// Only tags change in place; everything else forces replacement at plan time.
    async fn update_tags(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let id = parse_state_id(&model)?;
        let call = call_context(context, planned, Operation::Update, QUICK_TIMEOUTS)?;

        let tags = model.tags.clone().unwrap_or_default();
        let identity = managed_identity::update_tags(&context.provider.azure, &id, &tags, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("updating {id}"), &error))?;

        flatten(&mut model, &id, &identity);
        Ok(to_value(&model, &self.schema))
    }

    async fn delete_identity(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        let id = parse_state_id(&model)?;
        let call = call_context(context, prior, Operation::Delete, QUICK_TIMEOUTS)?;

        managed_identity::delete(&context.provider.azure, &id, &call)
            .await
            .map_err(|error| azure_diagnostic(&format!("deleting {id}"), &error).into())
    }
}

/// The id the planned identity will have.
fn identity_id(model: &Model, clients: &Clients) -> Result<UserAssignedIdentityId, Diagnostic> {
    let subscription_id =
        model.subscription_id.clone().or_else(|| clients.subscription_id.clone()).ok_or_else(
            || {
                Diagnostic::error(
                    "Missing subscription_id",
                    "Set subscription_id on this resource or on its provider block (or \
                 ARM_SUBSCRIPTION_ID).",
                )
                .at_attribute("subscription_id")
            },
        )?;
    Ok(UserAssignedIdentityId {
        subscription_id,
        resource_group_name: model.resource_group_name.clone(),
        name: model.name.clone(),
    })
}

fn parse_state_id(model: &Model) -> Result<UserAssignedIdentityId, Diagnostic> {
    let text = model.id.as_deref().unwrap_or_default();
    UserAssignedIdentityId::parse(text).map_err(|error| {
        Diagnostic::error(
            "Corrupt state",
            format!("The id stored in state is not a user-assigned identity id: {error}."),
        )
    })
}

/// Copies what Azure reports into the model. Location keeps the user's spelling when Azure only
/// normalises it (`West Europe` and `westeurope` are the same region).
fn flatten(model: &mut Model, id: &UserAssignedIdentityId, identity: &Identity) {
    model.id = Some(id.to_string());
    model.name = id.name.clone();
    model.resource_group_name = id.resource_group_name.clone();
    model.subscription_id = Some(id.subscription_id.clone());
    if normalise_location(&model.location) != normalise_location(&identity.location) {
        model.location = identity.location.clone();
    }
    // An identity without tags reads back as an empty map; keep "unset" when the user set none.
    model.tags = match (&model.tags, identity.tags.is_empty()) {
        (None, true) => None,
        _ => Some(identity.tags.clone()),
    };
    model.principal_id = Some(identity.principal_id.clone());
    model.client_id = Some(identity.client_id.clone());
    model.tenant_id = Some(identity.tenant_id.clone());
}

fn normalise_location(location: &str) -> String {
    location.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}
