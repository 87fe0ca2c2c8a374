//! `azurecmk_multi_tenant_application`: the ISV's multi-tenant Entra application (step 2), the
//! identity the SQL server presents in the customer's tenant.
//!
//! Its sign-in audience is always `AzureADMultipleOrgs`: the customer can only install (create a
//! service principal for) an application that allows other tenants. The display name updates in
//! place; the id is the application's object id.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::graph::{self, Application};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, Block, Context, Diagnostic, Diagnostics, ReadResult, Resource, Schema,
    Validator, Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context, deleted_outside_terraform};
use super::replication::record_once_visible;
use super::validators;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    display_name: String,
    object_id: Option<String>,
    client_id: Option<String>,
    tenant_id: Option<String>,
    sign_in_audience: Option<String>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct MultiTenantApplication {
    schema: Schema,
}

impl MultiTenantApplication {
    /// The resource with its schema.
    pub fn new() -> MultiTenantApplication {
        MultiTenantApplication { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().describe("The application's object id."),
        Attribute::string("display_name")
            .required()
            .describe("The name shown for the application in both tenants."),
        Attribute::string("object_id").computed().describe(
            "The application's object id in the ISV's tenant: what federated credentials \
             attach to.",
        ),
        Attribute::string("client_id").computed().describe(
            "The application (client) id: what the customer installs, and the SQL server's \
             federated client id.",
        ),
        Attribute::string("tenant_id").computed().describe("The ISV's tenant, which owns it."),
        Attribute::string("sign_in_audience")
            .default(Value::String(graph::MULTIPLE_ORGS.to_string()))
            .validate(Validator::OneOf(&[graph::MULTIPLE_ORGS]))
            .describe(
                "Always `AzureADMultipleOrgs`, so other tenants can install it; a change made \
                 outside Terraform shows in the plan and apply sets it back.",
            ),
    ];
    let description = "A multi-tenant application in the ISV's tenant. The SQL server acts as \
                       this application in the customer's tenant, through a federated credential \
                       that trusts the server's managed identity.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(QUICK_TIMEOUTS)),
    }
}

#[async_trait]
impl Resource<Clients> for MultiTenantApplication {
    fn type_name(&self) -> &'static str {
        "azurecmk_multi_tenant_application"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.create_application(context, planned).await.unwrap_or_else(ApplyResult::failed)
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        let found = self.read_application(context, state).await;
        ReadResult::from_lookup(found, || deleted_outside_terraform("Application", state))
    }

    async fn update(
        &self,
        context: &Context<'_, Clients>,
        _prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        self.update_application(context, planned).await.into()
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.delete_application(context, prior).await.err().unwrap_or_default()
    }

    async fn import(
        &self,
        _context: &Context<'_, Clients>,
        id: &str,
    ) -> Result<Value, Diagnostics> {
        validators::uuid(id).map_err(|problem| {
            Diagnostics::from(Diagnostic::error(
                "Invalid import id",
                format!("{problem}. Import an application by its object id (not its client id)."),
            ))
        })?;
        let model = Model { id: Some(id.to_lowercase()), ..Model::default() };
        Ok(to_value(&model, &self.schema))
    }
}

impl MultiTenantApplication {
    async fn create_application(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<ApplyResult, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let call = call_context(context, planned, Operation::Create, QUICK_TIMEOUTS)?;

        let azure = &context.provider.azure;
        let application = graph::create_application(azure, &model.display_name, &call)
            .await
            .map_err(|error| azure_diagnostic("creating application", &error))?;

        // The application exists from here on: record it even if it never reads back.
        flatten(&mut model, &application, azure.tenant_id());
        let state = to_value(&model, &self.schema);
        let read_back = || graph::get_application(azure, &application.id, &call);
        let what = format!("application {}", application.id);
        Ok(record_once_visible(state, &what, &call, read_back).await)
    }

    async fn read_application(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Option<Value>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let object_id = model.id.clone().unwrap_or_default();
        let call = call_context(context, state, Operation::Read, QUICK_TIMEOUTS)?;

        let azure = &context.provider.azure;
        let application =
            graph::get_application(azure, &object_id, &call).await.map_err(|error| {
                azure_diagnostic(&format!("reading application {object_id}"), &error)
            })?;

        Ok(application.map(|application| {
            flatten(&mut model, &application, azure.tenant_id());
            to_value(&model, &self.schema)
        }))
    }

    /// Sets the display name, and the audience back to multi-tenant if it drifted.
    async fn update_application(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let model: Model = from_value(planned)?;
        let object_id = model.id.clone().unwrap_or_default();
        let call = call_context(context, planned, Operation::Update, QUICK_TIMEOUTS)?;

        let azure = &context.provider.azure;
        graph::update_application(azure, &object_id, &model.display_name, &call).await.map_err(
            |error| azure_diagnostic(&format!("updating application {object_id}"), &error),
        )?;
        Ok(planned.clone())
    }

    async fn delete_application(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        let object_id = model.id.clone().unwrap_or_default();
        let call = call_context(context, prior, Operation::Delete, QUICK_TIMEOUTS)?;

        graph::delete_application(&context.provider.azure, &object_id, &call).await.map_err(
            |error| azure_diagnostic(&format!("deleting application {object_id}"), &error).into(),
        )
    }
}

fn flatten(model: &mut Model, application: &Application, tenant_id: &str) {
    model.id = Some(application.id.clone());
    model.object_id = Some(application.id.clone());
    model.client_id = Some(application.app_id.clone());
    model.display_name = application.display_name.clone();
    model.tenant_id = Some(tenant_id.to_string());
    model.sign_in_audience = Some(application.sign_in_audience.clone());
}
