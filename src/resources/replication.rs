//! Waiting out replication: Microsoft Graph and Azure RBAC answer a create before every replica
//! knows the new object, and a read, a credential, an installation or a grant that comes next may
//! be told it does not exist.
//!
//! Creates return only once their object reads back; requests naming an object that is still
//! replicating are retried for a bounded time, by polling with growing pauses, never by fixed
//! sleeps. Nothing here retries any other failure, and every wait ends at the caller's deadline or
//! when Terraform asks the provider to stop.

use std::future::Future;
use std::time::Duration;

use crate::azure::{AzureError, CallContext};
use crate::framework::{ApplyResult, Diagnostic, Diagnostics, Value};

use super::common::azure_diagnostic;

/// How long an object another request names may take to reach every Graph replica, before
/// Graph's "does not exist" is believed: seconds usually, rarely more than a minute.
const GRAPH_REPLICATION_WAIT: Duration = Duration::from_secs(60);

/// Pause before the first new attempt; each later pause doubles, up to the maximum.
const FIRST_REPLICATION_PAUSE: Duration = Duration::from_millis(250);
const MAX_REPLICATION_PAUSE: Duration = Duration::from_secs(5);

/// `call`, ending no later than [`GRAPH_REPLICATION_WAIT`] from now: for retrying requests that
/// name an object which may be replicating, or may just not exist.
pub fn replication_window(call: &CallContext) -> CallContext {
    let limit = tokio::time::Instant::now() + GRAPH_REPLICATION_WAIT;
    CallContext { deadline: call.deadline.min(limit), cancel: call.cancel.clone() }
}

/// Runs `attempt` again while it fails with an error `replicating` recognises as Graph not
/// knowing an object yet, pausing longer each time, until `call` ends; then returns its last
/// outcome.
pub async fn retry_while_replicating<T, F, Fut>(
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
pub async fn record_once_visible<T, F, Fut>(
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

/// Calls `probe` until it finds something, pausing longer each time, while `call` allows;
/// `None` once it would end, or Terraform asked the provider to stop, with nothing found.
pub async fn poll_until_found<T, F, Fut>(
    call: &CallContext,
    mut probe: F,
) -> Result<Option<T>, AzureError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, AzureError>>,
{
    let mut pause = FIRST_REPLICATION_PAUSE;
    loop {
        if let Some(found) = probe().await? {
            return Ok(Some(found));
        }
        if !wait_before_retry(call, &mut pause).await {
            return Ok(None);
        }
    }
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
