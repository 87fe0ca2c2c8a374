//! The HTTP pipeline every Azure call goes through: token, send, retry, deadline, cancellation.
//!
//! This module owns [`AzureClient`], the per-tenant handle the API modules call. It must never
//! know a specific API (that is the job of `sql`, `graph`, ...), never log a header outside the
//! allow-list below nor any body, and never keep a token anywhere but its cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use azure_core::credentials::TokenCredential;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use url::Url;

use crate::azure::cloud::{CloudEndpoints, CloudEnvironment};
use crate::azure::credentials::{self, AuthMethod, CredentialError, CredentialOptions};
use crate::azure::error::{self, AzureError, ServiceKind};
use crate::azure::http;
use crate::azure::retry::{self, Failure, PollingPolicy, RetryPolicy};
use crate::azure::secret::Secret;

/// The deadline and cancellation signal of one Terraform operation.
///
/// One context covers a whole create or update, including every retry and every poll of a
/// long-running operation, so the resource's timeout bounds the total.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// No request is started, and no wait extends, past this instant.
    pub deadline: Instant,
    /// Cancelled when Terraform asks the provider to stop.
    pub cancel: CancellationToken,
}

impl CallContext {
    /// A context ending `timeout` from now, with its own cancellation token.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self { deadline: Instant::now() + timeout, cancel: CancellationToken::new() }
    }
}

/// Which service a request goes to: decides the token scope and how errors are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Azure Resource Manager.
    ResourceManager,
    /// Microsoft Graph.
    Graph,
    /// The Key Vault data plane.
    KeyVault,
}

impl Audience {
    fn service(self) -> ServiceKind {
        match self {
            Self::ResourceManager => ServiceKind::ResourceManager,
            Self::Graph => ServiceKind::Graph,
            Self::KeyVault => ServiceKind::KeyVault,
        }
    }
}

/// One request to Azure, described for the pipeline.
pub struct ApiRequest {
    audience: Audience,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    idempotent: bool,
    operation: String,
    resource: String,
}

impl ApiRequest {
    /// A request without a body.
    ///
    /// `operation` says what we are doing in words ("updating SQL server") and `resource` which
    /// object (an id or URL path); both appear in every error this request can produce.
    pub fn new(
        audience: Audience,
        method: Method,
        url: Url,
        operation: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            audience,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            idempotent: false,
            operation: operation.into(),
            resource: resource.into(),
        }
    }

    /// Adds a JSON body.
    pub fn with_json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, AzureError> {
        let bytes = serde_json::to_vec(body).map_err(|error| AzureError::InvalidRequest {
            operation: self.operation.clone(),
            resource: self.resource.clone(),
            detail: format!("encoding the request body: {error}"),
        })?;
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(bytes);
        Ok(self)
    }

    /// Adds a header, such as Graph's `Prefer` or `ConsistencyLevel`.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Appends a query parameter, such as Graph's `$filter`.
    pub fn with_query(mut self, name: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(name, value);
        self
    }

    /// Declares a POST safe to repeat, so server errors and dropped connections are retried.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body and headers stay out: bodies can hold secrets (key material, passwords).
        formatter
            .debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("url", &self.url.path())
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// A successful answer from Azure, with what is needed to follow or decode it.
pub struct ApiResponse {
    /// The HTTP status (always 2xx).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Vec<u8>,
    audience: Audience,
    method: Method,
    url: Url,
    operation: String,
    resource: String,
}

impl ApiResponse {
    /// Decodes the body as JSON; a mismatch names the operation and resource.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AzureError> {
        serde_json::from_slice(&self.body).map_err(|error| AzureError::Decode {
            operation: self.operation.clone(),
            resource: self.resource.clone(),
            detail: error.to_string(),
        })
    }

    /// The request id Azure gave this response.
    pub fn request_id(&self) -> Option<String> {
        error::request_id_from_headers(self.audience.service(), &self.headers)
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The method of the request this answers.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL of the request this answers.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn audience(&self) -> Audience {
        self.audience
    }

    pub(crate) fn operation(&self) -> &str {
        &self.operation
    }

    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }
}

