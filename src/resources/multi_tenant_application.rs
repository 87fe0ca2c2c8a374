//! `azurecmk_multi_tenant_application`: the ISV's multi-tenant Entra application (step 2), the
//! identity the SQL server presents in the customer's tenant.
//!
//! Its sign-in audience is always `AzureADMultipleOrgs`: the customer can only install (create a
//! service principal for) an application that allows other tenants. The display name updates in
//! place; the id is the application's object id.
//!
//! Graph answers a create before every replica knows the new object, and a read, a credential or
//! an installation that comes next may then be told it does not exist. This module also owns the
//! waits for that, shared by the federated credential and installation resources: creates return
//! only once the object reads back, and requests naming an object that is still replicating are
//! retried for a bounded time. It never retries anything else.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::graph::{self, Application};
use crate::azure::{AzureError, CallContext};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, Block, Context, Diagnostic, Diagnostics, ReadResult, Resource, Schema,
    Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context};
use super::validators;

/// How long an object another request names may take to reach every Graph replica, before
/// Graph's "does not exist" is believed: seconds usually, rarely more than a minute.
const GRAPH_REPLICATION_WAIT: Duration = Duration::from_secs(60);

/// Pause before the first new attempt; each later pause doubles, up to the maximum.
const FIRST_REPLICATION_PAUSE: Duration = Duration::from_millis(250);
const MAX_REPLICATION_PAUSE: Duration = Duration::from_secs(5);

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
            .computed()
            .describe("Always `AzureADMultipleOrgs`, so other tenants can install it."),
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
        match self.read_application(context, state).await {
            Ok(Some(state)) => ReadResult::Found(state, Diagnostics::new()),
            Ok(None) => ReadResult::Gone(gone_warning(state)),
            Err(diagnostics) => ReadResult::Failed(diagnostics),
        }
    }

    async fn update(
        &self,
        context: &Context<'_, Clients>,
        _prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        self.rename_application(context, planned).await.into()
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

    async fn rename_application(
        &self,
        context: &Context<'_, Clients>,
        planned: &Value,
    ) -> Result<Value, Diagnostics> {
        let model: Model = from_value(planned)?;
        let object_id = model.id.clone().unwrap_or_default();
        let call = call_context(context, planned, Operation::Update, QUICK_TIMEOUTS)?;

        let azure = &context.provider.azure;
        graph::update_application_display_name(azure, &object_id, &model.display_name, &call)
            .await
            .map_err(|error| {
                azure_diagnostic(&format!("renaming application {object_id}"), &error)
            })?;
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

/// `call`, ending no later than [`GRAPH_REPLICATION_WAIT`] from now: for retrying requests that
/// name an object which may be replicating, or may just not exist.
pub(super) fn replication_window(call: &CallContext) -> CallContext {
    let limit = tokio::time::Instant::now() + GRAPH_REPLICATION_WAIT;
    CallContext { deadline: call.deadline.min(limit), cancel: call.cancel.clone() }
}

/// Runs `attempt` again while it fails with an error `replicating` recognises as Graph not
/// knowing an object yet, pausing longer each time, until `call` ends; then returns its last
/// outcome.
pub(super) async fn retry_while_replicating<T, F, Fut>(
    call: &CallContext,
    replicating: fn(&AzureError) -> bool,
    mut attempt: F,
) -> Result<T, AzureError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AzureError>>,
{
    let mut pause = FIRST_REPLICATION_PAUSE;
    loop {
        match attempt().await {
            Err(error) if replicating(&error) && wait_before_retry(call, &mut pause).await => {}
            outcome => return outcome,
        }
    }
}

/// The apply result for an object Graph just created, whose state is `state`: done once `read`
/// finds it, and still recorded (with an error) when it does not show before `call` ends, so
/// nothing is orphaned. `what` names the object in that error.
pub(super) async fn record_once_visible<T, F, Fut>(
    state: Value,
    what: &str,
    call: &CallContext,
    mut read: F,
) -> ApplyResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, AzureError>>,
{
    let mut pause = FIRST_REPLICATION_PAUSE;
    loop {
        match read().await {
            Ok(Some(_)) => return ApplyResult::done(state),
            Ok(None) if wait_before_retry(call, &mut pause).await => {}
            Ok(None) => return ApplyResult::partial(state, not_visible(what)),
            Err(error) => {
                let action = format!("reading back {what}");
                return ApplyResult::partial(state, azure_diagnostic(&action, &error));
            }
        }
    }
}

/// Sleeps `pause` and doubles it for next time; false, without sleeping, when `call` would end
/// before another attempt or Terraform asked the provider to stop.
async fn wait_before_retry(call: &CallContext, pause: &mut Duration) -> bool {
    if tokio::time::Instant::now() + *pause >= call.deadline || call.cancel.is_cancelled() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(*pause) => {}
        _ = call.cancel.cancelled() => return false,
    }
    *pause = (*pause * 2).min(MAX_REPLICATION_PAUSE);
    true
}

fn not_visible(what: &str) -> Diagnostics {
    Diagnostic::error(
        "Created object not visible",
        format!(
            "Microsoft Graph created {what} but did not show it before the create timeout; it \
             may still be replicating. It is recorded in state, tainted: raise timeouts.create \
             if this recurs."
        ),
    )
    .into()
}

fn gone_warning(state: &Value) -> Diagnostics {
    let id = state.attribute("id").as_str().unwrap_or_default();
    Diagnostic::warning(
        "Application deleted outside Terraform",
        format!("Application {id} no longer exists; Terraform will plan to create it again."),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use reqwest::StatusCode;

    use super::{record_once_visible, retry_while_replicating};
    use crate::azure::error::ApiError;
    use crate::azure::{AzureError, CallContext};
    use crate::framework::Value;

    fn graph_error(status: StatusCode) -> AzureError {
        AzureError::from(ApiError {
            operation: "creating federated identity credential".into(),
            resource: "/applications/a".into(),
            status: Some(status),
            operation_status: None,
            code: Some("Request_ResourceNotFound".into()),
            message: "Resource 'a' does not exist".into(),
            request_id: None,
            details: Vec::new(),
        })
    }

    #[tokio::test]
    async fn retry_while_replicating_cases() {
        struct Case {
            name: &'static str,
            failures: Vec<StatusCode>,
            timeout: Duration,
            expected_attempts: usize,
            expected_ok: bool,
        }
        let cases = [
            Case {
                name: "first attempt succeeds",
                failures: vec![],
                timeout: Duration::from_secs(10),
                expected_attempts: 1,
                expected_ok: true,
            },
            Case {
                name: "replicating twice, then found",
                failures: vec![StatusCode::NOT_FOUND, StatusCode::NOT_FOUND],
                timeout: Duration::from_secs(10),
                expected_attempts: 3,
                expected_ok: true,
            },
            Case {
                name: "other errors are not retried",
                failures: vec![StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND],
                timeout: Duration::from_secs(10),
                expected_attempts: 1,
                expected_ok: false,
            },
            Case {
                name: "gives up when the window ends",
                failures: vec![StatusCode::NOT_FOUND; 50],
                // Pauses of 250 then 500 ms: the second would end past the window.
                timeout: Duration::from_millis(600),
                expected_attempts: 2,
                expected_ok: false,
            },
        ];
        for case in cases {
            let call = CallContext::with_timeout(case.timeout);
            let attempts = Cell::new(0);
            let attempt = || {
                let failure = case.failures.get(attempts.get()).copied();
                attempts.set(attempts.get() + 1);
                async move { failure.map_or(Ok("created"), |status| Err(graph_error(status))) }
            };
            let outcome = retry_while_replicating(&call, AzureError::is_not_found, attempt).await;
            assert_eq!(outcome.is_ok(), case.expected_ok, "case {}", case.name);
            assert_eq!(attempts.get(), case.expected_attempts, "case {}", case.name);
        }
    }

    #[tokio::test]
    async fn record_once_visible_cases() {
        struct Case {
            name: &'static str,
            reads: Vec<Result<Option<()>, StatusCode>>,
            timeout: Duration,
            expected_error: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "visible at once",
                reads: vec![Ok(Some(()))],
                timeout: Duration::from_secs(10),
                expected_error: None,
            },
            Case {
                name: "visible on the third read",
                reads: vec![Ok(None), Ok(None), Ok(Some(()))],
                timeout: Duration::from_secs(10),
                expected_error: None,
            },
            Case {
                name: "never visible",
                reads: vec![Ok(None); 50],
                timeout: Duration::from_millis(600),
                expected_error: Some("Created object not visible"),
            },
            Case {
                name: "read refused",
                reads: vec![Err(StatusCode::FORBIDDEN)],
                timeout: Duration::from_secs(10),
                expected_error: Some("Error reading back application a"),
            },
        ];
        for case in cases {
            let call = CallContext::with_timeout(case.timeout);
            let reads = Cell::new(0);
            let read = || {
                let outcome = case.reads[reads.get()];
                reads.set(reads.get() + 1);
                async move { outcome.map_err(graph_error) }
            };
            let state = Value::String("state".into());
            let result = record_once_visible(state.clone(), "application a", &call, read).await;
            assert_eq!(result.state, Some(state), "case {}: state is always kept", case.name);
            let summaries: Vec<&str> =
                result.diagnostics.iter().map(|d| d.summary.as_str()).collect();
            assert_eq!(summaries, Vec::from_iter(case.expected_error), "case {}", case.name);
        }
    }
}
