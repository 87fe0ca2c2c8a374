//! `azurecmk_application_installation`: the ISV's multi-tenant application installed in the
//! customer's tenant, that is its service principal there (step 4).
//!
//! A tenant can hold one service principal per application, and customers often have one already
//! (an earlier consent or run). With `adopt_existing` the provider takes it over and records that
//! it did not create it, so destroy never deletes a service principal someone else relies on.
//!
//! The application is usually created moments before, in another tenant: until it has replicated
//! Graph refuses the installation as naming no application, so that refusal is retried for a
//! while before it is believed.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::AzureError;
use crate::azure::graph::{self, ServicePrincipal};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, Block, Context, Diagnostic, Diagnostics, ReadResult, Resource, Schema,
    Validator, Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context, deleted_outside_terraform};
use super::replication::{record_once_visible, replication_window, retry_while_replicating};
use super::validators;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    client_id: String,
    adopt_existing: Option<bool>,
    object_id: Option<String>,
    application_tenant_id: Option<String>,
    created_by_provider: Option<bool>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct ApplicationInstallation {
    schema: Schema,
}

impl ApplicationInstallation {
    /// The resource with its schema.
    pub fn new() -> ApplicationInstallation {
        ApplicationInstallation { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().describe("The service principal's object id."),
        Attribute::string("client_id")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::uuid))
            .describe("The ISV application's client id (`client_id`, not its object id)."),
        Attribute::bool("adopt_existing").default(Value::Bool(true)).describe(
            "Reuse a service principal the tenant already has for this application instead of \
             failing; an adopted one is never deleted on destroy. Default `true`.",
        ),
        Attribute::string("object_id").computed().describe(
            "The service principal's object id in this tenant: what the key grant names.",
        ),
        Attribute::string("application_tenant_id")
            .computed()
            .describe("The ISV's tenant, which owns the application."),
        Attribute::bool("created_by_provider")
            .computed()
            .describe("Whether this resource created the service principal (and so deletes it)."),
    ];
    let description = "Installs the ISV's multi-tenant application in the customer's tenant by \
                       creating its service principal there, so the customer can grant it access \
                       to a key. Configure this resource's provider block for the customer's \
                       tenant.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(QUICK_TIMEOUTS)),
    }
}

#[async_trait]
impl Resource<Clients> for ApplicationInstallation {
    fn type_name(&self) -> &'static str {
        "azurecmk_application_installation"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.install(context, planned).await.unwrap_or_else(ApplyResult::failed)
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        let found = self.read_installation(context, state).await;
        ReadResult::from_lookup(found, || {
            deleted_outside_terraform("Application installation", state)
        })
    }

    async fn update(
        &self,
        _context: &Context<'_, Clients>,
        _prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        // Only adopt_existing can change in place, and it only matters at create time.
        ApplyResult::done(planned.clone())
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.uninstall(context, prior).await.err().unwrap_or_default()
    }

    async fn import(
        &self,
        _context: &Context<'_, Clients>,
        id: &str,
    ) -> Result<Value, Diagnostics> {
        validators::uuid(id).map_err(|problem| {
            Diagnostics::from(Diagnostic::error(
                "Invalid import id",
                format!("{problem}. Import an installation by its service principal object id."),
            ))
        })?;
        // An imported service principal was made by someone else: never delete it on destroy.
        let model = Model {
            id: Some(id.to_lowercase()),
            adopt_existing: Some(true),
            created_by_provider: Some(false),
            ..Model::default()
        };
        Ok(to_value(&model, &self.schema))
    }
}

