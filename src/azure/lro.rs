//! Waiting for ARM long-running operations to finish.
//!
//! This module owns the polling protocol: `Azure-AsyncOperation` status monitors, `Location`
//! URLs answering 202 while running, and `provisioningState` on the resource itself. It must
//! never poll past the call's deadline, and never follow a status URL to another host (that
//! would hand our ARM token to it).

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::azure::client::{ApiRequest, ApiResponse, AzureClient, CallContext, sleep_or_cancel};
use crate::azure::error::{ApiError, AzureError, ErrorDetail, parse_error_body};
use crate::azure::retry::parse_retry_after;

/// Where a long-running operation stands, from its status monitor or the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    /// Not finished (`InProgress`, `Accepted`, `Creating`, ... anything not terminal).
    Running,
    /// Finished well.
    Succeeded,
    /// Finished badly: `Failed` or `Canceled`, with Azure's error.
    Ended {
        /// The terminal status as Azure wrote it.
        status: String,
        /// The error code, if given.
        code: Option<String>,
        /// The error message, if given.
        message: Option<String>,
        /// Nested details.
        details: Vec<ErrorDetail>,
    },
}

/// Reads an `Azure-AsyncOperation` status body: `{"status": "...", "error": {...}}`.
pub fn parse_operation_status(body: &[u8]) -> Result<OperationState, String> {
    #[derive(Deserialize)]
    struct StatusBody {
        status: Option<String>,
    }
    let parsed: StatusBody =
        serde_json::from_slice(body).map_err(|error| format!("operation status: {error}"))?;
    let status = parsed.status.ok_or("operation status: no \"status\" field")?;
    Ok(state_from_status(&status, body))
}

/// Reads `properties.provisioningState` from a resource body; absent means finished.
pub fn parse_provisioning_state(body: &[u8]) -> OperationState {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Properties {
        provisioning_state: Option<String>,
    }
    #[derive(Deserialize)]
    struct Resource {
        properties: Option<Properties>,
    }
    let state = serde_json::from_slice::<Resource>(body)
        .ok()
        .and_then(|resource| resource.properties)
        .and_then(|properties| properties.provisioning_state);
    match state {
        Some(state) => state_from_status(&state, body),
        None => OperationState::Succeeded,
    }
}

fn state_from_status(status: &str, body: &[u8]) -> OperationState {
    let lowered = status.to_ascii_lowercase();
    match lowered.as_str() {
        "succeeded" => OperationState::Succeeded,
        "failed" | "canceled" | "cancelled" => {
            let error = parse_error_body(body);
            OperationState::Ended {
                status: status.to_owned(),
                code: error.code,
                message: error.message,
                details: error.details,
            }
        }
        _ => OperationState::Running,
    }
}

impl AzureClient {
    /// Sends a request and, if Azure answers with a long-running operation, waits for it.
    pub async fn send_and_wait(
        &self,
        request: ApiRequest,
        call: &CallContext,
    ) -> Result<ApiResponse, AzureError> {
        let initial = self.send(request, call).await?;
        self.wait_for_operation(initial, call).await
    }

    /// Waits for the operation a response started, then returns the final response.
    ///
    /// Follows `Azure-AsyncOperation` when present (Microsoft.Sql sends it with `Location`),
    /// else `Location`, else `provisioningState`. For PUT and PATCH the final response is a
    /// fresh GET of the resource, since status monitors carry no resource body; for DELETE and
    /// POST it is the last poll's response. A response that started nothing is returned as is.
    pub async fn wait_for_operation(
        &self,
        initial: ApiResponse,
        call: &CallContext,
    ) -> Result<ApiResponse, AzureError> {
        let started = Instant::now();
        let writes_resource = matches!(*initial.method(), Method::PUT | Method::PATCH);
        let async_operation = self.poll_url(&initial, "azure-asyncoperation")?;
        let location = self.poll_url(&initial, "location")?;

        if let Some(monitor) = async_operation {
            let last = self.poll_status_monitor(&initial, monitor, call, started).await?;
            return match (writes_resource, location, initial.method()) {
                (true, _, _) => self.read_back(&initial, call).await,
                (false, Some(location), &Method::POST) => self.get(&initial, location, call).await,
                _ => Ok(last),
            };
        }
        if let Some(location) = location {
            let last = self.poll_location(&initial, location, call, started).await?;
            return if writes_resource { self.read_back(&initial, call).await } else { Ok(last) };
        }
        if writes_resource && initial.status == StatusCode::ACCEPTED {
            // Accepted with nowhere to poll: the resource itself is the only thing to read.
            return self.poll_provisioning_state(&initial, call, started).await;
        }
        if writes_resource && parse_provisioning_state(&initial.body) == OperationState::Running {
            return self.poll_provisioning_state(&initial, call, started).await;
        }
        Ok(initial)
    }

