//! `azurecmk_federated_app_credential`: the ISV's managed identity trusted as a federated identity
//! credential of the multi-tenant application (step 3).
//!
//! Users name the identity by its ARM id; the provider derives what Entra matches tokens against:
//! the issuer (the identity's tenant's v2.0 endpoint), the subject (the identity's principal id,
//! not its client id) and the cloud's token-exchange audience. Getting these by hand is the
//! commonest mistake in this setup, and Entra accepts wrong values silently. Everything but the
//! name updates in place.
//!
//! For the same reason every plan of an existing credential derives issuer, subject and audience
//! from the identity again (one ARM read): an edit in Graph, or the identity recreated under the
//! same ARM id with a new principal id, then shows as an in-place update instead of a credential
//! that silently trusts nobody.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::graph::{self, FederatedCredential, FederatedCredentialSpec};
use crate::azure::ids::{FederatedCredentialId, UserAssignedIdentityId};
use crate::azure::managed_identity;
use crate::azure::{AzureClient, AzureError, CallContext};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, Block, Change, Context, Diagnostic, Diagnostics, Plan, ReadResult,
    Resource, Schema, Type, Validator, Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context, deleted_outside_terraform};
use super::replication::{record_once_visible, replication_window, retry_while_replicating};
use super::validators;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    application_object_id: String,
    managed_identity_id: Option<String>,
    name: String,
    description: Option<String>,
    issuer: Option<String>,
    subject: Option<String>,
    audiences: Option<Vec<String>>,
    credential_id: Option<String>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct FederatedAppCredential {
    schema: Schema,
}

impl FederatedAppCredential {
    /// The resource with its schema.
    pub fn new() -> FederatedAppCredential {
        FederatedAppCredential { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id")
            .computed()
            .describe("`<application object id>/federatedIdentityCredentials/<credential id>`."),
        Attribute::string("application_object_id")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::uuid))
            .describe("The multi-tenant application's object id (`object_id`, not its client id)."),
        Attribute::string("managed_identity_id")
            .required()
            .validate(Validator::String(validators::user_assigned_identity_id))
            .describe(
                "The ARM id of the user-assigned identity to trust; issuer and subject are \
                 derived from it.",
            ),
        Attribute::string("name")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::federated_credential_name))
            .describe("The credential's name: 3-120 letters, digits, `-` or `_`; immutable."),
        Attribute::string("description").optional().describe("A free-form description."),
        Attribute::string("issuer")
            .computed()
            .unknown_on_update()
            .describe("The issuer Entra matches: the identity's tenant's v2.0 endpoint."),
        Attribute::string("subject")
            .computed()
            .unknown_on_update()
            .describe("The subject Entra matches: the identity's principal (object) id."),
        Attribute::of_type("audiences", Type::list(Type::String))
            .computed()
            .describe("The token-exchange audience of the provider's cloud."),
        Attribute::string("credential_id").computed().describe("The id Graph gave the credential."),
    ];
    let description = "Trusts the ISV's user-assigned managed identity as a federated identity \
                       credential of the multi-tenant application, so the SQL server running as \
                       that identity can act as the application in the customer's tenant.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(QUICK_TIMEOUTS)),
    }
}

#[async_trait]
impl Resource<Clients> for FederatedAppCredential {
    fn type_name(&self) -> &'static str {
        "azurecmk_federated_app_credential"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn modify_plan(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
        _config: &Value,
        plan: &mut Plan,
    ) -> Diagnostics {
        if Change::between(prior, &plan.planned_state) != Change::Update {
            return Diagnostics::new();
        }
        self.plan_derived_claims(context, plan).await.err().unwrap_or_default()
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.create_credential(context, planned).await.unwrap_or_else(ApplyResult::failed)
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        let found = self.read_credential(context, state).await;
        ReadResult::from_lookup(found, || deleted_outside_terraform("Federated credential", state))
    }

    async fn update(
        &self,
        context: &Context<'_, Clients>,
        _prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        self.update_credential(context, planned).await.into()
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.delete_credential(context, prior).await.err().unwrap_or_default()
    }