impl ApplicationInstallation {
    async fn install(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<ApplyResult, Diagnostics> {
        let mut model: Model = from_value(planned)?;
        let call = call_context(context, planned, Operation::Create, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let replication = replication_window(&call);
        let create = || graph::create_service_principal(azure, &model.client_id, &replication);
        let created =
            retry_while_replicating(&replication, application_not_replicated, create).await;
        let (principal, created_by_provider) = match created {
            Ok(principal) => (principal, true),
            Err(error) if error.is_conflict() => {
                let existing =
                    graph::find_service_principal_by_app_id(azure, &model.client_id, &call)
                        .await
                        .map_err(|error| {
                            azure_diagnostic("finding the existing installation", &error)
                        })?
                        .ok_or_else(|| azure_diagnostic("installing the application", &error))?;
                if model.adopt_existing == Some(false) {
                    return Err(already_installed(&existing));
                }
                (existing, false)
            }
            Err(error) => {
                let action = format!("installing application {}", model.client_id);
                let mut diagnostic = azure_diagnostic(&action, &error);
                if application_not_replicated(&error) {
                    // Still unknown after the replication window: most often the wrong id.
                    diagnostic.detail.push_str(
                        " Check that client_id is the application's client (app) id, not its \
                         object id, and that the application is multi-tenant \
                         (AzureADMultipleOrgs).",
                    );
                    diagnostic = diagnostic.at_attribute("client_id");
                }
                return Err(diagnostic.into());
            }
        };

        model.created_by_provider = Some(created_by_provider);
        flatten(&mut model, &principal);
        let state = to_value(&model, &self.schema);
        if !created_by_provider {
            // Found by a read, so already visible.
            return Ok(ApplyResult::done(state));
        }

        // The service principal exists from here on: record it even if it never reads back.
        let read_back = || graph::get_service_principal(azure, &principal.id, &call);
        let what = format!("service principal {}", principal.id);
        Ok(record_once_visible(state, &what, &call, read_back).await)
    }

    async fn read_installation(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Option<Value>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let object_id = model.id.clone().unwrap_or_default();
        let call = call_context(context, state, Operation::Read, QUICK_TIMEOUTS)?;

        let principal = graph::get_service_principal(&context.provider.azure, &object_id, &call)
            .await
            .map_err(|error| {
                azure_diagnostic(&format!("reading service principal {object_id}"), &error)
            })?;

        Ok(principal.map(|principal| {
            flatten(&mut model, &principal);
            model.adopt_existing.get_or_insert(true);
            model.created_by_provider.get_or_insert(false);
            to_value(&model, &self.schema)
        }))
    }

    async fn uninstall(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        if model.created_by_provider != Some(true) {
            // Adopted or imported: the installation belongs to someone else; just forget it.
            return Ok(());
        }
        let object_id = model.id.clone().unwrap_or_default();
        let call = call_context(context, prior, Operation::Delete, QUICK_TIMEOUTS)?;

        graph::delete_service_principal(&context.provider.azure, &object_id, &call).await.map_err(
            |error| {
                azure_diagnostic(&format!("deleting service principal {object_id}"), &error).into()
            },
        )
    }
}

/// Graph's answers to a service principal for an application that has not reached this tenant's
/// replicas yet. The 403 reads like a permission problem but is replication too (azuread retries
/// both the same way).
fn application_not_replicated(error: &AzureError) -> bool {
    let AzureError::Api(api) = error else { return false };
    match api.status.map(|status| status.as_u16()) {
        Some(400) => api.message.contains("does not reference a valid application object"),
        Some(403) => api.message.contains("backing application of the service principal"),
        _ => false,
    }
}

fn flatten(model: &mut Model, principal: &ServicePrincipal) {
    model.id = Some(principal.id.clone());
    model.object_id = Some(principal.id.clone());
    model.client_id = principal.app_id.clone();
    model.application_tenant_id = principal.app_owner_organization_id.clone();
}

fn already_installed(existing: &ServicePrincipal) -> Diagnostics {
    Diagnostic::error(
        "Application already installed",
        format!(
            "This tenant already has service principal {} for application {}, and \
             adopt_existing is false. Set adopt_existing = true to manage it without ever \
             deleting it, or import it: terraform import <address> {}",
            existing.id, existing.app_id, existing.id
        ),
    )
    .at_attribute("adopt_existing")
    .into()
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::application_not_replicated;
    use crate::azure::AzureError;
    use crate::azure::error::ApiError;

    #[test]
    fn application_not_replicated_cases() {
        let not_valid = "The appId '1f0c' of the service principal does not reference a valid \
                         application object.";
        let local_tenant = "When using this permission, the backing application of the service \
                            principal being created must in the local tenant";
        let cases = [
            ("application unknown yet", StatusCode::BAD_REQUEST, not_valid, true),
            ("misleading permission refusal", StatusCode::FORBIDDEN, local_tenant, true),
            ("other bad request", StatusCode::BAD_REQUEST, "Invalid value for appId.", false),
            (
                "plain permission refusal",
                StatusCode::FORBIDDEN,
                "Insufficient privileges to complete the operation.",
                false,
            ),
            ("already installed", StatusCode::CONFLICT, "already in use", false),
        ];
        for (name, status, message, expected) in cases {
            let error = AzureError::from(ApiError {
                operation: "creating service principal for application".into(),
                resource: "1f0c".into(),
                status: Some(status),
                operation_status: None,
                code: Some("Request_BadRequest".into()),
                message: message.into(),
                request_id: None,
                details: Vec::new(),
            });
            assert_eq!(application_not_replicated(&error), expected, "case {name}");
        }
        let timeout = AzureError::Timeout {
            operation: "creating service principal for application".into(),
            resource: "1f0c".into(),
            waited: std::time::Duration::from_secs(60),
        };
        assert!(!application_not_replicated(&timeout), "case timeout");
    }
}