    /// A status URL from a header, refused when it points to another host than the request.
    fn poll_url(&self, initial: &ApiResponse, header: &str) -> Result<Option<Url>, AzureError> {
        let Some(text) = initial.header(header) else {
            return Ok(None);
        };
        let invalid = |detail: String| AzureError::InvalidRequest {
            operation: initial.operation().to_owned(),
            resource: initial.resource().to_owned(),
            detail,
        };
        let url = initial
            .url()
            .join(text.trim())
            .map_err(|error| invalid(format!("Azure sent an unusable {header} header: {error}")))?;
        if url.origin() != initial.url().origin() {
            let host = url.host_str().unwrap_or_default().to_owned();
            return Err(invalid(format!(
                "Azure pointed the operation's {header} at {host}, another host than the \
                 request's; not sending credentials there"
            )));
        }
        Ok(Some(url))
    }

    async fn poll_status_monitor(
        &self,
        initial: &ApiResponse,
        monitor: Url,
        call: &CallContext,
        started: Instant,
    ) -> Result<ApiResponse, AzureError> {
        let mut headers = initial.headers.clone();
        loop {
            self.pause_before_poll(&headers, initial, call, started).await?;
            let response = self.get(initial, monitor.clone(), call).await?;
            let state =
                parse_operation_status(&response.body).map_err(|detail| AzureError::Decode {
                    operation: initial.operation().to_owned(),
                    resource: initial.resource().to_owned(),
                    detail,
                })?;
            match state {
                OperationState::Running => tracing::debug!("operation still running"),
                OperationState::Succeeded => return Ok(response),
                OperationState::Ended { status, code, message, details } => {
                    let request_id = response.request_id().or_else(|| initial.request_id());
                    return Err(AzureError::from(ApiError {
                        operation: initial.operation().to_owned(),
                        resource: initial.resource().to_owned(),
                        status: None,
                        operation_status: Some(status),
                        code,
                        message: message.unwrap_or_default(),
                        request_id,
                        details,
                    }));
                }
            }
            headers = response.headers;
        }
    }

    async fn poll_location(
        &self,
        initial: &ApiResponse,
        location: Url,
        call: &CallContext,
        started: Instant,
    ) -> Result<ApiResponse, AzureError> {
        let mut headers = initial.headers.clone();
        loop {
            self.pause_before_poll(&headers, initial, call, started).await?;
            let response = self.get(initial, location.clone(), call).await?;
            if response.status != StatusCode::ACCEPTED {
                return Ok(response);
            }
            tracing::debug!("operation still running");
            headers = response.headers;
        }
    }

    async fn poll_provisioning_state(
        &self,
        initial: &ApiResponse,
        call: &CallContext,
        started: Instant,
    ) -> Result<ApiResponse, AzureError> {
        let mut headers = initial.headers.clone();
        loop {
            self.pause_before_poll(&headers, initial, call, started).await?;
            let response = self.read_back(initial, call).await?;
            match parse_provisioning_state(&response.body) {
                OperationState::Running => tracing::debug!("resource still provisioning"),
                OperationState::Succeeded => return Ok(response),
                OperationState::Ended { status, code, message, details } => {
                    return Err(AzureError::from(ApiError {
                        operation: initial.operation().to_owned(),
                        resource: initial.resource().to_owned(),
                        status: None,
                        operation_status: Some(status),
                        code,
                        message: message.unwrap_or_default(),
                        request_id: response.request_id(),
                        details,
                    }));
                }
            }
            headers = response.headers;
        }
    }