impl fmt::Debug for ApiResponse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A per-tenant Azure client: one credential, one token cache, the shared HTTP client.
///
/// Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct AzureClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    auth_method: AuthMethod,
    cloud: CloudEnvironment,
    endpoints: CloudEndpoints,
    tenant_id: String,
    tokens: TokenCache,
    retry: RetryPolicy,
    polling: PollingPolicy,
}

impl fmt::Debug for AzureClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AzureClient")
            .field("tenant_id", &self.inner.tenant_id)
            .field("cloud", &self.inner.cloud)
            .field("auth_method", &self.inner.auth_method)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AzureClient`]; everything but the credential has a default.
pub struct AzureClientBuilder {
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    auth_method: AuthMethod,
    tenant_id: String,
    cloud: CloudEnvironment,
    endpoints: Option<CloudEndpoints>,
    retry: RetryPolicy,
    polling: PollingPolicy,
}

impl AzureClientBuilder {
    /// Selects the cloud (default: public).
    pub fn cloud(mut self, cloud: CloudEnvironment) -> Self {
        self.cloud = cloud;
        self
    }

    /// Overrides the cloud's endpoints (custom clouds, local test servers).
    pub fn endpoints(mut self, endpoints: CloudEndpoints) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// Overrides the retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Overrides the polling policy of long-running operations.
    pub fn polling_policy(mut self, polling: PollingPolicy) -> Self {
        self.polling = polling;
        self
    }

    /// Finishes the client.
    pub fn build(self) -> AzureClient {
        let endpoints = self.endpoints.unwrap_or_else(|| self.cloud.endpoints());
        AzureClient {
            inner: Arc::new(ClientInner {
                http: self.http,
                credential: self.credential,
                auth_method: self.auth_method,
                cloud: self.cloud,
                endpoints,
                tenant_id: self.tenant_id,
                tokens: TokenCache::default(),
                retry: self.retry,
                polling: self.polling,
            }),
        }
    }
}

impl AzureClient {
    /// Starts building a client around a credential for `tenant_id`.
    pub fn builder(
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        auth_method: AuthMethod,
        tenant_id: impl Into<String>,
    ) -> AzureClientBuilder {
        AzureClientBuilder {
            http,
            credential,
            auth_method,
            tenant_id: tenant_id.into(),
            cloud: CloudEnvironment::Public,
            endpoints: None,
            retry: RetryPolicy::default(),
            polling: PollingPolicy::default(),
        }
    }

    /// A client for one provider block: chooses the credential and uses the shared HTTP client.
    pub fn from_credential_options(options: &CredentialOptions) -> Result<Self, CredentialError> {
        let http = http::shared_http_client();
        let (credential, auth_method) = credentials::build_credential(options, &http)?;
        let tenant_id = options.tenant_id.trim();
        tracing::debug!(tenant_id, method = %auth_method, "authenticating");
        let builder = Self::builder(http, credential, auth_method, tenant_id);
        Ok(builder.cloud(options.cloud).build())
    }

    /// The tenant this client's tokens are for.
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// The cloud this client talks to.
    pub fn cloud(&self) -> CloudEnvironment {
        self.inner.cloud
    }

    /// The endpoints this client talks to.
    pub fn endpoints(&self) -> &CloudEndpoints {
        &self.inner.endpoints
    }

    /// The authentication method in use.
    pub fn auth_method(&self) -> AuthMethod {
        self.inner.auth_method
    }

    pub(crate) fn polling_policy(&self) -> &PollingPolicy {
        &self.inner.polling
    }

    /// An ARM URL: `{resource manager}{path}?api-version={api_version}`.
    pub fn arm_url(&self, path: &str, api_version: &str) -> Url {
        let mut url = self.inner.endpoints.resource_manager.clone();
        url.set_path(path);
        url.query_pairs_mut().append_pair("api-version", api_version);
        url
    }

    /// A Microsoft Graph v1.0 URL: `{graph}/v1.0{path}`.
    pub fn graph_url(&self, path: &str) -> Url {
        let mut url = self.inner.endpoints.graph.clone();
        url.set_path(&format!("/v1.0{path}"));
        url
    }

    /// The token scope of an audience in this client's cloud.
    pub fn scope(&self, audience: Audience) -> String {
        let endpoints = &self.inner.endpoints;
        match audience {
            Audience::ResourceManager => endpoints.resource_manager_scope(),
            Audience::Graph => endpoints.graph_scope(),
            Audience::KeyVault => endpoints.key_vault_scope(),
        }
    }

    /// Sends a request, retrying throttling, server errors and dropped connections.
    ///
    /// Returns the response for any 2xx status and an [`AzureError`] otherwise. Retries honour
    /// `Retry-After` and back off exponentially with jitter; none starts past the deadline.
    /// Cancellation ends the wait at once.
    pub async fn send(
        &self,
        request: ApiRequest,
        call: &CallContext,
    ) -> Result<ApiResponse, AzureError> {
        let span = tracing::debug_span!(
            "azure_call",
            method = %request.method,
            host = request.url.host_str().unwrap_or_default(),
            path = request.url.path(),
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        self.send_with_retries(request, call).instrument(span).await
    }

    async fn send_with_retries(
        &self,
        request: ApiRequest,
        call: &CallContext,
    ) -> Result<ApiResponse, AzureError> {
        let started = Instant::now();
        let mut retries_done = 0;
        loop {
            tracing::Span::current().record("attempt", retries_done + 1);
            let token = self.bearer_token(&request, call, started).await?;
            let (failure, error) = match self.attempt(&request, &token, call, started).await? {
                Ok(response) => return Ok(response),
                Err(failed) => failed,
            };

            let jitter = rand::random::<f64>();
            let policy = &self.inner.retry;
            let method = &request.method;
            let Some(delay) = retry::retry_delay(
                policy,
                method,
                request.idempotent,
                retries_done,
                failure,
                jitter,
            ) else {
                return Err(error);
            };
            if Instant::now() + delay >= call.deadline {
                tracing::debug!("not retrying: the deadline comes first");
                return Err(error);
            }
            tracing::debug!(delay_ms = delay.as_millis() as u64, cause = %error, "retrying");
            sleep_or_cancel(delay, call, &request.operation, &request.resource).await?;
            retries_done += 1;
        }
    }

    /// One exchange. The outer `Err` ends the call (deadline, cancellation); the inner one is a
    /// failure the caller may retry.
    async fn attempt(
        &self,
        request: &ApiRequest,
        token: &Secret,
        call: &CallContext,
        started: Instant,
    ) -> Result<Result<ApiResponse, (Failure, AzureError)>, AzureError> {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone())
            .header(reqwest::header::USER_AGENT, http::USER_AGENT)
            .bearer_auth(token.expose());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        tracing::trace!("sending request");
        let exchange = async {
            let response = builder.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body.to_vec()))
        };
        let outcome = tokio::select! {
            biased;
            () = call.cancel.cancelled() => return Err(cancelled(request)),
            () = tokio::time::sleep_until(call.deadline) => return Err(timed_out(request, started)),
            outcome = exchange => outcome,
        };

        let (status, headers, body) = match outcome {
            Ok(exchanged) => exchanged,
            Err(transport_error) => {
                tracing::debug!(error = %http::chain(&transport_error), "no response");
                let failure = Failure::Transport { connect: transport_error.is_connect() };
                let error = AzureError::Transport {
                    operation: request.operation.clone(),
                    resource: request.resource.clone(),
                    detail: http::chain(&transport_error),
                };
                return Ok(Err((failure, error)));
            }
        };

        let service = request.audience.service();
        let span = tracing::Span::current();
        span.record("status", status.as_u16());
        if let Some(request_id) = error::request_id_from_headers(service, &headers) {
            span.record("request_id", request_id.as_str());
        }
        tracing::trace!("response received");

        if status.is_success() {
            return Ok(Ok(ApiResponse {
                status,
                headers,
                body,
                audience: request.audience,
                method: request.method.clone(),
                url: request.url.clone(),
                operation: request.operation.clone(),
                resource: request.resource.clone(),
            }));
        }
        let retry_after = retry::parse_retry_after(&headers, SystemTime::now());
        let failure = Failure::Status { status, retry_after };
        let api_error = error::parse_error_response(
            service,
            &request.operation,
            &request.resource,
            status,
            &headers,
            &body,
        );
        Ok(Err((failure, AzureError::from(api_error))))
    }

    /// A token for the request's audience, from the cache when still fresh.
    async fn bearer_token(
        &self,
        request: &ApiRequest,
        call: &CallContext,
        started: Instant,
    ) -> Result<Secret, AzureError> {
        let scope = self.scope(request.audience);
        let credential = self.inner.credential.as_ref();
        let fetched = tokio::select! {
            biased;
            () = call.cancel.cancelled() => return Err(cancelled(request)),
            () = tokio::time::sleep_until(call.deadline) => return Err(timed_out(request, started)),
            fetched = self.inner.tokens.get(credential, &scope) => fetched,
        };
        fetched.map_err(|token_error| {
            let tenant_id = &self.inner.tenant_id;
            let method = self.inner.auth_method;
            AzureError::Credential {
                operation: request.operation.clone(),
                resource: request.resource.clone(),
                error: Box::new(credentials::token_request_error(
                    method,
                    tenant_id,
                    &scope,
                    &token_error,
                )),
            }
        })
    }
}

impl AzureClient {
    /// GETs a collection and every following page (`nextLink` in ARM and Key Vault,
    /// `@odata.nextLink` in Graph), returning all items.
    ///
    /// Next links must stay on the first request's host, so a token never leaves for another.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        first: ApiRequest,
        call: &CallContext,
    ) -> Result<Vec<T>, AzureError> {
        let audience = first.audience;
        let (operation, resource) = (first.operation.clone(), first.resource.clone());
        let origin = first.url.origin();
        let mut items = Vec::new();
        let mut response = self.send(first, call).await?;
        loop {
            let page: Page<T> = response.json()?;
            items.extend(page.value);
            let Some(next) = page.next_link.or(page.odata_next_link) else {
                return Ok(items);
            };
            let next =
                Url::parse(&next).ok().filter(|url| url.origin() == origin).ok_or_else(|| {
                    AzureError::InvalidRequest {
                        operation: operation.clone(),
                        resource: resource.clone(),
                        detail: "Azure sent a next page link on another host; not following it"
                            .to_owned(),
                    }
                })?;
            let request = ApiRequest::new(audience, Method::GET, next, &operation, &resource);
            response = self.send(request, call).await?;
        }
    }
}

/// One page of a collection.
#[derive(serde::Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.nextLink")]
    odata_next_link: Option<String>,
}

/// Runs `read` and turns a 404 into `Ok(None)`: for reads, a missing object is an answer.
pub async fn optional<T>(
    read: impl Future<Output = Result<T, AzureError>>,
) -> Result<Option<T>, AzureError> {
    match read.await {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Runs `delete` and treats a 404 as done: the object is gone either way.
pub async fn ignore_not_found(
    delete: impl Future<Output = Result<ApiResponse, AzureError>>,
) -> Result<(), AzureError> {
    match delete.await {
        Ok(_) => Ok(()),
        Err(error) if error.is_not_found() => Ok(()),
        Err(error) => Err(error),
    }
}

fn cancelled(request: &ApiRequest) -> AzureError {
    AzureError::Cancelled {
        operation: request.operation.clone(),
        resource: request.resource.clone(),
    }
}

fn timed_out(request: &ApiRequest, started: Instant) -> AzureError {
    AzureError::Timeout {
        operation: request.operation.clone(),
        resource: request.resource.clone(),
        waited: started.elapsed(),
    }
}

/// Sleeps, unless cancelled first.
pub(crate) async fn sleep_or_cancel(
    delay: Duration,
    call: &CallContext,
    operation: &str,
    resource: &str,
) -> Result<(), AzureError> {
    tokio::select! {
        biased;
        () = call.cancel.cancelled() => Err(AzureError::Cancelled {
            operation: operation.to_owned(),
            resource: resource.to_owned(),
        }),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

/// Tokens are refreshed this long before they expire. It is shorter than azure_identity's own
/// five-minute margin, so when we ask again its cache has already renewed or renews once.
const TOKEN_REFRESH_MARGIN: time::Duration = time::Duration::minutes(2);

/// Access tokens per scope, fetched once even when many calls need one at the same time.
#[derive(Default)]
struct TokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<CachedToken>>>>>,
}

struct CachedToken {
    token: Secret,
    expires_on: OffsetDateTime,
}

impl TokenCache {
    async fn get(
        &self,
        credential: &dyn TokenCredential,
        scope: &str,
    ) -> Result<Secret, azure_core::Error> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.entry(scope.to_owned()).or_default().clone()
        };
        // Holding the slot's lock while fetching makes concurrent callers wait for this fetch
        // instead of each starting their own.
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && token.expires_on - TOKEN_REFRESH_MARGIN > OffsetDateTime::now_utc()
        {
            return Ok(token.token.clone());
        }
        tracing::debug!(scope, "requesting an access token");
        let access = credential.get_token(&[scope], None).await?;
        let token = Secret::new(access.token.secret());
        *cached = Some(CachedToken { token: token.clone(), expires_on: access.expires_on });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use reqwest::Method;
    use tokio::time::Instant;

    use super::{ApiRequest, Audience, AzureClient, CallContext};
    use crate::azure::error::AzureError;
    use crate::azure::testing::{FakeCredential, Reply, ScriptedServer, client_for};

    const ARM_ERROR: &str = r#"{"error":{"code":"InvalidParameterValue","message":"bad value"}}"#;

    fn request(client: &AzureClient, method: Method) -> ApiRequest {
        let url = client.arm_url("/subscriptions/s/resourceGroups/rg", "2024-11-30");
        ApiRequest::new(Audience::ResourceManager, method, url, "reading resource group", "/rg")
    }

    async fn setup(replies: Vec<Reply>) -> (ScriptedServer, Arc<FakeCredential>, AzureClient) {
        let server = ScriptedServer::start().await;
        server.script(replies);
        let credential = Arc::new(FakeCredential::default());
        let client = client_for(&server, credential.clone());
        (server, credential, client)
    }

    #[tokio::test]
    async fn retries_throttling_and_server_errors_then_succeeds() {
        let (server, credential, client) = setup(vec![
            Reply::json(429, ARM_ERROR).with_header("Retry-After", "0"),
            Reply::json(503, ""),
            Reply::json(200, r#"{"ok":true}"#).with_header("x-ms-request-id", "req-9"),
        ])
        .await;

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let response = client.send(request(&client, Method::GET), &call).await.unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.request_id().as_deref(), Some("req-9"));
        assert_eq!(response.json::<serde_json::Value>().unwrap()["ok"], true);
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for recorded in &requests {
            assert_eq!(
                recorded.target,
                "/subscriptions/s/resourceGroups/rg?api-version=2024-11-30"
            );
            assert_eq!(recorded.header("authorization"), Some("Bearer fake-token-1"));
            assert_eq!(recorded.header("user-agent"), Some(crate::azure::http::USER_AGENT));
        }
        assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let (server, _, client) = setup(vec![
            Reply::json(400, ARM_ERROR).with_header("x-ms-request-id", "req-1"),
            Reply::json(200, "{}"),
        ])
        .await;

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let body = serde_json::json!({"properties": {"a": 1}});
        let put = request(&client, Method::PUT).with_json(&body).unwrap();
        let error = client.send(put, &call).await.unwrap_err();

        assert_eq!(
            error.to_string(),
            "reading resource group /rg: HTTP 400 InvalidParameterValue: bad value (request id req-1)"
        );
        assert_eq!(error.code(), Some("InvalidParameterValue"));
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].body, r#"{"properties":{"a":1}}"#);
        assert_eq!(requests[0].header("content-type"), Some("application/json"));
    }

    #[tokio::test]
    async fn dropped_connections_are_retried_only_when_repeating_is_safe() {
        let cases = [("put is retried", Method::PUT, true), ("post is not", Method::POST, false)];
        for (name, method, succeeds) in cases {
            let (server, _, client) = setup(vec![Reply::Drop, Reply::json(200, "{}")]).await;
            let call = CallContext::with_timeout(Duration::from_secs(10));
            let result = client.send(request(&client, method), &call).await;
            assert_eq!(result.is_ok(), succeeds, "{name}: {result:?}");
            if let Err(error) = result {
                assert!(matches!(error, AzureError::Transport { .. }), "{name}: {error}");
            }
            assert_eq!(server.requests().len(), if succeeds { 2 } else { 1 }, "{name}");
        }
    }

    #[tokio::test]
    async fn retry_after_beyond_the_deadline_returns_the_throttling_error_at_once() {
        let (server, _, client) =
            setup(vec![Reply::json(429, ARM_ERROR).with_header("Retry-After", "30")]).await;

        let started = Instant::now();
        let call = CallContext::with_timeout(Duration::from_secs(2));
        let error = client.send(request(&client, Method::GET), &call).await.unwrap_err();

        assert!(error.is_throttled(), "{error}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_silent_server_hits_the_deadline() {
        let (_server, _, client) = setup(vec![Reply::Hang]).await;

        let call = CallContext::with_timeout(Duration::from_millis(300));
        let error = client.send(request(&client, Method::GET), &call).await.unwrap_err();

        assert!(error.is_timeout(), "{error}");
        assert!(error.to_string().contains("timeouts"), "{error}");
    }

    #[tokio::test]
    async fn cancellation_stops_waiting_at_once() {
        let (_server, _, client) = setup(vec![Reply::Hang]).await;
        let call = CallContext::with_timeout(Duration::from_secs(60));
        let cancel = call.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        });

        let started = Instant::now();
        let error = client.send(request(&client, Method::GET), &call).await.unwrap_err();

        assert!(error.is_cancelled(), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_token_request() {
        let replies = (0..5).map(|_| Reply::json(200, "{}")).collect();
        let (_server, credential, client) = setup(replies).await;

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let sends = (0..5).map(|_| client.send(request(&client, Method::GET), &call));
        let results = futures::future::join_all(sends).await;

        assert!(results.iter().all(Result::is_ok));
        assert_eq!(credential.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn traces_never_contain_tokens_or_bodies() {
        let (_server, _, client) = setup(vec![
            Reply::json(503, r#"{"error":{"code":"X","message":"body-marker-1"}}"#),
            Reply::json(200, r#"{"secret":"body-marker-2"}"#),
        ])
        .await;
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = CapturedWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();

        let call = CallContext::with_timeout(Duration::from_secs(10));
        let request = request(&client, Method::PUT).with_json(&"request-body-marker").unwrap();
        let guard = tracing::subscriber::set_default(subscriber);
        client.send(request, &call).await.unwrap();
        drop(guard);

        let logged = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("azure_call"), "{logged}");
        assert!(logged.contains("retrying"), "{logged}");
        for forbidden in ["fake-token", "request-body-marker", "body-marker-2", "Bearer"] {
            assert!(!logged.contains(forbidden), "{forbidden} leaked into: {logged}");
        }
    }

    #[derive(Clone)]
    struct CapturedWriter(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for CapturedWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