    async fn import(
        &self,
        _context: &Context<'_, Clients>,
        id: &str,
    ) -> Result<Value, Diagnostics> {
        let id = FederatedCredentialId::parse(id).map_err(|error| {
            Diagnostics::from(Diagnostic::error(
                "Invalid import id",
                format!("{error}. Use the id `terraform state show` prints for this resource."),
            ))
        })?;
        // Read fills managed_identity_id from the subject's service principal.
        let model = Model {
            id: Some(id.to_string()),
            application_object_id: id.application_object_id.clone(),
            credential_id: Some(id.credential_id.clone()),
            ..Model::default()
        };
        Ok(to_value(&model, &self.schema))
    }
}

impl FederatedAppCredential {
    /// Plans issuer, subject and audiences as the identity derives them now, so any difference
    /// from the refreshed state shows as a change. Left to the framework (unknown) while the
    /// identity's id is itself unknown.
    async fn plan_derived_claims(
        &self,
        context: &Context<'_, Clients>,
        plan: &mut Plan,
    ) -> Result<(), Diagnostics> {
        let planned = &plan.planned_state;
        let Some(identity_text) = planned.attribute("managed_identity_id").as_str() else {
            return Ok(());
        };
        let call = call_context(context, planned, Operation::Read, QUICK_TIMEOUTS)?;

        let spec = credential_spec(&context.provider.azure, identity_text, None, &call).await?;
        let derived = [
            ("issuer", Value::String(spec.issuer)),
            ("subject", Value::String(spec.subject)),
            ("audiences", Value::List(spec.audiences.into_iter().map(Value::String).collect())),
        ];
        for (name, value) in derived {
            if let Some(slot) = plan.planned_state.attribute_mut(name) {
                *slot = value;
            }
        }
        Ok(())
    }