    /// Waits what the last response asked (within the policy's bounds), never past the deadline.
    async fn pause_before_poll(
        &self,
        last_headers: &HeaderMap,
        initial: &ApiResponse,
        call: &CallContext,
        started: Instant,
    ) -> Result<(), AzureError> {
        let asked = parse_retry_after(last_headers, std::time::SystemTime::now());
        let interval = self.polling_policy().interval(asked);
        let remaining = call.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(AzureError::Timeout {
                operation: initial.operation().to_owned(),
                resource: initial.resource().to_owned(),
                waited: started.elapsed(),
            });
        }
        // Sleeping only up to the deadline leaves one last poll before giving up.
        let delay = interval.min(remaining);
        sleep_or_cancel(delay, call, initial.operation(), initial.resource()).await
    }

    /// GET of the resource the initial request wrote.
    async fn read_back(
        &self,
        initial: &ApiResponse,
        call: &CallContext,
    ) -> Result<ApiResponse, AzureError> {
        self.get(initial, initial.url().clone(), call).await
    }

    async fn get(
        &self,
        initial: &ApiResponse,
        url: Url,
        call: &CallContext,
    ) -> Result<ApiResponse, AzureError> {
        let request = ApiRequest::new(
            initial.audience(),
            Method::GET,
            url,
            initial.operation(),
            initial.resource(),
        );
        self.send(request, call).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use reqwest::Method;

    use super::{OperationState, parse_operation_status, parse_provisioning_state};
    use crate::azure::client::{ApiRequest, Audience, AzureClient, CallContext};
    use crate::azure::error::{AzureError, ErrorDetail};
    use crate::azure::testing::{FakeCredential, Reply, ScriptedServer, client_for};

    const SERVER_PATH: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x";

    async fn setup() -> (ScriptedServer, AzureClient) {
        let server = ScriptedServer::start().await;
        let client = client_for(&server, Arc::new(FakeCredential::default()));
        (server, client)
    }

    fn server_request(client: &AzureClient, method: Method) -> ApiRequest {
        let url = client.arm_url(SERVER_PATH, "2025-01-01");
        ApiRequest::new(Audience::ResourceManager, method, url, "updating SQL server", SERVER_PATH)
    }

    fn targets(server: &ScriptedServer) -> Vec<String> {
        server.requests().into_iter().map(|r| format!("{} {}", r.method, r.target)).collect()
    }

    #[tokio::test]
    async fn follows_the_async_operation_then_reads_the_resource() {
        let (server, client) = setup().await;
        let monitor = server.url("/op/1?api-version=2025-01-01");
        let location = server.url("/result/1?api-version=2025-01-01");
        server.script([
            Reply::json(202, r#"{"operation":"UpsertLogicalServer"}"#)
                .with_header("Azure-AsyncOperation", &monitor)
                .with_header("Location", &location)
                .with_header("Retry-After", "0"),
            Reply::json(200, r#"{"status":"InProgress"}"#).with_header("Retry-After", "0"),
            Reply::json(200, r#"{"status":"Succeeded"}"#),
            Reply::json(200, r#"{"name":"x","properties":{"state":"Ready"}}"#),
        ]);

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let request = server_request(&client, Method::PATCH).with_json(&"{}").unwrap();
        let response = client.send_and_wait(request, &call).await.unwrap();

        assert_eq!(response.json::<serde_json::Value>().unwrap()["name"], "x");
        let server_target = format!("{SERVER_PATH}?api-version=2025-01-01");
        assert_eq!(
            targets(&server),
            [
                format!("PATCH {server_target}"),
                "GET /op/1?api-version=2025-01-01".to_owned(),
                "GET /op/1?api-version=2025-01-01".to_owned(),
                format!("GET {server_target}"),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_operation_carries_its_error_code() {
        let (server, client) = setup().await;
        server.script([
            Reply::json(202, "{}").with_header("Azure-AsyncOperation", &server.url("/op/2")),
            Reply::json(
                200,
                r#"{"status":"Failed","error":{"code":"InvalidPrimaryIdentityId","message":"not in list"}}"#,
            )
            .with_header("x-ms-request-id", "poll-1"),
        ]);

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let error = client.send_and_wait(server_request(&client, Method::PUT), &call).await;
        let error = error.unwrap_err();

        assert_eq!(error.code(), Some("InvalidPrimaryIdentityId"));
        assert_eq!(
            error.to_string(),
            format!(
                "updating SQL server {SERVER_PATH}: long-running operation ended Failed \
                 InvalidPrimaryIdentityId: not in list (request id poll-1)"
            )
        );
    }

    #[tokio::test]
    async fn location_polling_ends_when_the_answer_is_not_202() {
        let (server, client) = setup().await;
        server.script([
            Reply::json(202, "").with_header("Location", &server.url("/result/3")),
            Reply::json(202, "").with_header("Retry-After", "0"),
            Reply::json(204, ""),
        ]);

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let response = client.send_and_wait(server_request(&client, Method::DELETE), &call).await;

        assert_eq!(response.unwrap().status, 204);
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn a_status_url_on_another_host_is_refused() {
        let (server, client) = setup().await;
        server.script([Reply::json(202, "")
            .with_header("Azure-AsyncOperation", "https://elsewhere.example/op/4")]);

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let error = client.send_and_wait(server_request(&client, Method::PUT), &call).await;
        let error = error.unwrap_err();

        assert!(matches!(error, AzureError::InvalidRequest { .. }), "{error}");
        assert!(error.to_string().contains("elsewhere.example"), "{error}");
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn polling_stops_at_the_deadline() {
        let (server, client) = setup().await;
        let monitor = server.url("/op/5");
        server.script([Reply::json(202, "").with_header("Azure-AsyncOperation", &monitor)]);
        server.script((0..100).map(|_| Reply::json(200, r#"{"status":"InProgress"}"#)));

        let call = CallContext::with_timeout(Duration::from_millis(300));
        let error = client.send_and_wait(server_request(&client, Method::PUT), &call).await;
        let error = error.unwrap_err();

        assert!(error.is_timeout(), "{error}");
        assert!(error.to_string().starts_with("updating SQL server"), "{error}");
    }

    #[tokio::test]
    async fn a_finished_answer_is_returned_as_is() {
        let (server, client) = setup().await;
        server.script([Reply::json(200, r#"{"name":"x"}"#)]);

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let response = client.send_and_wait(server_request(&client, Method::PUT), &call).await;

        assert_eq!(response.unwrap().json::<serde_json::Value>().unwrap()["name"], "x");
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn operation_status_bodies() {
        let cases: Vec<(&str, &str, Result<OperationState, String>)> = vec![
            (
                "in progress",
                r#"{"name":"op","status":"InProgress","startTime":"2021-11-30T08:38:25.413Z"}"#,
                Ok(OperationState::Running),
            ),
            ("accepted", r#"{"status":"Accepted"}"#, Ok(OperationState::Running)),
            ("succeeded", r#"{"status":"Succeeded"}"#, Ok(OperationState::Succeeded)),
            ("lowercase", r#"{"status":"succeeded"}"#, Ok(OperationState::Succeeded)),
            (
                "failed with error",
                r#"{"status":"Failed","error":{"code":"AzureKeyVaultKeyNameNotFound",
                   "message":"key name does not exist","details":[{"code":"D","message":"d"}]}}"#,
                Ok(OperationState::Ended {
                    status: "Failed".into(),
                    code: Some("AzureKeyVaultKeyNameNotFound".into()),
                    message: Some("key name does not exist".into()),
                    details: vec![ErrorDetail { code: Some("D".into()), message: "d".into() }],
                }),
            ),
            (
                "canceled without error",
                r#"{"status":"Canceled"}"#,
                Ok(OperationState::Ended {
                    status: "Canceled".into(),
                    code: None,
                    message: None,
                    details: vec![],
                }),
            ),
            ("no status", r#"{"name":"op"}"#, Err("operation status: no \"status\" field".into())),
        ];
        for (name, body, expected) in cases {
            assert_eq!(parse_operation_status(body.as_bytes()), expected, "{name}");
        }
        assert!(parse_operation_status(b"<html>").is_err());
    }

    #[test]
    fn provisioning_states() {
        let cases = [
            ("absent", r#"{"properties":{}}"#, OperationState::Succeeded),
            ("no properties", r#"{"id":"x"}"#, OperationState::Succeeded),
            (
                "creating",
                r#"{"properties":{"provisioningState":"Creating"}}"#,
                OperationState::Running,
            ),
            (
                "succeeded",
                r#"{"properties":{"provisioningState":"Succeeded"}}"#,
                OperationState::Succeeded,
            ),
        ];
        for (name, body, expected) in cases {
            assert_eq!(parse_provisioning_state(body.as_bytes()), expected, "{name}");
        }
    }
}
