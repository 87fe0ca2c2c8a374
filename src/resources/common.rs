//! What every resource needs between the framework and the Azure client: a deadline for each
//! operation, and Azure failures turned into diagnostics that keep Azure's code and request id.

use std::time::Duration;

use crate::azure::client::CallContext;
use crate::azure::error::AzureError;
use crate::framework::timeouts::{self, Operation, TimeoutDefaults};
use crate::framework::{Context, Diagnostic, Diagnostics, Value};
use crate::provider::Clients;

/// The Azure call context for `operation`: the resource's timeout from now, cancelled when
/// Terraform stops the provider.
pub fn call_context(
    context: &Context<'_, Clients>,
    value: &Value,
    operation: Operation,
    defaults: TimeoutDefaults,
) -> Result<CallContext, Diagnostics> {
    let timeout = timeouts::duration_for(value, operation, defaults)?;
    let now = tokio::time::Instant::now();
    // Timeouts are capped when parsed; saturate anyway rather than panic on a far deadline.
    let deadline = now.checked_add(timeout).unwrap_or(now + Duration::from_secs(7 * 24 * 3600));
    Ok(CallContext { deadline, cancel: context.cancel.clone() })
}

/// Timeouts for resources whose operations are single quick requests.
pub const QUICK_TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(5 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(5 * 60),
    delete: Duration::from_secs(5 * 60),
};

/// A diagnostic for an Azure failure while `action` (such as "creating user-assigned identity").
/// The detail keeps everything Azure said that helps: status, error code, message, request id.
pub fn azure_diagnostic(action: &str, error: &AzureError) -> Diagnostic {
    let mut detail = if error.status().is_some() {
        format!("Azure refused while {action}: {error}.")
    } else {
        format!("While {action}: {error}.")
    };
    if error.is_timeout() {
        detail.push_str(" Raise this resource's timeouts block value if Azure is just slow.");
    }
    if error.is_cancelled() {
        detail.push_str(" Terraform asked the provider to stop.");
    }
    Diagnostic::error(summary_for(action), detail)
}

fn summary_for(action: &str) -> String {
    let mut summary = String::from("Error ");
    summary.push_str(action);
    summary
}

/// The value of an optional string attribute, trimmed, treating blank as unset.
pub fn optional_string(value: &Value, name: &str) -> Option<String> {
    value.attribute(name).as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The warning a read gives when the object in `state` no longer exists in Azure, so Terraform
/// drops it from state and plans to create it again; `kind` names the object for the user.
pub fn deleted_outside_terraform(kind: &str, state: &Value) -> Diagnostics {
    let id = state.attribute("id").as_str().unwrap_or_default();
    Diagnostic::warning(
        format!("{kind} deleted outside Terraform"),
        format!("{kind} {id} no longer exists; Terraform will plan to create it again."),
    )
    .into()
}