    async fn create_credential(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<ApplyResult, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let call = call_context(context, planned, Operation::Create, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let identity_text = model.managed_identity_id.as_deref().unwrap_or_default();
        let spec = credential_spec(azure, identity_text, model.description.clone(), &call).await?;

        // An application created moments ago may not have reached every replica: Graph then
        // answers 404 for it, which is believed only after a while.
        let replication = replication_window(&call);
        let application_object_id = model.application_object_id.clone();
        let create = || {
            graph::create_federated_credential(
                azure,
                &application_object_id,
                &model.name,
                &spec,
                &replication,
            )
        };
        let credential = retry_while_replicating(&replication, AzureError::is_not_found, create)
            .await
            .map_err(|error| {
                let action = format!(
                    "creating federated credential {:?} on application {}",
                    model.name, model.application_object_id
                );
                azure_diagnostic(&action, &error)
            })?;

        // The credential exists from here on: record it even if it never reads back.
        flatten(&mut model, &credential);
        let state = to_value(&model, &self.schema);
        let read_back = || {
            graph::get_federated_credential(azure, &application_object_id, &credential.id, &call)
        };
        let what = format!("federated credential {}", model.id.as_deref().unwrap_or_default());
        Ok(record_once_visible(state, &what, &call, read_back).await)
    }

    async fn read_credential(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Option<Value>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let id = parse_state_id(&model)?;
        let call = call_context(context, state, Operation::Read, QUICK_TIMEOUTS)?;

        let azure = &context.provider.azure;
        let credential = graph::get_federated_credential(
            azure,
            &id.application_object_id,
            &id.credential_id,
            &call,
        )
        .await
        .map_err(|error| azure_diagnostic(&format!("reading federated credential {id}"), &error))?;

        let Some(credential) = credential else { return Ok(None) };
        flatten(&mut model, &credential);
        if model.managed_identity_id.is_none() {
            model.managed_identity_id = trusted_identity(azure, &credential.subject, &call).await?;
        }
        Ok(Some(to_value(&model, &self.schema)))
    }

    async fn update_credential(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let id = parse_state_id(&model)?;
        let call = call_context(context, planned, Operation::Update, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let identity_text = model.managed_identity_id.as_deref().unwrap_or_default();
        let spec = credential_spec(azure, identity_text, model.description.clone(), &call).await?;
        graph::update_federated_credential(
            azure,
            &id.application_object_id,
            &id.credential_id,
            &spec,
            &call,
        )
        .await
        .map_err(|error| {
            azure_diagnostic(&format!("updating federated credential {id}"), &error)
        })?;

        model.issuer = Some(spec.issuer);
        model.subject = Some(spec.subject);
        model.audiences = Some(spec.audiences);
        Ok(to_value(&model, &self.schema))
    }

    async fn delete_credential(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        let id = parse_state_id(&model)?;
        let call = call_context(context, prior, Operation::Delete, QUICK_TIMEOUTS)?;

        let azure = &context.provider.azure;
        graph::delete_federated_credential(
            azure,
            &id.application_object_id,
            &id.credential_id,
            &call,
        )
        .await
        .map_err(|error| {
            azure_diagnostic(&format!("deleting federated credential {id}"), &error).into()
        })
    }
}

/// What Entra must match: read from the managed identity itself, so the subject is its principal
/// id and the issuer its own tenant, whatever the user believes them to be.
async fn credential_spec(
    azure: &AzureClient,
    identity_text: &str,
    description: Option<String>,
    call: &CallContext,
) -> Result<FederatedCredentialSpec, Diagnostics> {
    let identity_id = UserAssignedIdentityId::parse(identity_text).map_err(|error| {
        Diagnostic::error("Invalid managed_identity_id", format!("{error}."))
            .at_attribute("managed_identity_id")
    })?;
    let identity = managed_identity::get(azure, &identity_id, call)
        .await
        .map_err(|error| azure_diagnostic(&format!("reading {identity_id}"), &error))?
        .ok_or_else(|| {
            Diagnostic::error(
                "Managed identity not found",
                format!(
                    "{identity_id} does not exist, or this provider block's credentials cannot \
                     see it. The identity must be in the same tenant as the application."
                ),
            )
            .at_attribute("managed_identity_id")
        })?;

    let endpoints = azure.endpoints();
    Ok(FederatedCredentialSpec {
        issuer: endpoints.issuer_for_tenant(&identity.tenant_id),
        subject: identity.principal_id,
        audiences: vec![endpoints.token_exchange_audience.clone()],
        description,
    })
}

/// The ARM id of the managed identity a credential's subject names, when known: after an import,
/// state has only the credential. A managed identity's service principal has the identity's
/// principal id as its object id, and lists the identity's ARM id among its alternative names.
async fn trusted_identity(
    azure: &AzureClient,
    subject: &str,
    call: &CallContext,
) -> Result<Option<String>, Diagnostics> {
    let principal = graph::get_service_principal(azure, subject, call).await.map_err(|error| {
        azure_diagnostic(&format!("reading service principal {subject}"), &error)
    })?;
    let names = principal.map(|principal| principal.alternative_names).unwrap_or_default();
    Ok(names
        .into_iter()
        .find_map(|name| UserAssignedIdentityId::parse(&name).ok())
        .map(|id| id.to_string()))
}

fn parse_state_id(model: &Model) -> Result<FederatedCredentialId, Diagnostics> {
    let text = model.id.as_deref().unwrap_or_default();
    FederatedCredentialId::parse(text).map_err(|error| {
        Diagnostic::error(
            "Corrupt state",
            format!("The id stored in state is not a federated credential id: {error}."),
        )
        .into()
    })
}

fn flatten(model: &mut Model, credential: &FederatedCredential) {
    let id = FederatedCredentialId {
        application_object_id: model.application_object_id.clone(),
        credential_id: credential.id.clone(),
    };
    model.id = Some(id.to_string());
    model.credential_id = Some(credential.id.clone());
    model.name = credential.name.clone();
    model.description = credential.description.clone().filter(|text| !text.is_empty());
    model.issuer = Some(credential.issuer.clone());
    model.subject = Some(credential.subject.clone());
    model.audiences = Some(credential.audiences.clone());
}
